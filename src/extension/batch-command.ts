// "CLIPDrag: Run Batch on Folder…" (command palette, and the Explorer's folder context menu): asks the engine for the
// plan of the folder, shows it in a quick pick to confirm, runs it under a cancellable progress notification with the
// status of each image, and ends with a summary that opens the report. Only in trusted workspaces (the caller
// checks): a batch writes result images.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BATCH_REPORT_NAME, formatDuration, type BatchOptions, type BatchPlan, type BatchPlanItem, type BatchProgress, type BatchReport } from '../shared/batch';
import { EDIT_PARAMETER_NAMES, type EditParameters } from '../shared/edit-parameters';
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
}

/** The Explorer passes (folder, selected folders); other callers may pass (folder, options). */
function commandOptions(value: unknown): BatchCommandOptions {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof vscode.Uri) return {};
  const { workingWidth, force } = value as Record<string, unknown>;
  return {
    ...(typeof workingWidth === 'number' ? { workingWidth } : {}),
    ...(force === true ? { force } : {}),
  };
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
  const options: BatchOptions = { ...batchSettings(folder), ...commandOptions(optionsArgument), folder: folder.fsPath };
  try {
    const plan = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'CLIPDrag: looking for images to edit' }, () =>
      sidecar.sendRequest(BatchPlanRequestType, options),
    );
    if (!(await confirmPlan(plan))) return undefined;
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIPDrag batch: ${path.basename(plan.folder)}`, cancellable: true },
      (progress, token) => {
        const total = plan.items.length;
        return sidecar.sendRequestWithProgress(
          BatchRunRequestType,
          options,
          (update: BatchProgress) => {
            const message = describeProgress(update);
            if (update.type === 'item-end') progress.report({ message, increment: 100 / total });
            else progress.report({ message });
          },
          token,
        );
      },
    );
    void showSummary(report, plan);
    return report;
  } catch (error) {
    void showError(error);
    return undefined;
  }
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

interface PlanPick extends vscode.QuickPickItem {
  action?: 'run' | 'cancel';
}

/**
 * Shows the plan in a quick pick (Run, Cancel, then every item with what will happen to it); resolves true when the
 * user picks Run. A quick pick rather than a modal dialog: it has room for a long list, and it can be driven in tests.
 */
async function confirmPlan(plan: BatchPlan): Promise<boolean> {
  const { counts, estimate } = plan;
  const name = path.basename(plan.folder);
  if (counts.pending === 0) {
    const why = counts.total === 0 ? `No images with a saved CLIPDrag edit, and no DragBench samples, were found in ${name}.` : `Nothing to run in ${name}: ${counts.done} already done, ${counts.invalid} cannot run.`;
    const open = 'Open Report';
    const reportExists = fs.existsSync(plan.reportFiles.markdown);
    void (reportExists ? vscode.window.showInformationMessage(why, open) : vscode.window.showInformationMessage(why)).then((choice) => {
      if (choice === open) void vscode.window.showTextDocument(vscode.Uri.file(plan.reportFiles.markdown));
    });
    return false;
  }
  const basis = estimate.basis === 'previous-results' ? `from the timings of ${estimate.recipes} earlier result${estimate.recipes === 1 ? '' : 's'}` : 'a rough, pessimistic guess: no earlier results with these models';
  const images = `${counts.pending} image${counts.pending === 1 ? '' : 's'}`;
  const items: PlanPick[] = [
    { label: `$(play) Run ${images}`, description: `about ${formatDuration(estimate.seconds)}`, detail: `Estimated ${basis}. Results are written next to each image, the report to ${BATCH_REPORT_NAME}.md.`, action: 'run' },
    { label: '$(close) Cancel', action: 'cancel' },
  ];
  const section = (label: string, states: BatchPlanItem['state'], icon: string, describe: (item: BatchPlanItem) => Partial<vscode.QuickPickItem>) => {
    const members = plan.items.filter((item) => item.state === states);
    if (members.length === 0) return;
    items.push({ label: `${label} (${members.length})`, kind: vscode.QuickPickItemKind.Separator });
    for (const item of members) items.push({ label: `$(${icon}) ${item.image}`, ...describe(item) });
  };
  section('To run', 'pending', 'circle-large-outline', (item) => ({ description: `${item.source === 'dragbench' ? 'DragBench sample, ' : ''}about ${formatDuration(item.estimateSeconds ?? 0)}` }));
  section('Already done: skipped', 'done', 'pass', (item) => ({ description: item.result ?? '' }));
  section('Cannot run', 'invalid', 'error', (item) => ({ detail: item.problem?.split('\n').join(' ') ?? '' }));

  const pick = vscode.window.createQuickPick<PlanPick>();
  pick.title = `CLIPDrag batch in ${name}: ${counts.pending} to run, ${counts.done} already done, ${counts.invalid} cannot run`;
  pick.placeholder = `Run CLIPDrag on ${images}? Models: ${plan.models.model} and ${plan.models.clipModel}, unless a spec names others.`;
  pick.items = items;
  pick.matchOnDescription = true;
  pick.ignoreFocusOut = true;
  return new Promise<boolean>((resolve) => {
    pick.onDidAccept(() => {
      const action = pick.selectedItems[0]?.action;
      // Items other than Run and Cancel only show the plan.
      if (!action) return;
      resolve(action === 'run');
      pick.hide();
    });
    pick.onDidHide(() => {
      resolve(false);
      pick.dispose();
    });
    pick.show();
  });
}

function describeProgress(update: BatchProgress): string {
  const position = `${update.index + 1}/${update.total}`;
  if (update.type === 'item-start') return `${position} ${update.image}: starting`;
  if (update.type === 'item-progress') {
    const p = update.progress;
    return `${position} ${update.image}: ${stageLabel(p.stage)}${p.total > 0 ? ` ${p.step}/${p.total}` : ''}`;
  }
  const item = update.item;
  const outcome = { succeeded: 'done', skipped: 'already done', failed: 'failed', cancelled: 'cancelled', 'not-run': 'not run' }[item.status];
  return `${position} ${item.image}: ${outcome}`;
}

async function showSummary(report: BatchReport, plan: BatchPlan): Promise<void> {
  const t = report.totals;
  const head = { completed: 'CLIPDrag batch finished', cancelled: 'CLIPDrag batch cancelled', stopped: 'CLIPDrag batch stopped', running: 'CLIPDrag batch interrupted' }[report.state];
  const parts = [`${t.succeeded} done`, `${t.skipped} skipped`, `${t.failed} failed`];
  if (t.cancelled + t.notRun > 0) parts.push(`${t.cancelled + t.notRun} not run`);
  const distance = t.meanDistance !== null ? ` Mean final handle-to-target distance: ${t.meanDistance} px.` : '';
  const message = `${head}: ${parts.join(', ')} (${formatDuration(t.seconds)}).${report.stopReason ? ` ${report.stopReason}` : ''}${distance}`;
  const open = 'Open Report';
  const show = t.failed > 0 || report.state === 'stopped' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  if ((await show(message, open)) === open) {
    await vscode.window.showTextDocument(vscode.Uri.file(plan.reportFiles.markdown));
  }
}
