// A planned batch run through the pipeline: one EditSession for the whole batch (one engine, models opened once,
// compiled graphs reused from one image to the next), each item through edit() with the batch's settings.
import * as path from 'node:path';
import type { BatchOptions, BatchProgress, BatchReport } from '../../shared/batch';
import { errorKind } from '../../shared/error-kind';
import type { Engine } from '../engine/runtime/engine';
import { resolveInsideFolder } from '../io/paths';
import { edit, type EditRequest } from '../pipeline/edit/edit';
import { EditSession } from '../pipeline/edit/edit-session';
import type { BatchPlanning, RunnableItem } from './plan';
import { runBatch, type ItemEditor } from './runner';
import { runWorker, type RunWorkerOptions } from './worker';

/** Where the engine keeps things, for tests and front doors that know better than the defaults. */
export interface BatchEnvironment {
  /** Pipeline cache folder (trained LoRAs, session folders); default the pipeline's. */
  cacheDir?: string;
  /** A folder with CLIP's vocab.json and merges.txt, for model folders that ship no tokenizer. */
  tokenizerFolder?: string;
  /** An engine to share (kept open); default one of the batch's own. */
  engine?: Engine;
}

export interface RunPlannedBatchOptions {
  /** Run as one of several workers sharing the folder (claims, a report part, the merged report). */
  worker?: Pick<RunWorkerOptions, 'shard' | 'claimTimeoutMs' | 'pollMs'>;
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
  onReportError?: (error: unknown) => void;
}

export async function runPlannedBatch(planning: BatchPlanning, options: BatchOptions, environment: BatchEnvironment = {}, run: RunPlannedBatchOptions = {}): Promise<BatchReport> {
  const session = new EditSession({
    ...(environment.engine ? { engine: environment.engine } : {}),
    ...(environment.cacheDir ? { cacheDir: environment.cacheDir } : {}),
  });
  const device = options.device ?? 'auto';
  const editItem: ItemEditor = async (item, editOptions) => {
    // Checked again right before the edit reads it: the plan may be hours old.
    await resolveInsideFolder(planning.root, item.imagePath, { what: 'image', namedBy: path.relative(planning.root, item.specPath) });
    const request: EditRequest = {
      imagePath: item.imagePath,
      specPath: item.specPath,
      spec: item.spec,
      settings: {
        device,
        ...(options.precision ? { precision: options.precision } : {}),
        ...(options.model ? { model: options.model } : {}),
        ...(options.clipModel ? { clipModel: options.clipModel } : {}),
        ...(options.modelConfig ? { modelConfig: options.modelConfig } : {}),
        ...(options.hubCacheDirectory ? { hubCacheDirectory: options.hubCacheDirectory } : {}),
      },
      session,
      ...(options.workingWidth ? { workingWidth: options.workingWidth } : {}),
      ...(environment.cacheDir ? { cacheDir: environment.cacheDir } : {}),
      ...(environment.tokenizerFolder ? { tokenizerFolder: environment.tokenizerFolder } : {}),
    };
    return edit(request, editOptions);
  };
  try {
    const runOptions = {
      editItem,
      device,
      isFatal: usesBatchModelsAndTheyFailed,
      ...(run.signal ? { signal: run.signal } : {}),
      ...(run.onProgress ? { onProgress: run.onProgress } : {}),
      ...(run.onReportError ? { onReportError: run.onReportError } : {}),
    };
    if (run.worker) return await runWorker(planning, { ...runOptions, ...run.worker, ...(options.force ? { force: true } : {}) });
    return await runBatch(planning, runOptions);
  } finally {
    await session.close();
  }
}

/** The batch's own models cannot be found, downloaded or opened: every later item would fail the same way. */
function usesBatchModelsAndTheyFailed(error: unknown, item: RunnableItem): boolean {
  return errorKind(error) === 'model-unavailable' && item.spec.model === undefined && item.spec.clipModel === undefined;
}
