// What the user is told, and offered, when an edit run fails: by the engine's error code, and for a model that
// cannot be fetched because the hub is out of reach, which setting to change. Free of `vscode` so it is tested
// against a real engine's errors.
import { SidecarErrorCodes, type ModelUnavailableData } from '../../shared/protocol';
import type { UserAction } from '../../shared/webview-messages';

export type RunFailure = { cancelled: true; message: string } | { cancelled: false; message: string; actions: UserAction[] };

/** The model ids the run used (the spec's or the settings'), to tell which setting an offline failure is about. */
export interface RunModels {
  model?: string;
  clipModel?: string;
}

export function describeRunFailure(error: unknown, models: RunModels = {}): RunFailure {
  const { code, data } = typeof error === 'object' && error !== null ? (error as { code?: unknown; data?: unknown }) : {};
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case SidecarErrorCodes.RequestCancelled:
      return { cancelled: true, message };
    case SidecarErrorCodes.ModelUnavailable: {
      if ((data as ModelUnavailableData | undefined)?.storeCode !== 'OFFLINE') return { cancelled: false, message, actions: ['downloadModels', 'showLogs'] };
      // Downloading cannot help while the hub is out of reach: another model (cached, or a local folder) can.
      const clip = models.clipModel !== undefined && message.includes(models.clipModel) && !(models.model !== undefined && message.includes(models.model));
      const setting = clip ? 'CLIPDrag: Clip Model (`clipdrag.clipModel`)' : 'CLIPDrag: Model (`clipdrag.model`)';
      return {
        cancelled: false,
        message: `${message} To edit now, set ${setting} to a model already in the cache or to a local model folder.`,
        actions: [clip ? 'openClipModelSetting' : 'openModelSetting', 'showLogs'],
      };
    }
    default:
      return { cancelled: false, message, actions: ['showLogs'] };
  }
}
