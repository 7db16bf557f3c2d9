// `clipdrag eval <folder>`: DragBench's metrics (mean distance with DIFT on SD-2.1, 1 − LPIPS, CLIP similarity) for
// every sample of a DragBench-layout folder and one or more result sets, with the report and plots written into the
// folder. Entries whose files and models did not change are kept from the last run.
import * as path from 'node:path';
import { Engine } from '../engine/runtime/engine';
import { EVAL_REPORT_FILES, summarise, writeEvalReport } from '../evaluation/report';
import { readPreviousReport, runEvaluation, type EvalProgress } from '../evaluation/runner';
import type { ResultSet } from '../evaluation/samples';
import { formatDuration } from '../../shared/batch';
import { resolveEditModels } from '../pipeline/edit/edit-models';
import { DragBenchScorer } from '../pipeline/evaluation/scorer';
import { GraphSession } from '../pipeline/runtime/graph-session';
import { defaultPipelineCacheDir } from '../pipeline/runtime/cache-dir';
import { DEVICE_PREFERENCES, isDevicePreference, type DevicePreference } from '../../shared/protocol';
import { JSON_FLAG, describeFlags, parseFlags, type Flag } from './flags';
import { UsageError, type CliIo } from './io';

/** The models the papers' numbers come from (DragDiffusion's evaluation scripts). */
export const EVAL_DEFAULT_MODELS = { dift: 'stabilityai/stable-diffusion-2-1', clip: 'openai/clip-vit-base-patch32' } as const;

const EVAL_FLAGS: readonly Flag[] = [
  { name: 'results', type: 'string', multiple: true, value: '<dir|ours>', help: 'a result set: "ours" (results next to each sample) or a folder in the reference layout <dir>/<category>/<sample>/dragged_image.png (repeatable; default ours)' },
  { name: 'dift-model', type: 'string', value: '<repo|dir>', help: `Stable Diffusion 2.1 for DIFT (default ${EVAL_DEFAULT_MODELS.dift})` },
  { name: 'clip-model', type: 'string', value: '<repo|dir>', help: `CLIP ViT-B/32 (default ${EVAL_DEFAULT_MODELS.clip})` },
  { name: 'lpips-model', type: 'string', value: '<dir>', help: 'LPIPS-AlexNet: a folder with lpips-alex.safetensors, or with LPIPS v0.1 alex.pth and an AlexNet alexnet*.pth' },
  { name: 'device', type: 'string', value: '<ep>', help: DEVICE_PREFERENCES.join(', ') },
  { name: 'seed', type: 'string', value: 'N', help: 'base seed of the DIFT noise (default 42, the reference\'s)' },
  { ...JSON_FLAG, help: 'print the report (entries and means) as one JSON object' },
];

export const EVAL_USAGE = `clipdrag eval <folder> [options]
  scores every DragBench sample in <folder> (original_image.png + meta_data.pkl) as DragBench papers do: mean distance
  (DIFT on SD-2.1), image fidelity (1 − LPIPS) and CLIP image similarity; writes ${EVAL_REPORT_FILES.markdown}/.json and plots
${describeFlags(EVAL_FLAGS)}`;

export interface EvalCommandOptions {
  folder: string;
  sets: ResultSet[];
  dift: string;
  clip: string;
  lpips: string;
  device: DevicePreference;
  seed: number;
  json: boolean;
}

export function parseEvalOptions(args: readonly string[], cwd = process.cwd()): EvalCommandOptions | 'help' {
  const { values, positionals, help } = parseFlags('eval', args, EVAL_FLAGS);
  if (help) return 'help';
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'eval: no folder given' : `eval: unexpected argument ${JSON.stringify(positionals[1])}`);
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const lpips = text('lpips-model');
  if (lpips === undefined) {
    throw new UsageError('eval: --lpips-model is required: a folder with the LPIPS v0.1 weights alex.pth (from the lpips package) and torchvision\'s AlexNet checkpoint alexnet-owt-7be5be79.pth');
  }
  const device = text('device') ?? 'auto';
  if (!isDevicePreference(device)) throw new UsageError(`eval: --device must be one of ${DEVICE_PREFERENCES.join(', ')} (got ${JSON.stringify(device)})`);
  const seedText = text('seed') ?? '42';
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 32) throw new UsageError(`eval: --seed must be an integer from 0 to 2^32 (got ${JSON.stringify(seedText)})`);
  const results = (values.results as string[] | undefined) ?? ['ours'];
  const labels = new Set<string>();
  const sets = results.map((r): ResultSet => {
    const set: ResultSet = r === 'ours' ? { kind: 'ours', label: 'ours' } : { kind: 'reference', label: path.basename(path.resolve(cwd, r)), root: path.resolve(cwd, r) };
    let label = set.label;
    for (let n = 2; labels.has(label); n++) label = `${set.label}-${n}`;
    labels.add(label);
    return { ...set, label };
  });
  const local = (id: string) => (id.startsWith('.') || path.isAbsolute(id) ? path.resolve(cwd, id) : id);
  return {
    folder: path.resolve(cwd, positionals[0]!),
    sets,
    dift: local(text('dift-model') ?? EVAL_DEFAULT_MODELS.dift),
    clip: local(text('clip-model') ?? EVAL_DEFAULT_MODELS.clip),
    lpips: path.resolve(cwd, lpips),
    device,
    seed,
    json: values.json === true,
  };
}

/** Exit codes: 0 every entry scored, 1 some could not be (the report says why), 130 cancelled. */
export async function runEvalCommand(options: EvalCommandOptions, io: CliIo): Promise<number> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    io.err(`clipdrag: ${signal}: stopping the evaluation (scored samples are kept in the report; run it again to continue)`);
    controller.abort(new Error('The evaluation was cancelled.'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const cacheDir = defaultPipelineCacheDir();
  const engine = new Engine({ cacheDir: path.join(cacheDir, 'sessions') });
  try {
    const models = { dift: options.dift, clip: options.clip, lpips: options.lpips };
    const report = await runEvaluation({
      root: options.folder,
      sets: options.sets,
      models,
      seed: options.seed,
      previous: await readPreviousReport(options.folder),
      signal: controller.signal,
      onProgress: progressPrinter(io),
      scorer: async () => {
        // Hub ids are downloaded into (or found in) the Hugging Face cache, folders checked, as for edits.
        const resolved = await resolveEditModels({ stableDiffusion: options.dift, clip: options.clip, precision: 'fp32', signal: controller.signal });
        const session = new GraphSession(engine, { device: options.device, signal: controller.signal });
        return DragBenchScorer.open(session, { dift: resolved.stableDiffusion.resolved.folder, clip: resolved.clip!.resolved.folder, lpips: options.lpips }, cacheDir);
      },
    });
    const files = await writeEvalReport(options.folder, report);
    if (options.json) {
      io.out(JSON.stringify({ ...report, summary: summarise(report), reportFiles: files }));
    } else {
      for (const s of summarise(report)) {
        const o = s.overall;
        io.out(o ? `${s.set}: MD ${o.meanDistance.toFixed(2)} px, IF ${o.imageFidelity.toFixed(4)}, CLIP ${o.clipSimilarity.toFixed(4)} over ${o.samples} samples${s.failed ? ` (${s.failed} not scored)` : ''}` : `${s.set}: no sample scored (${s.failed})`);
      }
      io.out(`Report: ${files.markdown}`);
    }
    return report.entries.some((e) => !e.score) ? 1 : 0;
  } catch (error) {
    if (controller.signal.aborted) return 130;
    io.err(`clipdrag: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await engine.close();
  }
}

function progressPrinter(io: CliIo): (progress: EvalProgress) => void {
  return (p) => {
    const left = p.secondsLeft === null ? '' : `, about ${formatDuration(p.secondsLeft)} left`;
    io.err(`[${p.done}/${p.total}] ${p.sample} (${p.set})${p.reused ? ' unchanged, kept' : ''}${left}`);
  };
}
