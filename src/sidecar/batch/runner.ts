// Runs a batch plan one item after another. Items whose result already matches are skipped, items that cannot run
// are recorded as failed and the batch goes on, a cancellation stops it after (or inside) the current item. The
// report is rewritten atomically after every item, so an interrupted batch leaves a report of what it did, and
// every finished result is already on disk for the next run to skip.
import * as path from 'node:path';
import { batchTotals, type BatchItemResult, type BatchProgress, type BatchReport } from '../../shared/batch';
import type { ImagePoint } from '../../shared/edit-spec';
import type { DevicePreference, EditProgress } from '../../shared/protocol';
import { isEditCancelled } from '../pipeline/edit/cancellation';
import type { BatchPlanning, RunnableItem } from './plan';
import { writeBatchReport } from './report';

/** One edit as the batch runs it (the pipeline's edit() with the batch's models and settings). */
export type ItemEditor = (
  item: { imagePath: string; specPath: string; spec: RunnableItem['spec'] },
  options: { signal?: AbortSignal; onProgress?: (progress: EditProgress) => void },
) => Promise<ItemEditOutcome>;

export interface ItemEditOutcome {
  imagePath: string;
  recipePath: string;
  iterations: number;
  reachedTargets: boolean;
  /** Final handles in source-image pixels, in the spec's order. */
  finalHandles: ImagePoint[];
  executionProvider: string;
}

export interface RunBatchOptions {
  editItem: ItemEditor;
  device: DevicePreference;
  signal?: AbortSignal;
  onProgress?: (progress: BatchProgress) => void;
  /** An item error that every later item would hit too (models that cannot be used): the batch stops there. */
  isFatal?: (error: unknown, item: RunnableItem) => boolean;
  /** Called when an intermediate report could not be written (the batch goes on). */
  onReportError?: (error: unknown) => void;
  now?: () => Date;
}

export async function runBatch(planning: BatchPlanning, options: RunBatchOptions): Promise<BatchReport> {
  const { plan, items } = planning;
  const now = options.now ?? (() => new Date());
  const report: BatchReport = {
    reportVersion: 1,
    folder: plan.folder,
    startedAt: now().toISOString(),
    state: 'running',
    models: plan.models,
    device: options.device,
    items: items.map(({ item }) => ({ image: item.image, source: item.source, specFile: item.specFile, status: 'not-run', ...(item.mode ? { mode: item.mode } : {}) })),
    totals: batchTotals([]),
  };
  const save = async (final: boolean) => {
    report.totals = batchTotals(report.items);
    try {
      await writeBatchReport(report, plan.reportFiles);
    } catch (error) {
      if (final) throw error;
      options.onReportError?.(error);
    }
  };
  const emit = (progress: BatchProgress) => {
    try {
      options.onProgress?.(progress);
    } catch {
      // A listener's failure must not stop the batch.
    }
  };

  const total = items.length;
  let cancelled = false;
  let stopReason: string | undefined;
  for (let index = 0; index < total; index++) {
    if (options.signal?.aborted) {
      cancelled = true;
      break;
    }
    const result = report.items[index]!;
    const outcome = await runItem(planning, index, result, options, emit);
    cancelled = outcome.cancelled;
    stopReason = outcome.stopReason;
    if (stopReason) {
      for (const later of report.items.slice(index + 1)) later.error = 'not run: the batch stopped before it';
    }
    // The report on disk has the item before anyone hears that it ended.
    await save(false);
    emit({ type: 'item-end', index, total, item: { ...result } });
    if (cancelled || stopReason) break;
  }

  report.state = cancelled ? 'cancelled' : stopReason ? 'stopped' : 'completed';
  if (stopReason) report.stopReason = stopReason;
  report.finishedAt = now().toISOString();
  await save(true);
  return report;
}

/** What running one item meant for the rest of the batch. */
export interface ItemOutcome {
  cancelled: boolean;
  /** Set when the item failed in a way every later item would. */
  stopReason?: string;
}

/**
 * Runs (or skips, or records as failed) the plan's item `index`, filling in `result`. Used by the batch on one
 * machine and by each worker of a shared batch.
 */
export async function runItem(
  planning: BatchPlanning,
  index: number,
  result: BatchItemResult,
  options: RunBatchOptions,
  emit: (progress: BatchProgress) => void,
): Promise<ItemOutcome> {
  const { item, run } = planning.items[index]!;
  const total = planning.items.length;
  const relative = (file: string) => path.relative(planning.root, file).split(path.sep).join('/');
  if (item.state === 'invalid' || !run) {
    Object.assign(result, { status: 'failed', error: item.problem ?? 'the item cannot run' } satisfies Partial<BatchItemResult>);
    return { cancelled: false };
  }
  if (item.state === 'done') {
    Object.assign(result, await skippedResult(planning, run, relative));
    return { cancelled: false };
  }
  emit({ type: 'item-start', index, total, image: item.image });
  const started = performance.now();
  try {
    const outcome = await options.editItem(
      { imagePath: run.imagePath, specPath: run.specPath, spec: run.spec },
      {
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: ({ previewPngBase64: _preview, ...progress }) => emit({ type: 'item-progress', index, total, image: item.image, progress }),
      },
    );
    planning.previous.invalidate(run.imagePath);
    Object.assign(result, {
      status: 'succeeded',
      seconds: elapsedSeconds(started),
      result: relative(outcome.imagePath),
      recipe: relative(outcome.recipePath),
      distances: handleDistances(outcome.finalHandles, run.targets),
      iterations: outcome.iterations,
      reachedTargets: outcome.reachedTargets,
      executionProvider: outcome.executionProvider,
    } satisfies Partial<BatchItemResult>);
    return { cancelled: false };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isEditCancelled(error) || options.signal?.aborted) {
      Object.assign(result, { status: 'cancelled', seconds: elapsedSeconds(started), error: message } satisfies Partial<BatchItemResult>);
      return { cancelled: true };
    }
    Object.assign(result, { status: 'failed', seconds: elapsedSeconds(started), error: message } satisfies Partial<BatchItemResult>);
    if (!options.isFatal?.(error, run)) return { cancelled: false };
    return { cancelled: false, stopReason: `${item.image} failed in a way every later item would (${message.split('\n')[0]}); fix that and run the batch again.` };
  }
}

/** An item whose matching result exists: its files and, from its recipe, where its handles ended. */
export async function skippedResult(planning: BatchPlanning, run: RunnableItem, relative: (file: string) => string): Promise<Partial<BatchItemResult>> {
  const match = (await planning.previous.of(run.imagePath)).find((r) => r.fingerprint === run.fingerprint);
  if (!match) return { status: 'skipped' };
  const drag = match.recipe.drag as { finalHandles?: unknown; iterations?: unknown; reachedTargets?: unknown } | undefined;
  const handles = Array.isArray(drag?.finalHandles) ? (drag.finalHandles as unknown[]).filter(isPoint) : [];
  return {
    status: 'skipped',
    result: relative(match.imagePath),
    recipe: relative(match.recipePath),
    ...(handles.length === run.targets.length ? { distances: handleDistances(handles, run.targets) } : {}),
    ...(typeof drag?.iterations === 'number' ? { iterations: drag.iterations } : {}),
    ...(typeof drag?.reachedTargets === 'boolean' ? { reachedTargets: drag.reachedTargets } : {}),
  };
}

/** Euclidean distance of each final handle to its target, in pixels, to 0.01. */
export function handleDistances(handles: readonly ImagePoint[], targets: readonly ImagePoint[]): number[] {
  if (handles.length !== targets.length) return [];
  return targets.map((target, i) => Math.round(Math.hypot(handles[i]![0] - target[0], handles[i]![1] - target[1]) * 100) / 100);
}

function isPoint(value: unknown): value is ImagePoint {
  return Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

function elapsedSeconds(started: number): number {
  return Math.round((performance.now() - started) / 100) / 10;
}
