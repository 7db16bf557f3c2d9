// `clipdrag batch <folder>`: every image of a folder that has a saved edit spec, and every DragBench sample in it,
// one after another with the models loaded once. Results already there for the same spec, parameters and models are
// skipped, so an interrupted batch continues where it stopped. Progress on stderr; the summary on stdout (--json:
// the report as one object). Ctrl-C cancels after the current step; the report says what was done.
import * as path from 'node:path';
import { formatDuration, type BatchOptions, type BatchPlan, type BatchProgress, type BatchReport, type BatchReportPart, type BatchShard } from '../../shared/batch';
import { EDIT_MODES, type EditMode } from '../../shared/edit-parameters';
import { runPlannedBatch, type BatchEnvironment } from '../batch/batch-service';
import { BatchFolderError, planBatch } from '../batch/plan';
import { mergeBatchReport } from '../batch/report-parts';
import { inShard, parseShard, ShardError, shardFromEnvironment } from '../batch/shard';
import { skeleton } from '../batch/worker';
import { parseModelSource } from '../hub';
import { JSON_FLAG, MODEL_FLAGS, PARAMETER_FLAGS, describeFlags, modelSettings, parameterValues, parseFlags, stringFlag, type Flag, type FlagValues } from './flags';
import { UsageError, type CliIo } from './io';

const BATCH_FLAGS: readonly Flag[] = [
  ...MODEL_FLAGS,
  { name: 'modes', type: 'string', value: '<list>', help: 'run every item in each of these modes (e.g. drag,clipdrag,freedrag) and compare them in the report, one table per sample' },
  { name: 'force', type: 'boolean', help: 'run every item again, even when a matching result exists' },
  { name: 'plan', type: 'boolean', help: 'only show what would run, and the time estimate' },
  { ...JSON_FLAG, help: 'print one JSON object (the plan with --plan, else the report) instead of the summary' },
  { name: 'worker', type: 'boolean', help: 'share the folder with other workers (other processes or machines): claim each item first' },
  { name: 'shard', type: 'string', value: 'K/N|auto', help: 'run only slice K (0 … N-1) of N (implies --worker); auto: from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX' },
  { name: 'shards', type: 'string', value: 'N', help: 'the number of slices, for --shard auto (required with JOB_COMPLETION_INDEX)' },
  { name: 'claim-timeout', type: 'string', value: 'S', help: "take over a claim whose worker gave no sign of life for S seconds (default 600)" },
  { name: 'report', type: 'boolean', help: "only merge the workers' report parts into clipdrag-batch-report.md/.json" },
];

export const BATCH_USAGE = `clipdrag batch <folder> [options]
  runs every image in <folder> (and its sub-folders) that has a saved edit spec (<image>.clipdrag-edit.json),
  and every DragBench sample folder (original_image.png + meta_data.pkl); writes clipdrag-batch-report.md/.json;
  --model and --clip apply to specs that name no model
${describeFlags(BATCH_FLAGS)}
edit parameters of the DragBench samples (a saved spec keeps its own):
${describeFlags(PARAMETER_FLAGS)}`;

export interface BatchCommandOptions {
  batch: BatchOptions;
  planOnly: boolean;
  json: boolean;
  /** Present with --worker or --shard: run as one of several workers. */
  worker?: { shard?: BatchShard; claimTimeoutMs?: number };
  /** --report: only merge the report parts. */
  mergeOnly?: boolean;
}

/** The options, or `'help'` when --help was asked for. */
export function parseBatchOptions(args: readonly string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): BatchCommandOptions | 'help' {
  const { values, positionals, help } = parseFlags('batch', args, [...BATCH_FLAGS, ...PARAMETER_FLAGS]);
  if (help) return 'help';
  if (positionals.length === 0) throw new UsageError('batch: no folder given');
  if (positionals.length > 1) throw new UsageError(`batch: unexpected argument ${JSON.stringify(positionals[1])} (one folder per run)`);

  const batch: BatchOptions = { folder: path.resolve(cwd, positionals[0]!) };
  const settings = modelSettings('batch', values);
  if (settings.device !== undefined) batch.device = settings.device;
  if (settings.precision !== undefined) batch.precision = settings.precision;
  if (settings.model !== undefined) batch.model = normaliseModelId(settings.model, cwd);
  if (settings.clip !== undefined) batch.clipModel = normaliseModelId(settings.clip, cwd);
  if (settings.modelConfig !== undefined) batch.modelConfig = path.resolve(cwd, settings.modelConfig);
  if (settings.workingWidth !== undefined) batch.workingWidth = settings.workingWidth;
  const parameters = parameterValues('batch', values);
  if (Object.keys(parameters).length > 0) batch.dragBenchParameters = parameters;
  const modes = stringFlag(values, 'modes');
  if (modes !== undefined) batch.modes = parseModes(modes);
  if (values.force === true) batch.force = true;
  const options: BatchCommandOptions = { batch, planOnly: values.plan === true, json: values.json === true };
  const worker = parseWorkerOptions(values, env);
  if (worker || values.worker === true) options.worker = worker ?? {};
  if (values.report === true) options.mergeOnly = true;
  return options;
}

/** --shard, --shards and --claim-timeout (any of them makes the run a worker's). */
function parseWorkerOptions(values: FlagValues, env: NodeJS.ProcessEnv): BatchCommandOptions['worker'] {
  const shardText = stringFlag(values, 'shard');
  const shardsText = stringFlag(values, 'shards');
  const timeoutText = stringFlag(values, 'claim-timeout');
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

/** "drag,clipdrag,freedrag" → the modes, each once, in the given order. */
export function parseModes(text: string): EditMode[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new UsageError(`batch: --modes is empty; expected a list such as drag,clipdrag,freedrag (modes: ${EDIT_MODES.join(', ')})`);
  for (const name of names) {
    if (!(EDIT_MODES as readonly string[]).includes(name)) throw new UsageError(`batch: --modes: unknown mode ${JSON.stringify(name)}; expected some of ${EDIT_MODES.join(', ')}`);
  }
  return [...new Set(names)] as EditMode[];
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
    counts.pending === 0 ? 'nothing to run (use --force to run done items again)' : `estimated time: ${formatDuration(estimate.seconds)} (${basis})`,
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
