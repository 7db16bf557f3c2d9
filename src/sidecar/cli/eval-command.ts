// `clipdrag eval <folder>`: DragBench's metrics (mean distance with DIFT on SD-2.1, 1 − LPIPS, CLIP similarity) for
// every sample of a DragBench-layout folder and one or more result sets, with the report and plots written into the
// folder. Entries whose files and models did not change are kept from the last run.
import * as path from 'node:path';
import { formatDuration } from '../../shared/batch';
import type { EvalProgress } from '../../shared/evaluation';
import { DEVICE_PREFERENCES, isDevicePreference, type DevicePreference } from '../../shared/protocol';
import { EVAL_DEFAULT_MODELS, runEvalJob } from '../evaluation/eval-job';
import { EVAL_REPORT_FILES } from '../evaluation/report';
import { JSON_FLAG, describeFlags, parseFlags, type Flag } from './flags';
import { UsageError, type CliIo } from './io';

export { EVAL_DEFAULT_MODELS };

const EVAL_FLAGS: readonly Flag[] = [
  { name: 'results', type: 'string', multiple: true, value: '<dir|ours>', help: 'a result set: "ours" (results next to each sample) or a folder in the reference layout <dir>/<category>/<sample>/dragged_image.png (repeatable; default ours)' },
  { name: 'dift-model', type: 'string', value: '<repo|dir>', help: `Stable Diffusion 2.1 for DIFT (default ${EVAL_DEFAULT_MODELS.dift})` },
  { name: 'clip-model', type: 'string', value: '<repo|dir>', help: `CLIP ViT-B/32 (default ${EVAL_DEFAULT_MODELS.clip})` },
  { name: 'lpips-model', type: 'string', value: '<repo|dir>', help: `LPIPS-AlexNet (default ${EVAL_DEFAULT_MODELS.lpips}): lpips-alex.safetensors, or LPIPS v0.1 alex.pth (or LPIPS_v0.1_alex-<hash>.pth) with an AlexNet alexnet*.pth` },
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
  /** `ours` or absolute folders in the reference layout. */
  results: string[];
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
  const device = text('device') ?? 'auto';
  if (!isDevicePreference(device)) throw new UsageError(`eval: --device must be one of ${DEVICE_PREFERENCES.join(', ')} (got ${JSON.stringify(device)})`);
  const seedText = text('seed') ?? '42';
  const seed = Number(seedText);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 32) throw new UsageError(`eval: --seed must be an integer from 0 to 2^32 (got ${JSON.stringify(seedText)})`);
  const results = ((values.results as string[] | undefined) ?? ['ours']).map((r) => (r === 'ours' ? r : path.resolve(cwd, r)));
  const local = (id: string) => (id.startsWith('.') || path.isAbsolute(id) ? path.resolve(cwd, id) : id);
  return {
    folder: path.resolve(cwd, positionals[0]!),
    results,
    dift: local(text('dift-model') ?? EVAL_DEFAULT_MODELS.dift),
    clip: local(text('clip-model') ?? EVAL_DEFAULT_MODELS.clip),
    lpips: local(text('lpips-model') ?? EVAL_DEFAULT_MODELS.lpips),
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
  try {
    const { report, outcome } = await runEvalJob(
      { folder: options.folder, results: options.results, diftModel: options.dift, clipModel: options.clip, lpipsModel: options.lpips, device: options.device, seed: options.seed },
      { signal: controller.signal, onProgress: progressPrinter(io) },
    );
    const files = outcome.reportFiles;
    if (report.cancelled) {
      io.err(`clipdrag: the evaluation was cancelled; what was scored is in ${files.markdown}`);
      return 130;
    }
    if (options.json) {
      io.out(JSON.stringify({ ...report, summary: outcome.summary, reportFiles: files }));
    } else {
      for (const s of outcome.summary) {
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
  }
}

function progressPrinter(io: CliIo): (progress: EvalProgress) => void {
  return (p) => {
    const left = p.secondsLeft === null ? '' : `, about ${formatDuration(p.secondsLeft)} left`;
    io.err(`[${p.done}/${p.total}] ${p.sample} (${p.set})${p.reused ? ' unchanged, kept' : ''}${left}`);
  };
}
