// `clipdrag batch <folder>`: every image of a folder that has a saved edit spec, and every DragBench sample in it,
// one after another with the models loaded once. Results already there for the same spec, parameters and models are
// skipped, so an interrupted batch continues where it stopped. Progress on stderr; the summary on stdout (--json:
// the report as one object). Ctrl-C cancels after the current step; the report says what was done.
import * as path from 'node:path';
import { formatDuration, type BatchOptions, type BatchPlan, type BatchProgress, type BatchReport } from '../../shared/batch';
import { runPlannedBatch, type BatchEnvironment } from '../batch/batch-service';
import { BatchFolderError, planBatch } from '../batch/plan';
import { parseModelSource } from '../hub';
import { JSON_FLAG, MODEL_FLAGS, PARAMETER_FLAGS, describeFlags, modelSettings, parameterValues, parseFlags, type Flag } from './flags';
import { UsageError, type CliIo } from './io';

const BATCH_FLAGS: readonly Flag[] = [
  ...MODEL_FLAGS,
  { name: 'force', type: 'boolean', help: 'run every item again, even when a matching result exists' },
  { name: 'plan', type: 'boolean', help: 'only show what would run, and the time estimate' },
  { ...JSON_FLAG, help: 'print one JSON object (the plan with --plan, else the report) instead of the summary' },
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
}

/** The options, or `'help'` when --help was asked for. */
export function parseBatchOptions(args: readonly string[], cwd = process.cwd()): BatchCommandOptions | 'help' {
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
  if (settings.workingWidth !== undefined) batch.workingWidth = settings.workingWidth;
  const parameters = parameterValues('batch', values);
  if (Object.keys(parameters).length > 0) batch.dragBenchParameters = parameters;
  if (values.force === true) batch.force = true;
  return { batch, planOnly: values.plan === true, json: values.json === true };
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
    if (options.planOnly) {
      if (options.json) io.out(JSON.stringify(plan));
      else describePlan(plan).forEach((line) => io.out(line));
      return 0;
    }
    describePlan(plan).forEach((line) => io.err(line));
    const report = await runPlannedBatch(planning, options.batch, environment, {
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
  const lines = [
    `${report.state === 'completed' ? 'Batch finished' : report.state === 'cancelled' ? 'Batch cancelled' : 'Batch stopped'}: ${t.succeeded} done, ${t.skipped} skipped, ${t.failed} failed, ${t.cancelled} cancelled, ${t.notRun} not run (${formatDuration(t.seconds)})`,
  ];
  if (report.stopReason) lines.push(report.stopReason);
  if (t.meanDistance !== null) lines.push(`mean final handle-to-target distance: ${t.meanDistance} px`);
  // The whole message: a spec's first line only says that it is not valid, the lines after it say why.
  for (const item of report.items) if (item.status === 'failed') lines.push(`failed: ${item.image}: ${(item.error ?? 'no reason given').split('\n').join('\n  ')}`);
  lines.push(`report: ${plan.reportFiles.markdown}`);
  return lines;
}
