// "CLIPDrag: Run Batch on Folder…" (command palette, and the Explorer's folder context menu): asks the engine for the
// plan of the folder, shows it in a quick pick to confirm, runs it under a cancellable progress notification with the
// status of each image, and ends with a summary that opens the report. From the plan the user may choose modes
// (several at once, to compare them: every image runs once in each, like `clipdrag batch --modes`); by default each
// image runs in its spec's own mode. Only in trusted workspaces (the caller checks): a batch writes result images.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BATCH_REPORT_NAME, formatDuration, type BatchOptions, type BatchPlan, type BatchPlanItem, type BatchProgress, type BatchReport } from '../shared/batch';
import { EDIT_MODE_NAMES, EDIT_MODES, EDIT_PARAMETER_NAMES, isEditMode, type EditMode, type EditParameters } from '../shared/edit-parameters';
import { EDIT_MODE_DESCRIPTIONS } from '../shared/edit-spec';
import { BatchPlanRequestType, BatchRunRequestType } from '../shared/protocol';
import { CONFIG_SECTION, devicePreference, precisionPreference } from './config';
import { stageLabel } from './editor/edit-run-backend';
import type { SidecarClient } from './sidecar/sidecar-client';

/** Options a caller may pass as the command's second argument (keybindings, tasks, tests). */
export interface BatchCommandOptions {
  /** Width images are edited at (default 512, as the reference). */
  workingWidth?: number;
  /** Run every item again, even those with a matching result. */
  force?: boolean;
  /** Run every item once in each of these modes (what the plan's "Modes" choice starts from); absent: each spec's own. */
  modes?: EditMode[];
}

/** The Explorer passes (folder, selected folders); other callers may pass (folder, options). */
function commandOptions(value: unknown): BatchCommandOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof vscode.Uri) return {};
  const { workingWidth, force, modes } = value as Record<string, unknown>;
  const validModes = Array.isArray(modes) ? orderedModes(modes.filter(isEditMode)) : undefined;
  return {
    ...(typeof workingWidth === 'number' ? { workingWidth } : {}),
    ...(force === true ? { force } : {}),
    ...(validModes ? { modes: validModes } : {}),
  };
}

/** The modes in their usual order, each once; undefined for none (each spec's own mode). */
function orderedModes(modes: readonly EditMode[]): EditMode[] | undefined {
  const ordered = EDIT_MODES.filter((mode) => modes.includes(mode));
  return ordered.length > 0 ? ordered : undefined;
}

export async function runBatchCommand(
  sidecar: SidecarClient,
  showError: (error: unknown) => Thenable<unknown>,
  folderArgument: unknown,
  optionsArgument: unknown,
): Promise<BatchReport | undefined> {
  const folder = folderArgument instanceof vscode.Uri ? folderArgument : await pickFolder();
  if (!folder) return undefined;
  if (folder.scheme !== 'file') {
    void vscode.window.showErrorMessage(`CLIPDrag runs batches on folders on this computer's disk; ${folder.toString()} is not one.`);
    return undefined;
  }
  const { modes: initialModes, ...rest } = commandOptions(optionsArgument);
  let modes = initialModes;
  try {
    // The plan depends on the modes: choosing other modes plans again and shows the new plan.
    let options: BatchOptions;
    let plan: BatchPlan;
    for (;;) {
      options = { ...batchSettings(folder), ...rest, ...(modes ? { modes } : {}), folder: folder.fsPath };
      plan = await requestPlan(sidecar, options);
      const choice = await confirmPlan(plan, modes, (chosen) => void vscode.commands.executeCommand('clipdrag.runBatch', folder, { ...rest, modes: chosen }));
      if (choice === 'modes') {
        const picked = await pickModes(path.basename(plan.folder), modes);
        if (picked !== 'dismissed') modes = picked;
        continue;
      }
      if (choice !== 'run') return undefined;
      break;
    }
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIPDrag batch: ${path.basename(plan.folder)}`, cancellable: true },
      (progress, token) => {
        const total = plan.items.length;
        return sidecar.sendRequestWithProgress(
          BatchRunRequestType,
          options,
          (update: BatchProgress) => {
            const message = describeProgress(update, plan.items[update.index]?.mode);
            if (update.type === 'item-end') progress.report({ message, increment: 100 / total });
            else progress.report({ message });
          },
          token,
        );
      },
    );
    void showSummary(report, plan, modes);
    return report;
  } catch (error) {
    void showError(error);
    return undefined;
  }
}

function requestPlan(sidecar: SidecarClient, options: BatchOptions): Thenable<BatchPlan> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'CLIPDrag: looking for images to edit' }, () => sidecar.sendRequest(BatchPlanRequestType, options));
}

async function pickFolder(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Run CLIPDrag Batch',
    ...(vscode.workspace.workspaceFolders?.[0] ? { defaultUri: vscode.workspace.workspaceFolders[0].uri } : {}),
  });
  return picked?.[0];
}

/**
 * Models and device from the settings, and the default parameters (`clipdrag.defaults.*`) for DragBench samples,
 * which carry none. A model setting naming a folder relative to the workspace folder is made absolute.
 */
export function batchSettings(folder: vscode.Uri): Omit<BatchOptions, 'folder'> {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION, folder);
  const base = vscode.workspace.getWorkspaceFolder(folder)?.uri.fsPath ?? folder.fsPath;
  const text = (key: string) => config.get<string>(key, '').trim();
  const model = modelSetting(text('model'), base);
  const clipModel = modelSetting(text('clipModel'), base);
  const modelConfig = modelSetting(text('modelConfig'), base);
  const hubCacheDirectory = text('cacheDirectory');
  const parameters: Partial<EditParameters> = {};
  for (const name of EDIT_PARAMETER_NAMES) {
    const value = config.get<unknown>(`defaults.${name}`);
    if (value !== undefined) (parameters as Record<string, unknown>)[name] = value;
  }
  return {
    device: devicePreference(),
    precision: precisionPreference(),
    ...(model ? { model } : {}),
    ...(clipModel ? { clipModel } : {}),
    ...(modelConfig ? { modelConfig } : {}),
    ...(hubCacheDirectory ? { hubCacheDirectory } : {}),
    dragBenchParameters: parameters,
  };
}

/** A model setting: a folder relative to the workspace folder made absolute; hub ids and absolute paths as they are. */
export function modelSetting(value: string, base: string): string | undefined {
  if (value === '') return undefined;
  if (path.isAbsolute(value) || value.startsWith('~')) return value;
  const candidate = path.resolve(base, value);
  return isDirectory(candidate) ? candidate : value;
}

function isDirectory(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

type PlanChoice = 'run' | 'cancel' | 'modes';

interface PlanPick extends vscode.QuickPickItem {
  action?: PlanChoice;
}

/** "each image in its spec's own mode", or the modes by name. */
function describeModes(modes: readonly EditMode[] | undefined): string {
  return modes ? modes.map((mode) => `${EDIT_MODE_NAMES[mode]} (${mode})`).join(', ') : "each image in its spec's own mode";
}

/**
 * Shows the plan in a quick pick (Run, Cancel, Modes, then every item with what will happen to it); resolves with what
 * the user picked. A quick pick rather than a modal dialog: it has room for a long list, and it can be driven in tests.
 * With nothing to run it says so in a notification instead, which offers other modes through `runInOtherModes`.
 */
async function confirmPlan(plan: BatchPlan, modes: EditMode[] | undefined, runInOtherModes: (modes: EditMode[]) => void): Promise<PlanChoice> {
  const { counts, estimate } = plan;
  const name = path.basename(plan.folder);
  if (counts.pending === 0) {
    const why = counts.total === 0 ? `No images with a saved CLIPDrag edit, and no DragBench samples, were found in ${name}.` : `Nothing to run in ${name}: ${counts.done} already done, ${counts.invalid} cannot run.`;
    const open = 'Open Report';
    const otherModes = 'Run in Other Modes…';
    const buttons = [...(fs.existsSync(plan.reportFiles.markdown) ? [open] : []), ...(counts.total > 0 ? [otherModes] : [])];
    void vscode.window.showInformationMessage(why, ...buttons).then(async (choice) => {
      if (choice === open) void vscode.window.showTextDocument(vscode.Uri.file(plan.reportFiles.markdown));
      if (choice !== otherModes) return;
      const picked = await pickModes(name, modes);
      if (picked !== 'dismissed' && picked) runInOtherModes(picked);
    });
    return 'cancel';
  }
  const basis = estimate.basis === 'previous-results' ? `from the timings of ${estimate.recipes} earlier result${estimate.recipes === 1 ? '' : 's'}` : 'a rough, pessimistic guess: no earlier results with these models';
  // With several modes an image runs once per mode: count the runs.
  const images = modes ? `${counts.pending} edit${counts.pending === 1 ? '' : 's'} in ${modes.length} mode${modes.length === 1 ? '' : 's'}` : `${counts.pending} image${counts.pending === 1 ? '' : 's'}`;
  const items: PlanPick[] = [
    { label: `$(play) Run ${images}`, description: `about ${formatDuration(estimate.seconds)}`, detail: `Estimated ${basis}. Results are written next to each image, the report to ${BATCH_REPORT_NAME}.md.`, action: 'run' },
    { label: '$(close) Cancel', action: 'cancel' },
    {
      label: `$(list-selection) Modes: ${describeModes(modes)}`,
      description: 'choose…',
      detail: 'Run every image once in each of several modes to compare them (the report puts them side by side).',
      action: 'modes',
    },
  ];
  const section = (label: string, states: BatchPlanItem['state'], icon: string, describe: (item: BatchPlanItem) => Partial<vscode.QuickPickItem>) => {
    const members = plan.items.filter((item) => item.state === states);
    if (members.length === 0) return;
    items.push({ label: `${label} (${members.length})`, kind: vscode.QuickPickItemKind.Separator });
    for (const item of members) items.push({ label: `$(${icon}) ${item.image}`, ...describe(item) });
  };
  const inMode = (item: BatchPlanItem) => (item.mode ? `${EDIT_MODE_NAMES[item.mode]} (${item.mode}), ` : '');
  section('To run', 'pending', 'circle-large-outline', (item) => ({ description: `${inMode(item)}${item.source === 'dragbench' ? 'DragBench sample, ' : ''}about ${formatDuration(item.estimateSeconds ?? 0)}` }));
  section('Already done: skipped', 'done', 'pass', (item) => ({ description: `${inMode(item)}${item.result ?? ''}` }));
  section('Cannot run', 'invalid', 'error', (item) => ({ description: inMode(item), detail: item.problem?.split('\n').join(' ') ?? '' }));

  const pick = vscode.window.createQuickPick<PlanPick>();
  pick.title = `CLIPDrag batch in ${name}: ${counts.pending} to run, ${counts.done} already done, ${counts.invalid} cannot run`;
  pick.placeholder = `Run CLIPDrag on ${images}? Models: ${plan.models.model} and ${plan.models.clipModel}, unless a spec names others.`;
  pick.items = items;
  pick.matchOnDescription = true;
  pick.ignoreFocusOut = true;
  return new Promise<PlanChoice>((resolve) => {
    pick.onDidAccept(() => {
      const action = pick.selectedItems[0]?.action;
      // Items other than Run, Cancel and Modes only show the plan.
      if (!action) return;
      resolve(action);
      pick.hide();
    });
    pick.onDidHide(() => {
      resolve('cancel');
      pick.dispose();
    });
    pick.show();
  });
}

interface ModePick extends vscode.QuickPickItem {
  /** Undefined: the item that stands for each spec's own mode. */
  mode?: EditMode;
}

/**
 * A multi-select quick pick of the modes, starting from `current` (none: each spec's own mode, which is an item of its
 * own and excludes the others). Resolves with the modes (undefined: each spec's own), or 'dismissed'.
 */
async function pickModes(folderName: string, current: readonly EditMode[] | undefined): Promise<EditMode[] | undefined | 'dismissed'> {
  const own: ModePick = { label: "$(file) Each image in its spec's own mode", description: 'default', detail: 'One run per image, as its saved edit says.' };
  const modeItems: ModePick[] = EDIT_MODES.map((mode) => ({ label: EDIT_MODE_NAMES[mode], description: mode, detail: EDIT_MODE_DESCRIPTIONS[mode], mode }));
  const pick = vscode.window.createQuickPick<ModePick>();
  pick.title = `CLIPDrag batch in ${folderName}: modes`;
  pick.placeholder = 'Check one or more modes: every image runs once in each (text mode needs specs without points and with both prompts)';
  pick.canSelectMany = true;
  pick.ignoreFocusOut = true;
  pick.items = [own, ...modeItems];
  let selection: readonly ModePick[] = current ? modeItems.filter((item) => current.includes(item.mode!)) : [own];
  pick.selectedItems = selection;
  pick.onDidChangeSelection((next) => {
    // "Own mode" and the modes exclude each other: the one just checked wins.
    let kept = next;
    if (next.includes(own) && !selection.includes(own)) kept = [own];
    else if (next.includes(own) && next.length > 1) kept = next.filter((item) => item !== own);
    selection = kept;
    if (kept.length !== next.length) pick.selectedItems = kept;
  });
  return new Promise((resolve) => {
    pick.onDidAccept(() => {
      resolve(orderedModes(pick.selectedItems.flatMap((item) => (item.mode ? [item.mode] : []))));
      pick.hide();
    });
    pick.onDidHide(() => {
      resolve('dismissed');
      pick.dispose();
    });
    pick.show();
  });
}

/** `mode`: the item's mode when the batch runs several (the progress names only the image). */
function describeProgress(update: BatchProgress, mode: EditMode | undefined): string {
  const position = `${update.index + 1}/${update.total}`;
  const inMode = mode ? ` (${mode})` : '';
  if (update.type === 'item-start') return `${position} ${update.image}${inMode}: starting`;
  if (update.type === 'item-progress') {
    const p = update.progress;
    return `${position} ${update.image}${inMode}: ${stageLabel(p.stage)}${p.total > 0 ? ` ${p.step}/${p.total}` : ''}`;
  }
  const item = update.item;
  const outcome = { succeeded: 'done', skipped: 'already done', failed: 'failed', cancelled: 'cancelled', 'not-run': 'not run' }[item.status];
  return `${position} ${item.image}${inMode}: ${outcome}`;
}

async function showSummary(report: BatchReport, plan: BatchPlan, modes: readonly EditMode[] | undefined): Promise<void> {
  const t = report.totals;
  const head = { completed: 'CLIPDrag batch finished', cancelled: 'CLIPDrag batch cancelled', stopped: 'CLIPDrag batch stopped', running: 'CLIPDrag batch interrupted' }[report.state];
  const parts = [`${t.succeeded} done`, `${t.skipped} skipped`, `${t.failed} failed`];
  if (t.cancelled + t.notRun > 0) parts.push(`${t.cancelled + t.notRun} not run`);
  const distance = t.meanDistance !== null ? ` Mean final handle-to-target distance: ${t.meanDistance} px.` : '';
  const compared = modes ? ` Modes: ${modes.join(', ')}; the report compares them side by side.` : '';
  const message = `${head}: ${parts.join(', ')} (${formatDuration(t.seconds)}).${report.stopReason ? ` ${report.stopReason}` : ''}${distance}${compared}`;
  const open = 'Open Report';
  const show = t.failed > 0 || report.state === 'stopped' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  if ((await show(message, open)) === open) {
    await vscode.window.showTextDocument(vscode.Uri.file(plan.reportFiles.markdown));
  }
}
