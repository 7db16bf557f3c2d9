// "CLIPDrag: Evaluate Batch Results…" (command palette, and the Explorer's folder context menu): DragBench's metrics
// (MD, IF = 1 − LPIPS, CLIP similarity) over a DragBench-layout folder, for the batch's results next to each sample and
// any result folders in the reference layout, with the models of the `clipdrag.evaluation.*` settings. Runs in the
// engine under a cancellable progress notification; the report is written into the folder and its Markdown opened in
// the preview. Only in trusted workspaces (the caller checks): it downloads models and writes files.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatDuration } from '../shared/batch';
import type { EvalOptions, EvalOutcome, EvalProgress } from '../shared/evaluation';
import { EvalRunRequestType, SidecarErrorCodes } from '../shared/protocol';
import { modelSetting } from './batch-command';
import { CONFIG_SECTION, devicePreference } from './config';
import type { SidecarClient } from './sidecar/sidecar-client';

/** Options a caller may pass as the command's second argument (tasks, keybindings, tests). */
export interface EvalCommandOptions {
  /** Result folders in the reference layout, besides (or, with `ours: false`, instead of) the batch's results. */
  resultFolders?: string[];
  /** Score the batch's results next to each sample (default true). */
  ours?: boolean;
  /** Open the Markdown report at the end (default true). */
  openReport?: boolean;
}

function commandOptions(value: unknown): EvalCommandOptions | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof vscode.Uri) return undefined;
  const { resultFolders, ours, openReport } = value as Record<string, unknown>;
  return {
    ...(Array.isArray(resultFolders) ? { resultFolders: resultFolders.filter((f): f is string => typeof f === 'string') } : {}),
    ...(typeof ours === 'boolean' ? { ours } : {}),
    ...(typeof openReport === 'boolean' ? { openReport } : {}),
  };
}

export const EVALUATION_SETTINGS = { dift: 'evaluation.diftModel', clip: 'evaluation.clipModel', lpips: 'evaluation.lpipsModel' } as const;

export async function runEvalCommand(
  sidecar: SidecarClient,
  showError: (error: unknown) => Thenable<unknown>,
  folderArgument: unknown,
  optionsArgument: unknown,
): Promise<EvalOutcome | undefined> {
  const folder = folderArgument instanceof vscode.Uri ? folderArgument : await pickFolders('Evaluate DragBench Folder', false).then((f) => f?.[0]);
  if (!folder) return undefined;
  if (folder.scheme !== 'file') {
    void vscode.window.showErrorMessage(`CLIPDrag evaluates folders on this computer's disk; ${folder.toString()} is not one.`);
    return undefined;
  }
  const given = commandOptions(optionsArgument);
  const results = given ? [...(given.ours === false ? [] : ['ours']), ...(given.resultFolders ?? [])] : await pickResults(folder);
  if (!results || results.length === 0) return undefined;
  const options: EvalOptions = { ...evaluationSettings(folder), folder: folder.fsPath, results };
  try {
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIPDrag evaluation: ${path.basename(folder.fsPath)}`, cancellable: true },
      (progress, token) => {
        progress.report({ message: 'opening the models (a first run downloads them)' });
        return sidecar.sendRequestWithProgress(
          EvalRunRequestType,
          options,
          (update: EvalProgress) => progress.report({ message: describeProgress(update), increment: 100 / update.total }),
          token,
        );
      },
    );
    void showSummary(outcome);
    if (given?.openReport !== false) await openReport(outcome.reportFiles.markdown);
    return outcome;
  } catch (error) {
    void showEvalError(error, showError);
    return undefined;
  }
}

async function pickFolders(openLabel: string, many: boolean): Promise<vscode.Uri[] | undefined> {
  return vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: many,
    openLabel,
    ...(vscode.workspace.workspaceFolders?.[0] ? { defaultUri: vscode.workspace.workspaceFolders[0].uri } : {}),
  });
}

interface ResultsPick extends vscode.QuickPickItem {
  readonly more: boolean;
}

/** Our results only, or also folders in the reference layout (asked for in a second dialog). */
async function pickResults(folder: vscode.Uri): Promise<string[] | undefined> {
  const picked = await vscode.window.showQuickPick<ResultsPick>(
    [
      { label: '$(check) Score the batch results', description: 'the results next to each sample', more: false },
      { label: '$(folder-opened) Also score result folders…', description: '<folder>/<category>/<sample>/dragged_image.png, as the official scripts write them', more: true },
    ],
    { title: `CLIPDrag evaluation of ${path.basename(folder.fsPath)}`, placeHolder: 'Which results to score (one column each)?', ignoreFocusOut: true },
  );
  if (!picked) return undefined;
  if (!picked.more) return ['ours'];
  const folders = await pickFolders('Score These Results', true);
  return folders ? ['ours', ...folders.map((f) => f.fsPath)] : undefined;
}

/** The models of the `clipdrag.evaluation.*` settings (folders relative to the workspace made absolute), device, cache. */
export function evaluationSettings(folder: vscode.Uri): Omit<EvalOptions, 'folder'> {
  const config = vscode.workspace.getConfiguration(CONFIG_SECTION, folder);
  const base = vscode.workspace.getWorkspaceFolder(folder)?.uri.fsPath ?? folder.fsPath;
  const model = (key: string) => modelSetting(config.get<string>(key, '').trim(), base);
  const diftModel = model(EVALUATION_SETTINGS.dift);
  const clipModel = model(EVALUATION_SETTINGS.clip);
  const lpipsModel = model(EVALUATION_SETTINGS.lpips);
  const hubCacheDirectory = config.get<string>('cacheDirectory', '').trim();
  return {
    device: devicePreference(),
    ...(diftModel ? { diftModel } : {}),
    ...(clipModel ? { clipModel } : {}),
    ...(lpipsModel ? { lpipsModel } : {}),
    ...(hubCacheDirectory ? { hubCacheDirectory } : {}),
  };
}

function describeProgress(update: EvalProgress): string {
  const left = update.secondsLeft === null ? '' : `, about ${formatDuration(update.secondsLeft)} left`;
  return `${update.done}/${update.total} ${update.sample} (${update.set})${update.reused ? ': unchanged' : ''}${left}`;
}

async function openReport(markdown: string): Promise<void> {
  const uri = vscode.Uri.file(markdown);
  try {
    // The preview shows the plots the report embeds.
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  } catch {
    await vscode.window.showTextDocument(uri);
  }
}

async function showSummary(outcome: EvalOutcome): Promise<void> {
  const sets = outcome.summary.map((s) => {
    const o = s.overall;
    return o ? `${s.set}: MD ${o.meanDistance.toFixed(2)} px, IF ${o.imageFidelity.toFixed(4)}, CLIP ${o.clipSimilarity.toFixed(4)} (${o.samples})` : `${s.set}: nothing scored`;
  });
  const notScored = outcome.entries - outcome.scored;
  const head = outcome.state === 'cancelled' ? 'CLIPDrag evaluation cancelled (run it again to score the rest)' : 'CLIPDrag evaluation finished';
  const tail = notScored > 0 ? ` ${notScored} not scored: the report says why.` : '';
  const show = notScored > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const open = 'Open Report';
  if ((await show(`${head}: ${sets.join('; ')}.${tail}`, open)) === open) await openReport(outcome.reportFiles.markdown);
}

/** A model that cannot be had is fixed in the settings; anything else goes to the common error display. */
async function showEvalError(error: unknown, showError: (error: unknown) => Thenable<unknown>): Promise<void> {
  if ((error as { code?: unknown } | null)?.code !== SidecarErrorCodes.ModelUnavailable) {
    await showError(error);
    return;
  }
  const message = `${error instanceof Error ? error.message : String(error)} Check the evaluation models in the settings (clipdrag.evaluation.*): a hub repo id or a model folder.`;
  if ((await vscode.window.showErrorMessage(message, 'Open Settings')) === 'Open Settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', `${CONFIG_SECTION}.evaluation`);
  }
}
