// The pipeline's requests on the RPC connection: `edit/run` (one edit; progress as `$/progress` with the
// request's token; `$/cancelRequest` cancels) and `models/ensure` (download or find the models, optionally
// verify them). Both run on the device queue shared with batch runs, one task at a time (docs/protocol.md); a failed
// or cancelled request leaves the server ready for the next.
import type { MessageConnection } from 'vscode-jsonrpc/node';
import {
  EditProgressType,
  EditRunRequestType,
  ModelsEnsureRequestType,
  ModelsProgressType,
  type DevicePreference,
  type EditRunParams,
  type EditRunResult,
  type EnsuredModel,
  type ModelsEnsureParams,
  type ModelsEnsureResult,
  type ModelsProgress,
} from '../../shared/protocol';
import { DEFAULT_MODELS, ensureModel, verifyModel, type ModelStoreEvent } from '../hub';
import type { Logger } from '../log';
import { edit, type EditRequest } from '../pipeline/edit/edit';
import { resolvePrecision, weightFilesPrecision } from '../pipeline/runtime/precision';
import { toResponseError } from './errors';
import { abortOn, checkRunChoices, invalidParams, type DeviceQueue } from './front-door';

export interface PipelineHandlerContext {
  readonly log: Logger;
  /** The device preference given at `initialize` (an edit's settings may override it). */
  devicePreference(): DevicePreference;
  /** The server's one queue of work on the device. */
  readonly queue: DeviceQueue;
  /** Pipeline cache folder (LoRAs, session folders); default the pipeline's own default. */
  readonly cacheDir?: string;
}

function checkEditParams(params: EditRunParams | undefined): asserts params is EditRunParams {
  if (!params || typeof params.imagePath !== 'string' || params.imagePath.length === 0) {
    invalidParams('edit/run', 'imagePath must be the path of the image to edit');
  }
  checkRunChoices('edit/run', {
    device: { name: 'settings.device', value: params.settings?.device },
    precision: { name: 'settings.precision', value: params.settings?.precision },
    workingWidth: params.workingWidth,
  });
}

export function registerPipelineHandlers(connection: MessageConnection, context: PipelineHandlerContext): void {
  const { log, queue } = context;

  connection.onRequest(EditRunRequestType, async (params, token): Promise<EditRunResult> => {
    checkEditParams(params);
    return queue.run(async () => {
      const controller = abortOn(token);
      const started = Date.now();
      log.info(`edit/run ${params.imagePath}`);
      const request: EditRequest = {
        imagePath: params.imagePath,
        ...(params.spec ? { spec: params.spec } : {}),
        ...(params.specPath ? { specPath: params.specPath } : {}),
        ...(params.overrides ? { overrides: params.overrides } : {}),
        settings: { ...params.settings, device: params.settings?.device ?? context.devicePreference() },
        ...(params.outPath ? { outPath: params.outPath } : {}),
        ...(params.workingWidth ? { workingWidth: params.workingWidth } : {}),
        ...(context.cacheDir ? { cacheDir: context.cacheDir } : {}),
      };
      const progressToken = params.progressToken;
      try {
        const outcome = await edit(request, {
          signal: controller.signal,
          onProgress: (progress) => {
            if (progressToken !== undefined) void connection.sendProgress(EditProgressType, progressToken, progress);
          },
        });
        log.info(`edit/run wrote ${outcome.imagePath} (${outcome.iterations} drag iterations, ${((Date.now() - started) / 1000).toFixed(1)} s on ${outcome.executionProvider})`);
        for (const note of outcome.recipe.notes ?? []) log.info(`edit/run: ${note}`);
        const { recipe: _recipe, ...result } = outcome;
        void _recipe;
        return result;
      } catch (error) {
        const response = toResponseError(error, `The edit of ${params.imagePath}`);
        log.warn(`edit/run ${params.imagePath}: ${response.message}`);
        throw response;
      }
    });
  });

  connection.onRequest(ModelsEnsureRequestType, async (params, token): Promise<ModelsEnsureResult> => {
    const request = params ?? {};
    checkRunChoices('models/ensure', { precision: { name: 'precision', value: request.precision } });
    return queue.run(async () => {
      const controller = abortOn(token);
      try {
        const resolved = await ensureModels(
          request,
          controller.signal,
          (progress) => {
            if (request.progressToken !== undefined) void connection.sendProgress(ModelsProgressType, request.progressToken, progress);
          },
        );
        for (const model of resolved.models) for (const note of model.notes) log.info(`models/ensure ${model.id}: ${note}`);
        return resolved;
      } catch (error) {
        const response = toResponseError(error, 'Preparing the models');
        log.warn(`models/ensure: ${response.message}`);
        throw response;
      }
    });
  });
}

/**
 * Ensures (and with `verify`, re-hashes) the Stable Diffusion and CLIP models, with the weight files of the precision
 * the edits will run in (so that an fp16 user downloads the fp16 variants, never the fp32 files).
 */
export async function ensureModels(
  params: ModelsEnsureParams,
  signal: AbortSignal,
  onProgress: (progress: ModelsProgress) => void,
): Promise<ModelsEnsureResult> {
  const precision = weightFilesPrecision(resolvePrecision(params.precision));
  const wanted = [
    { role: 'stable-diffusion' as const, id: params.model || DEFAULT_MODELS.stableDiffusion },
    { role: 'clip' as const, id: params.clipModel || DEFAULT_MODELS.clip },
  ];
  const hub = params.hubCacheDirectory ? { cacheDir: params.hubCacheDirectory } : {};
  const models: EnsuredModel[] = [];
  for (const { role, id } of wanted) {
    const onEvent = (event: ModelStoreEvent) => {
      const progress = toModelsProgress(role, id, event);
      if (progress) onProgress(progress);
    };
    const request = { ...hub, source: id, kind: role, precision, signal, onEvent };
    let resolved = await ensureModel(request);
    let corruptFiles: string[] | undefined;
    if (params.verify) {
      const report = await verifyModel({ ...request, removeCorrupt: true });
      corruptFiles = report.files.filter((f) => f.status === 'corrupt').map((f) => f.path);
      // Corrupt cached files were removed: fetch them again (a local folder cannot be repaired).
      if (corruptFiles.length > 0 && resolved.origin !== 'local') resolved = await ensureModel(request);
    }
    onProgress({ role, model: id, phase: 'done' });
    models.push({
      role,
      id,
      folder: resolved.folder,
      commit: resolved.commit,
      fileCount: resolved.files.length,
      totalBytes: resolved.files.reduce((sum, f) => sum + f.size, 0),
      downloadedBytes: resolved.downloadedBytes,
      weightsPrecision: resolved.weightsPrecision,
      origin: resolved.origin,
      ...(corruptFiles ? { corruptFiles } : {}),
      notes: resolved.notes,
    });
  }
  return { models };
}

function toModelsProgress(role: ModelsProgress['role'], model: string, event: ModelStoreEvent): ModelsProgress | null {
  switch (event.type) {
    case 'resolved':
      return { role, model, phase: 'resolve', bytes: 0, totalBytes: event.downloadBytes, message: `${event.fileCount} files, ${event.downloadBytes} bytes to fetch` };
    case 'progress':
      return { role, model, phase: event.phase, file: event.file, bytes: event.overallBytes, totalBytes: event.overallTotal };
    case 'note':
      return { role, model, phase: 'resolve', message: event.message };
    default:
      return null;
  }
}
