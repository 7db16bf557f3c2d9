// One evaluation of a folder, as both front doors run it (`clipdrag eval` and the RPC method `eval/run`): the models
// found or downloaded through the model store (hub ids into the Hugging Face cache, folders checked), the scorer
// opened on the first entry that needs it, the report and its plots written into the folder — also when cancelled,
// with what was scored so far, so that a rerun continues.
import * as path from 'node:path';
import type { EvalOptions, EvalOutcome, EvalProgress } from '../../shared/evaluation';
import { Engine } from '../engine/runtime/engine';
import { EVAL_DEFAULT_MODELS, ensureModel } from '../hub';
import { resolveEditModels } from '../pipeline/edit/edit-models';
import { DragBenchScorer } from '../pipeline/evaluation/scorer';
import { defaultPipelineCacheDir } from '../pipeline/runtime/cache-dir';
import { GraphSession } from '../pipeline/runtime/graph-session';
import { summarise, writeEvalReport } from './report';
import { readPreviousReport, runEvaluation, type EvalReportData } from './runner';
import type { ResultSet } from './samples';

export { EVAL_DEFAULT_MODELS };

/** `ours`, or folders in the reference layout (resolved against `cwd`), labelled by folder name, made unique. */
export function resultSets(results: readonly string[], cwd: string): ResultSet[] {
  const labels = new Set<string>();
  return results.map((r): ResultSet => {
    const set: ResultSet = r === 'ours' ? { kind: 'ours', label: 'ours' } : { kind: 'reference', label: path.basename(path.resolve(cwd, r)), root: path.resolve(cwd, r) };
    let label = set.label;
    for (let n = 2; labels.has(label); n++) label = `${set.label}-${n}`;
    labels.add(label);
    return { ...set, label };
  });
}

export interface EvalJobRun {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EvalProgress) => void;
  /** Pipeline cache folder (engine sessions, converted LPIPS weights); default the pipeline's. */
  readonly cacheDir?: string;
}

export async function runEvalJob(options: EvalOptions, run: EvalJobRun = {}): Promise<{ report: EvalReportData; outcome: EvalOutcome }> {
  const folder = path.resolve(options.folder);
  const models = {
    dift: options.diftModel ?? EVAL_DEFAULT_MODELS.dift,
    clip: options.clipModel ?? EVAL_DEFAULT_MODELS.clip,
    lpips: options.lpipsModel ?? EVAL_DEFAULT_MODELS.lpips,
  };
  const hub = options.hubCacheDirectory ? { cacheDir: options.hubCacheDirectory } : {};
  const cacheDir = run.cacheDir ?? defaultPipelineCacheDir();
  const engine = new Engine({ cacheDir: path.join(cacheDir, 'sessions') });
  try {
    const report = await runEvaluation({
      root: folder,
      sets: resultSets(options.results ?? ['ours'], folder),
      models,
      seed: options.seed ?? 42,
      previous: await readPreviousReport(folder),
      ...(run.signal ? { signal: run.signal } : {}),
      ...(run.onProgress ? { onProgress: run.onProgress } : {}),
      scorer: async () => {
        const signal = run.signal ? { signal: run.signal } : {};
        const resolved = await resolveEditModels({ stableDiffusion: models.dift, clip: models.clip, precision: 'fp32', hub, ...signal });
        const lpips = await ensureModel({ ...hub, source: models.lpips, kind: 'lpips', ...signal });
        const session = new GraphSession(engine, { device: options.device ?? 'auto', ...signal });
        return DragBenchScorer.open(session, { dift: resolved.stableDiffusion.resolved.folder, clip: resolved.clip!.resolved.folder, lpips: lpips.folder }, cacheDir);
      },
    });
    const files = await writeEvalReport(folder, report);
    const outcome: EvalOutcome = {
      folder,
      state: report.cancelled ? 'cancelled' : 'completed',
      models: report.models,
      summary: summarise(report),
      entries: report.entries.length,
      scored: report.entries.filter((e) => e.score).length,
      reportFiles: files,
    };
    return { report, outcome };
  } finally {
    await engine.close();
  }
}
