// "CLIPDrag: Download / Verify Models": asks the engine to download (or find) the configured Stable Diffusion and
// CLIP models, in the weight files of the `clipdrag.precision` setting (fp16: the fp16 variants), and re-hash every
// file, with a cancellable progress notification. Only offered in trusted workspaces (the caller checks): it
// downloads and writes into the model cache.
import * as vscode from 'vscode';
import { ModelsEnsureRequestType, SidecarErrorCodes, type ModelsEnsureResult, type ModelsProgress } from '../shared/protocol';
import { CONFIG_SECTION, precisionPreference } from './config';
import type { SidecarClient } from './sidecar/sidecar-client';

/** The model settings as the user set them (empty strings mean "the default"). */
function modelSettings(): { model?: string; clipModel?: string; hubCacheDirectory?: string } {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION);
  const text = (key: string) => config.get<string>(key, '').trim();
  const [model, clipModel, hubCacheDirectory] = [text('model'), text('clipModel'), text('cacheDirectory')];
  return { ...(model ? { model } : {}), ...(clipModel ? { clipModel } : {}), ...(hubCacheDirectory ? { hubCacheDirectory } : {}) };
}

export function describeModelsProgress(p: ModelsProgress): string {
  const name = p.role === 'clip' ? 'CLIP' : 'Stable Diffusion';
  if (p.phase === 'done') return `${name}: ready`;
  if (p.message) return `${name}: ${p.message}`;
  const what = { resolve: 'checking', download: 'downloading', hash: 'hashing', verify: 'verifying' }[p.phase];
  const percent = p.bytes !== undefined && p.totalBytes ? ` ${Math.floor((100 * p.bytes) / p.totalBytes)}%` : '';
  return `${name}: ${what}${p.file ? ` ${p.file}` : ''}${percent}`;
}

export function summarizeModels(result: ModelsEnsureResult): string {
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
  return result.models
    .map((m) => {
      const name = m.role === 'clip' ? 'CLIP' : 'Stable Diffusion';
      const source = m.origin === 'local' ? m.folder : `${m.id}${m.commit ? ` @ ${m.commit.slice(0, 10)}` : ''}`;
      const fetched = m.downloadedBytes > 0 ? `, ${gb(m.downloadedBytes)} downloaded` : '';
      const repaired = m.corruptFiles && m.corruptFiles.length > 0 ? `, ${m.corruptFiles.length} corrupt file(s) fetched again` : '';
      const notes = m.notes.length > 0 ? ` — ${m.notes.join(' ')}` : '';
      return `${name} ${source} (${m.weightsPrecision} weights, ${m.fileCount} files, ${gb(m.totalBytes)}${fetched}${repaired})${notes}`;
    })
    .join('; ');
}

function isCancelled(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === SidecarErrorCodes.RequestCancelled;
}

export async function downloadModels(sidecar: SidecarClient, showError: (error: unknown) => Thenable<unknown>): Promise<void> {
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'CLIPDrag: downloading and verifying models', cancellable: true },
      (progress, token) =>
        sidecar.sendRequestWithProgress(
          ModelsEnsureRequestType,
          { ...modelSettings(), precision: precisionPreference(), verify: true },
          (update: ModelsProgress) => progress.report({ message: describeModelsProgress(update) }),
          token,
        ),
    );
    void vscode.window.showInformationMessage(`CLIPDrag models ready and verified: ${summarizeModels(result)}.`);
  } catch (error) {
    if (isCancelled(error)) {
      void vscode.window.showInformationMessage('Model download cancelled. Files already downloaded are kept; the next download resumes.');
      return;
    }
    void showError(error);
  }
}
