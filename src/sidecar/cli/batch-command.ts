// `clipdrag batch <folder>`: every image of a folder that has a saved edit spec, and every DragBench sample in it,
// one after another with the models loaded once. Results already there for the same spec, parameters and models are
// skipped, so an interrupted batch continues where it stopped. Progress on stderr; the summary on stdout (--json:
// the report as one object). Ctrl-C cancels after the current step; the report says what was done.
import * as path from 'node:path';
import { formatDuration, type BatchOptions, type BatchPlan, type BatchProgress, type BatchReport, type BatchReportPart, type BatchShard } from '../../shared/batch';
import { EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type EditParameterName, type EditParameters } from '../../shared/edit-parameters';
import { isDevicePreference, isPrecisionPreference } from '../../shared/protocol';
import { runPlannedBatch, type BatchEnvironment } from '../batch/batch-service';
import { BatchFolderError, planBatch } from '../batch/plan';
import { mergeBatchReport } from '../batch/report-parts';
import { inShard, parseShard, ShardError, shardFromEnvironment } from '../batch/shard';
import { skeleton } from '../batch/worker';
import { parseModelSource } from '../hub';
import { UsageError, type CliIo } from './io';

export const BATCH_USAGE = `clipdrag batch <folder> [options]
  runs every image in <folder> (and its sub-folders) that has a saved edit spec (<image>.clipdrag-edit.json),
  and every DragBench sample folder (original_image.png + meta_data.pkl); writes clipdrag-batch-report.md/.json
  --model <repo|dir>     Stable Diffusion 1.5 weights for specs that name none
  --clip <repo|dir>      CLIP ViT-B/16 weights for specs that name none
  --device <ep>          auto, cpu, cuda, webgpu, dml or coreml
  --precision <p>        auto (fp32), fp32 or fp16 (half precision: less GPU memory)
  --param name=value     a parameter for DragBench samples (repeatable), e.g. --param dragSteps=40
  --working-width N      width images are edited at (default 512)
  --force                run every item again, even when a matching result exists
  --plan                 only show what would run, and the time estimate
  --json                 print one JSON object (the plan with --plan, else the report) instead of the summary
  --worker               share the folder with other workers (other processes or machines): claim each item first
  --shard K/N | auto     run only slice K (0 … N-1) of N (implies --worker); auto: from SLURM_ARRAY_TASK_ID or
                         JOB_COMPLETION_INDEX
  --shards N             the number of slices, for --shard auto (required with JOB_COMPLETION_INDEX)
  --claim-timeout S      take over a claim whose worker gave no sign of life for S seconds (default 600)
  --report               only merge the workers' report parts into clipdrag-batch-report.md/.json`;

export interface BatchCommandOptions {
  batch: BatchOptions;
  planOnly: boolean;
  json: boolean;
  /** Present with --worker or --shard: run as one of several workers. */
  worker?: { shard?: BatchShard; claimTimeoutMs?: number };
  /** --report: only merge the report parts. */
  mergeOnly?: boolean;
}

const VALUE_FLAGS = ['--model', '--clip', '--device', '--precision', '--param', '--working-width', '--shard', '--shards', '--claim-timeout'] as const;
const BOOLEAN_FLAGS = ['--json', '--plan', '--force', '--worker', '--report'] as const;

export function parseBatchOptions(args: readonly string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): BatchCommandOptions {
  let folder: string | undefined;
  const values = new Map<string, string>();
  const parameters: Partial<EditParameters> = {};
  const flags = { json: false, plan: false, force: false, worker: false, report: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if ((BOOLEAN_FLAGS as readonly string[]).includes(arg)) flags[arg.slice(2) as keyof typeof flags] = true;
    else if (arg.startsWith('--')) {
      const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
      if (!(VALUE_FLAGS as readonly string[]).includes(flag)) throw new UsageError(`batch: unknown option ${flag}`);
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`batch: ${flag} needs a value`);
      if (flag === '--param') Object.assign(parameters, parseParameter(value));
      else values.set(flag, value);
    } else if (folder === undefined) folder = arg;
    else throw new UsageError(`batch: unexpected argument ${JSON.stringify(arg)} (one folder per run)`);
  }
  if (folder === undefined) throw new UsageError('batch: no folder given');

  const batch: BatchOptions = { folder: path.resolve(cwd, folder) };
  const device = values.get('--device');
  if (device !== undefined) {
    if (!isDevicePreference(device)) throw new UsageError(`batch: --device must be one of auto, cpu, cuda, webgpu, dml, coreml (got ${JSON.stringify(device)})`);
    batch.device = device;
  }
  const precision = values.get('--precision');
  if (precision !== undefined) {
    if (!isPrecisionPreference(precision)) throw new UsageError(`batch: --precision must be one of auto, fp32, fp16 (got ${JSON.stringify(precision)})`);
    batch.precision = precision;
  }
  const model = values.get('--model');
  if (model !== undefined) batch.model = normaliseModelId(model, cwd);
  const clip = values.get('--clip');
  if (clip !== undefined) batch.clipModel = normaliseModelId(clip, cwd);
  const width = values.get('--working-width');
  if (width !== undefined) {
    const n = Number(width);
    if (!Number.isSafeInteger(n) || n < 8 || n % 8 !== 0) throw new UsageError(`batch: --working-width must be a positive multiple of 8 (got ${JSON.stringify(width)})`);
    batch.workingWidth = n;
  }
  if (Object.keys(parameters).length > 0) batch.dragBenchParameters = parameters;
  if (flags.force) batch.force = true;
  const options: BatchCommandOptions = { batch, planOnly: flags.plan, json: flags.json };
  const worker = parseWorkerOptions(values, env);
  if (worker || flags.worker) options.worker = worker ?? {};
  if (flags.report) options.mergeOnly = true;
  return options;
}

/** --shard, --shards and --claim-timeout (any of them makes the run a worker's). */
function parseWorkerOptions(values: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv): BatchCommandOptions['worker'] {
  const shardText = values.get('--shard');
  const shardsText = values.get('--shards');
  const timeoutText = values.get('--claim-timeout');
  if (shardText === undefined && shardsText === undefined && timeoutText === undefined) return undefined;
  const worker: NonNullable<BatchCommandOptions['worker']> = {};
  let shards: number | undefined;
  if (shardsText !== undefined) {
    shards = Number(shardsText);
    if (!Number.isSafeInteger(shards) || shards < 1) throw new UsageError(`batch: --shards must be a whole number of at least 1 (got ${JSON.stringify(shardsText)})`);
    if (shardText !== 'auto') throw new UsageError('batch: --shards goes with --shard auto (with --shard K/N the N says it)');
  }
  try {
    if (shardText === 'auto') worker.shard = shardFromEnvironment(env, shards);
    else if (shardText !== undefined) worker.shard = parseShard(shardText);
  } catch (error) {
    if (error instanceof ShardError) throw new UsageError(`batch: ${error.message}`);
    throw error;
  }
  if (timeoutText !== undefined) {
    const seconds = Number(timeoutText);
    if (timeoutText.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`batch: --claim-timeout must be a positive number of seconds (got ${JSON.stringify(timeoutText)})`);
    worker.claimTimeoutMs = seconds * 1000;
  }
  return worker;
}

/** A folder becomes its absolute path, so results record the same model whatever folder the command ran from. */
function normaliseModelId(id: string, cwd: string): string {
  try {
    const source = parseModelSource(id, { baseDir: cwd });
    return source.type === 'local' ? source.path : id;
  } catch (error) {
    throw new UsageError(`batch: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** "dragSteps=40" → { dragSteps: 40 }, checked against the parameter's kind (ranges are checked with the spec). */
export function parseParameter(text: string): Partial<EditParameters> {
  const eq = text.indexOf('=');
  const name = text.slice(0, Math.max(eq, 0)).trim();
  if (eq < 0 || !(EDIT_PARAMETER_NAMES as string[]).includes(name)) {
    throw new UsageError(`batch: --param expects name=value with one of ${EDIT_PARAMETER_NAMES.join(', ')} (got ${JSON.stringify(text)})`);
  }
  const definition = EDIT_PARAMETER_DEFINITIONS[name as EditParameterName];
  const raw = text.slice(eq + 1).trim();
  if (definition.kind === 'enum') {
    if (!(definition.values as readonly string[]).includes(raw)) throw new UsageError(`batch: --param ${name} must be one of ${definition.values.join(', ')} (got ${JSON.stringify(raw)})`);
    return { [name]: raw } as Partial<EditParameters>;
  }
  const value = Number(raw);
  if (raw === '' || !Number.isFinite(value) || (definition.kind === 'integer' && !Number.isInteger(value))) {
    throw new UsageError(`batch: --param ${name} must be ${definition.kind === 'integer' ? 'an integer' : 'a number'} (got ${JSON.stringify(raw)})`);
  }
  return { [name]: value } as Partial<EditParameters>;
}

/** Exit codes: 0 every item done or skipped, 1 some item failed (or the folder cannot be used), 130 cancelled. */
export async function runBatchCommand(options: BatchCommandOptions, io: CliIo, environment: BatchEnvironment = {}): Promise<number> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    io.err(`clipdrag: ${signal}: cancelling the batch after the current step (finished results are kept; run it again to continue)`);
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const planning = await planBatch(options.batch);
    const { plan } = planning;
    if (options.mergeOnly) {
      const merged = await mergeBatchReport(planning.root, { planned: skeleton(planning), onProblem: (file, error) => io.err(`clipdrag: skipped report part ${file}: ${error instanceof Error ? error.message : String(error)}`) });
      if (!merged) {
        io.err(`clipdrag: ${plan.folder} has no report parts (no worker has run there); nothing to merge`);
        return 1;
      }
      if (options.json) io.out(JSON.stringify({ ...merged, reportFiles: plan.reportFiles }));
      else summary(merged, plan).forEach((line) => io.out(line));
      return merged.totals.failed > 0 ? 1 : 0;
    }
    if (options.planOnly) {
      if (options.json) io.out(JSON.stringify(plan));
      else describePlan(plan).forEach((line) => io.out(line));
      return 0;
    }
    describePlan(plan).forEach((line) => io.err(line));
    if (options.worker?.shard) io.err(`shard ${options.worker.shard.index}/${options.worker.shard.count}: ${plan.items.filter((_, i) => inShard(i, options.worker!.shard)).length} of the items`);
    const report = await runPlannedBatch(planning, options.batch, environment, {
      ...(options.worker ? { worker: options.worker } : {}),
      signal: controller.signal,
      onProgress: progressPrinter(io),
      onReportError: (error) => io.err(`clipdrag: could not update the report: ${error instanceof Error ? error.message : String(error)}`),
    });
    if (options.json) io.out(JSON.stringify({ ...report, reportFiles: plan.reportFiles }));
    else summary(report, plan).forEach((line) => io.out(line));
    if (report.state === 'cancelled') return 130;
    return report.totals.failed > 0 || report.state === 'stopped' ? 1 : 0;
  } catch (error) {
    if (!(error instanceof BatchFolderError)) throw error;
    io.err(`clipdrag: ${error.message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The plan in a few lines: counts, the time estimate and what cannot run. */
export function describePlan(plan: BatchPlan): string[] {
  const { counts, estimate } = plan;
  const basis = estimate.basis === 'previous-results' ? `from ${estimate.recipes} earlier result${estimate.recipes === 1 ? '' : 's'}` : 'a rough default: no earlier results with these models';
  const lines = [
    `${plan.folder}: ${counts.total} item${counts.total === 1 ? '' : 's'}: ${counts.pending} to run, ${counts.done} already done, ${counts.invalid} cannot run`,
    `estimated time: ${formatDuration(estimate.seconds)} (${basis})`,
  ];
  for (const item of plan.items) {
    if (item.state === 'invalid') lines.push(`  cannot run ${item.image}: ${item.problem}`);
  }
  return lines;
}

function progressPrinter(io: CliIo): (progress: BatchProgress) => void {
  // One line per stage and at most one every few seconds within it: a batch runs for hours.
  let lastStage = '';
  let lastLine = 0;
  return (progress) => {
    const position = `[${progress.index + 1}/${progress.total}] ${progress.type === 'item-end' ? progress.item.image : progress.image}`;
    if (progress.type === 'item-start') {
      lastStage = '';
      io.err(`${position}: starting`);
    } else if (progress.type === 'item-progress') {
      const p = progress.progress;
      const now = Date.now();
      if (p.stage === lastStage && now - lastLine < 5000 && p.step < p.total) return;
      lastStage = p.stage;
      lastLine = now;
      io.err(`${position}: ${p.stage}${p.total > 0 ? ` ${p.step}/${p.total}` : ''}${p.message ? ` ${p.message}` : ''}`);
    } else {
      const item = progress.item;
      const detail = item.status === 'succeeded' ? `done in ${formatDuration(item.seconds ?? 0)}, ${item.result}` : item.status === 'failed' ? `FAILED: ${item.error}` : item.status;
      io.err(`${position}: ${detail}`);
    }
  };
}

function summary(report: BatchReport, plan: BatchPlan): string[] {
  const t = report.totals;
  const worker = 'worker' in report ? `Worker ${(report as BatchReportPart).worker.id}: ` : '';
  const state = { completed: 'Batch finished', cancelled: 'Batch cancelled', stopped: 'Batch stopped', running: 'Batch not finished (workers still running, or killed)' }[report.state];
  const lines = [
    `${worker}${state}: ${t.succeeded} done, ${t.skipped} skipped, ${t.failed} failed, ${t.cancelled} cancelled, ${t.notRun} not run (${formatDuration(t.seconds)})`,
  ];
  if (report.stopReason) lines.push(report.stopReason);
  if (t.meanDistance !== null) lines.push(`mean final handle-to-target distance: ${t.meanDistance} px`);
  // The whole message: a spec's first line only says that it is not valid, the lines after it say why.
  for (const item of report.items) if (item.status === 'failed') lines.push(`failed: ${item.image}: ${(item.error ?? 'no reason given').split('\n').join('\n  ')}`);
  lines.push(`report: ${plan.reportFiles.markdown}`);
  return lines;
}
