// Batch runs over a folder: what the engine found (the plan), what it reports while running, and the report it leaves
// in the folder. Shared by the sidecar (RPC and CLI) and the extension; types only, no Node- or DOM-only code.
import type { EditMode, EditParameters } from './edit-parameters';
import type { DevicePreference, EditProgress, PrecisionPreference } from './protocol';

/** The report's file names in the batch folder (`.md` for people, `.json` for programs). */
export const BATCH_REPORT_NAME = 'clipdrag-batch-report';
export const BATCH_REPORT_VERSION = 1;

/** How a batch item came to be: an image with a saved edit spec, or a DragBench sample folder. */
export type BatchItemSource = 'spec' | 'dragbench';

/** What the plan says about an item: it will run, a matching result exists, or it cannot run as it is. */
export type BatchPlanState = 'pending' | 'done' | 'invalid';

/** What happened to an item in a run. */
export type BatchItemStatus = 'succeeded' | 'skipped' | 'failed' | 'cancelled' | 'not-run';

export interface BatchOptions {
  /** The folder to run (absolute). Everything the batch reads and writes stays inside it. */
  folder: string;
  /** Models for specs that name none (the user's settings); default: the engine's defaults. */
  model?: string;
  clipModel?: string;
  device?: DevicePreference;
  /** Model precision (default auto, which is fp32). */
  precision?: PrecisionPreference;
  /** Hugging Face cache folder; default the standard one. */
  /** For a single-file checkpoint: its diffusers config folder (see EditSettings.modelConfig). */
  modelConfig?: string;
  hubCacheDirectory?: string;
  /** Parameters for DragBench samples, which carry none of their own (saved specs keep theirs). */
  dragBenchParameters?: Partial<EditParameters>;
  /** Width images are edited at (default 512, as the reference). */
  workingWidth?: number;
  /** Run every item again, even when a matching result exists. */
  force?: boolean;
  /**
   * Run every item once in each of these modes (its spec's mode replaced, that mode's defaults for the parameters the
   * spec leaves open), to compare them; absent: each item in its spec's own mode.
   */
  modes?: EditMode[];
}

export interface BatchPlanItem {
  /** The source image, relative to the folder with `/` separators; identifies the item. */
  image: string;
  source: BatchItemSource;
  /** The spec file, or the sample's meta_data.pkl, relative to the folder. */
  specFile: string;
  state: BatchPlanState;
  /** `done`: the result whose recipe matches the current spec, parameters and models (relative). */
  result?: string;
  /** `invalid`: why the item cannot run; the run records it as failed. */
  problem?: string;
  /** `pending`: estimated seconds. */
  estimateSeconds?: number;
  /** The mode this item runs in, when the batch runs several modes (`BatchOptions.modes`). */
  mode?: EditMode;
}

export interface BatchTimeEstimate {
  /** Estimated seconds for the pending items. */
  seconds: number;
  /** `previous-results`: per-stage timings of earlier results with the same model; `default`: a conservative guess. */
  basis: 'previous-results' | 'default';
  /** How many earlier recipes the estimate is based on. */
  recipes: number;
}

export interface BatchPlan {
  folder: string;
  items: BatchPlanItem[];
  counts: { total: number; pending: number; done: number; invalid: number };
  estimate: BatchTimeEstimate;
  /** Models used where a spec names none. */
  models: { model: string; clipModel: string };
  /** Where the report will be written (absolute). */
  reportFiles: { markdown: string; json: string };
}

export interface BatchItemResult {
  image: string;
  source: BatchItemSource;
  specFile: string;
  status: BatchItemStatus;
  /** The mode it ran in, when the batch runs several modes. */
  mode?: EditMode;
  /** Wall time of the run, in seconds (absent for items that did not run). */
  seconds?: number;
  /** The result image and its recipe, relative to the folder (a skipped item: the existing ones). */
  result?: string;
  recipe?: string;
  /** Distance of each final handle to its target, in source-image pixels, in the spec's order. */
  distances?: number[];
  iterations?: number;
  reachedTargets?: boolean;
  executionProvider?: string;
  /** Why it failed or did not run. */
  error?: string;
  /** In a batch shared by workers: the worker that ran it (see `BatchReport.workers`). */
  worker?: string;
}

export interface BatchTotals {
  items: number;
  succeeded: number;
  skipped: number;
  failed: number;
  cancelled: number;
  notRun: number;
  /** Seconds spent running items. */
  seconds: number;
  /** Mean final handle-to-target distance over every point pair of the succeeded and skipped items, in pixels. */
  meanDistance: number | null;
}

export interface BatchReport {
  reportVersion: typeof BATCH_REPORT_VERSION;
  folder: string;
  startedAt: string;
  /** Absent while the batch runs: a report without it is from a batch that was interrupted. */
  finishedAt?: string;
  /** `stopped`: an item failed in a way every later item would too (the models cannot be used); see `stopReason`. */
  state: 'running' | 'completed' | 'cancelled' | 'stopped';
  stopReason?: string;
  models: { model: string; clipModel: string };
  device: DevicePreference;
  items: BatchItemResult[];
  totals: BatchTotals;
  /** A batch shared by workers (`--worker`, `--shard`): one entry per worker, from its report part. */
  workers?: BatchWorkerSummary[];
}

/** One of `count` deterministic slices of a plan: the items whose position modulo `count` is `index` (0-based). */
export interface BatchShard {
  index: number;
  count: number;
}

/** A worker of a shared batch, as its report part and the merged report describe it. */
export interface BatchWorkerSummary {
  /** `<host>-<pid>-<start>`; also the name of its report part. */
  id: string;
  host: string;
  pid: number;
  shard?: BatchShard;
  startedAt: string;
  /** Absent while it runs, or when it was killed. */
  finishedAt?: string;
  state: BatchReport['state'];
  /** Items it ran (not those it skipped or left to others), and how they ended. */
  ran: number;
  succeeded: number;
  failed: number;
  /** Seconds it spent editing; seconds from its start to its end (or to its last report). */
  editSeconds: number;
  wallSeconds: number;
}

/** A worker's report part (`.clipdrag-batch/parts/<id>.json`): the items of its slice as it saw them, and itself. */
export interface BatchReportPart extends BatchReport {
  worker: BatchWorkerSummary;
}

/** What `batch/run` reports while it runs (`$/progress` with the request's token) and what the CLI prints. */
export type BatchProgress =
  | { type: 'item-start'; index: number; total: number; image: string }
  /** A step of the item's edit (without preview images). */
  | { type: 'item-progress'; index: number; total: number; image: string; progress: Omit<EditProgress, 'previewPngBase64'> }
  | { type: 'item-end'; index: number; total: number; item: BatchItemResult };

/** Totals of a list of item results. */
export function batchTotals(items: readonly BatchItemResult[]): BatchTotals {
  const count = (status: BatchItemStatus) => items.filter((item) => item.status === status).length;
  const distances = items.filter((item) => item.status === 'succeeded' || item.status === 'skipped').flatMap((item) => item.distances ?? []);
  return {
    items: items.length,
    succeeded: count('succeeded'),
    skipped: count('skipped'),
    failed: count('failed'),
    cancelled: count('cancelled'),
    notRun: count('not-run'),
    seconds: Math.round(items.reduce((sum, item) => sum + (item.seconds ?? 0), 0) * 10) / 10,
    meanDistance: distances.length > 0 ? Math.round((distances.reduce((a, b) => a + b, 0) / distances.length) * 100) / 100 : null,
  };
}

/** "1 h 05 min", "3 min 20 s", "45 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** How far the workers of a shared batch are, from their report parts (those started at or after `since`). */
export function sharedBatchProgress(parts: readonly BatchReportPart[], since = ''): { ran: number; failed: number; runningWorkers: number } {
  const recent = parts.filter((part) => part.worker.startedAt >= since);
  const ran = new Map<string, BatchItemStatus>();
  for (const part of recent) {
    for (const item of part.items) {
      if (item.status === 'succeeded' || (item.status === 'failed' && item.worker !== undefined)) {
        if (ran.get(item.image) !== 'succeeded') ran.set(item.image, item.status);
      }
    }
  }
  return {
    ran: ran.size,
    failed: [...ran.values()].filter((status) => status === 'failed').length,
    runningWorkers: recent.filter((part) => part.worker.finishedAt === undefined).length,
  };
}
