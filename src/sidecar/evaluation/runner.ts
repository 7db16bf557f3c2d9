// Scores every sample of a DragBench-layout folder for one or more result sets and keeps the numbers in
// `clipdrag-eval-report.json` next to the samples. A rerun scores only what changed: an entry is kept while its
// source and result files (size and modification time) and the models are the same.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { EvalProgress } from '../../shared/evaluation';
import type { Pixels8 } from '../io/resize';
import { readImageFile } from '../io/image';
import { dragBenchSpec, readDragBenchMeta } from '../batch/dragbench';
import type { DragBenchScorer, SampleScore } from '../pipeline/evaluation/scorer';
import type { Point } from '../pipeline/evaluation/point-matching';
import { discoverSamples, resultFile, type DragBenchSample, type ResultSet } from './samples';

export interface EvalEntry {
  readonly sample: string;
  readonly category: string;
  readonly set: string;
  /** The result file, relative to the folder; null when the set has none for this sample. */
  readonly result: string | null;
  /** What the entry's numbers depend on; a rerun scores the entry again when it changes. */
  readonly fingerprint: string;
  readonly score?: SampleScore;
  readonly error?: string;
  readonly seconds?: number;
}

export interface EvalReportData {
  readonly version: 1;
  readonly models: Readonly<Record<string, string>>;
  readonly sets: readonly string[];
  readonly entries: readonly EvalEntry[];
  /** The run was cancelled: `entries` are those done before it stopped (a rerun keeps them and does the rest). */
  readonly cancelled?: true;
}

export type { EvalProgress };

export interface RunEvaluationOptions {
  readonly root: string;
  readonly sets: readonly ResultSet[];
  /** The models the numbers come from, as named by the user: part of every entry's fingerprint. */
  readonly models: Readonly<Record<string, string>>;
  /**
   * Opened on the first entry that needs scoring (a rerun with nothing new opens no model). Its failure (a model
   * that cannot be found or opened) ends the run: every entry would fail the same way.
   */
  readonly scorer: () => Promise<DragBenchScorer>;
  /** Base seed of the DIFT noise; each sample draws from its own stream. Default 42, the reference's seed. */
  readonly seed?: number;
  readonly previous?: EvalReportData | null;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EvalProgress) => void;
}

export const EVAL_REPORT_JSON = 'clipdrag-eval-report.json';

export async function readPreviousReport(root: string): Promise<EvalReportData | null> {
  try {
    const json = JSON.parse(await fs.readFile(path.join(root, EVAL_REPORT_JSON), 'utf8')) as EvalReportData;
    return json.version === 1 && Array.isArray(json.entries) ? json : null;
  } catch {
    return null; // none yet, or unreadable: everything is scored again
  }
}

/** The sample's seed stream: a hash of its key, so its noise does not depend on the other samples. */
function sampleSeed(base: number, key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return base * 2 ** 20 + (h & 0xfffff);
}

async function fileStamp(file: string): Promise<string> {
  const info = await fs.stat(file);
  return `${info.size}:${Math.trunc(info.mtimeMs)}`;
}

async function samplePoints(sample: DragBenchSample, source: Pixels8): Promise<{ prompt: string; handles: Point[]; targets: Point[] }> {
  const spec = dragBenchSpec(await readDragBenchMeta(sample.meta, `${sample.key}/meta_data.pkl`), { width: source.width, height: source.height }, `${sample.key}/meta_data.pkl`);
  // meta_data.pkl holds [x, y] pixels; the reference matches in [row, col].
  const rowCol = ([x, y]: readonly [number, number]): Point => [Math.round(y), Math.round(x)];
  return { prompt: spec.prompt, handles: spec.points.map((p) => rowCol(p.handle)), targets: spec.points.map((p) => rowCol(p.target)) };
}

export async function runEvaluation(options: RunEvaluationOptions): Promise<EvalReportData> {
  const samples = await discoverSamples(options.root);
  if (samples.length === 0) {
    // Invalid input: the front doors say so rather than "failed".
    throw Object.assign(new Error(`${options.root} holds no DragBench samples (folders with original_image.png and meta_data.pkl, one per sample, e.g. <category>/<sample>/).`), { kind: 'invalid-input' as const });
  }
  const previous = new Map((options.previous?.entries ?? []).map((e) => [`${e.sample}\n${e.set}`, e]));
  const modelsKey = JSON.stringify(options.models);
  const seed = options.seed ?? 42;
  const entries: EvalEntry[] = [];
  const total = samples.length * options.sets.length;
  let scorer: DragBenchScorer | null = null;
  let scoredSeconds = 0;
  let scored = 0;
  let cancelled = false;
  const stopped = () => (cancelled ||= options.signal?.aborted === true);
  samples: for (const sample of samples) {
    const sourceStamp = await fileStamp(sample.image).catch(() => 'missing');
    let source: Pixels8 | null = null;
    for (const set of options.sets) {
      if (stopped()) break samples;
      const file = await resultFile(sample, set);
      const relative = file ? path.relative(options.root, file).split(path.sep).join('/') : null;
      const fingerprint = JSON.stringify([sourceStamp, file ? await fileStamp(file) : null, modelsKey, seed]);
      const earlier = previous.get(`${sample.key}\n${set.label}`);
      const base = { sample: sample.key, category: sample.category, set: set.label, result: relative, fingerprint };
      let entry: EvalEntry;
      let reused = false;
      if (earlier && earlier.fingerprint === fingerprint && (earlier.score || earlier.result === null)) {
        entry = earlier;
        reused = true;
      } else if (!file) {
        entry = { ...base, error: set.kind === 'reference' ? `no ${path.join(set.root, sample.key, 'dragged_image.png')}` : 'no result next to the sample' };
      } else {
        try {
          scorer ??= await options.scorer();
        } catch (error) {
          if (stopped()) break samples;
          throw error;
        }
        const started = performance.now();
        try {
          source ??= await readImageFile(sample.image);
          const result = await readImageFile(file);
          const points = await samplePoints(sample, source);
          const score = await scorer.score({ source, result, ...points, seed: sampleSeed(seed, sample.key) });
          entry = { ...base, score, seconds: (performance.now() - started) / 1000 };
        } catch (error) {
          // Cancelled while scoring: the entry is left for the next run.
          if (stopped()) break samples;
          entry = { ...base, error: error instanceof Error ? error.message : String(error) };
        }
        scoredSeconds += (performance.now() - started) / 1000;
        scored++;
      }
      entries.push(entry);
      const remaining = total - entries.length;
      options.onProgress?.({ done: entries.length, total, sample: sample.key, set: set.label, secondsLeft: scored > 0 ? (scoredSeconds / scored) * remaining : null, reused });
    }
  }
  if (cancelled) {
    // Entries of the last report not reached this time stay in it, so that stopping early loses nothing.
    const labels = new Set(options.sets.map((s) => s.label));
    const done = new Set(entries.map((e) => `${e.sample}\n${e.set}`));
    for (const [key, earlier] of previous) if (!done.has(key) && labels.has(earlier.set)) entries.push(earlier);
  }
  return { version: 1, models: options.models, sets: options.sets.map((s) => s.label), entries, ...(cancelled ? { cancelled: true as const } : {}) };
}
