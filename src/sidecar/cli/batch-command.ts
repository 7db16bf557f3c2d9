// `clipdrag batch <folder>`: every image of a folder that has a saved edit spec, and every DragBench sample in it,
// one after another with the models loaded once. Results already there for the same spec, parameters and models are
// skipped, so an interrupted batch continues where it stopped. Progress on stderr; the summary on stdout (--json:
// the report as one object). Ctrl-C cancels after the current step; the report says what was done.
import * as path from 'node:path';
import { formatDuration, type BatchOptions, type BatchPlan, type BatchProgress, type BatchReport } from '../../shared/batch';
import { EDIT_MODES, EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type EditMode, type EditParameterName, type EditParameters } from '../../shared/edit-parameters';
import { isDevicePreference, isPrecisionPreference } from '../../shared/protocol';
import { runPlannedBatch, type BatchEnvironment } from '../batch/batch-service';
import { BatchFolderError, planBatch } from '../batch/plan';
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
  --modes <list>         run every item in each of these modes (e.g. drag,clipdrag,freedrag) and compare them
                         in the report, one table per sample
  --working-width N      width images are edited at (default 512)
  --force                run every item again, even when a matching result exists
  --plan                 only show what would run, and the time estimate
  --json                 print one JSON object (the plan with --plan, else the report) instead of the summary`;

export interface BatchCommandOptions {
  batch: BatchOptions;
  planOnly: boolean;
  json: boolean;
}

const VALUE_FLAGS = ['--model', '--clip', '--device', '--precision', '--param', '--working-width', '--modes'] as const;

export function parseBatchOptions(args: readonly string[], cwd = process.cwd()): BatchCommandOptions {
  let folder: string | undefined;
  const values = new Map<string, string>();
  const parameters: Partial<EditParameters> = {};
  const flags = { json: false, plan: false, force: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--json' || arg === '--plan' || arg === '--force') flags[arg.slice(2) as keyof typeof flags] = true;
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
  const modes = values.get('--modes');
  if (modes !== undefined) batch.modes = parseModes(modes);
  if (flags.force) batch.force = true;
  return { batch, planOnly: flags.plan, json: flags.json };
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
