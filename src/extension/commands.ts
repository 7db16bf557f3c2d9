// The command palette / menu commands. Anything that downloads or writes refuses to run in an untrusted workspace.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEVICE_PREFERENCES, type DevicePreference, type InitializeResult } from '../shared/protocol';
import { devicePreference, setDevicePreference } from './config';
import { runBatchCommand } from './batch-command';
import { runEvalCommand } from './eval-command';
import { installCudaCommand } from './cuda/cuda-command';
import { detectSlurm, submitSlurmBatch } from './slurm-command';
import { EDITOR_VIEW_TYPE } from './editor/image-editor-provider';
import { downloadModels } from './models-command';
import type { SidecarClient } from './sidecar/sidecar-client';

export const COMMANDS = {
  openEditor: 'clipdrag.openEditor',
  runBatch: 'clipdrag.runBatch',
  evaluateResults: 'clipdrag.evaluateResults',
  submitSlurmBatch: 'clipdrag.submitSlurmBatch',
  downloadModels: 'clipdrag.downloadModels',
  chooseDevice: 'clipdrag.chooseDevice',
  showLogs: 'clipdrag.showLogs',
  restartSidecar: 'clipdrag.restartSidecar',
  installCuda: 'clipdrag.installCuda',
} as const;

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];

export function registerCommands(context: vscode.ExtensionContext, sidecar: SidecarClient, log: vscode.LogOutputChannel): void {
  context.subscriptions.push(
    vscode.commands.registerCommand(COMMANDS.openEditor, async (uri?: vscode.Uri) => {
      const target = uri ?? activeImageUri() ?? (await pickImage());
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, EDITOR_VIEW_TYPE);
    }),
    vscode.commands.registerCommand(COMMANDS.runBatch, async (folder?: unknown, options?: unknown) => {
      if (requireTrust('Running a batch writes result images')) return runBatchCommand(sidecar, showError, folder, options);
      return undefined;
    }),
    vscode.commands.registerCommand(COMMANDS.evaluateResults, async (folder?: unknown, options?: unknown) => {
      if (requireTrust('Evaluating results downloads models and writes a report')) return runEvalCommand(sidecar, showError, folder, options);
      return undefined;
    }),
    vscode.commands.registerCommand(COMMANDS.submitSlurmBatch, async (folder?: unknown, options?: unknown) => {
      if (requireTrust('Submitting a batch writes a job script and result images')) {
        return submitSlurmBatch(sidecar, context.asAbsolutePath('dist/sidecar.js'), showError, folder, options);
      }
      return undefined;
    }),
    vscode.commands.registerCommand(COMMANDS.downloadModels, async () => {
      if (requireTrust('Downloading models')) await downloadModels(sidecar, showError);
    }),
    vscode.commands.registerCommand(COMMANDS.chooseDevice, () => chooseDevice(sidecar)),
    vscode.commands.registerCommand(COMMANDS.showLogs, () => log.show()),
    vscode.commands.registerCommand(COMMANDS.installCuda, async () => {
      if (requireTrust('Installing CUDA support downloads native libraries')) await installCudaCommand(context, sidecar, log);
    }),
    vscode.commands.registerCommand(COMMANDS.restartSidecar, async () => {
      try {
        const result = await sidecar.restart();
        reportExecutionProvider(result, `CLIPDrag engine restarted (pid ${result.pid})`);
      } catch (error) {
        void showError(error);
      }
    }),
  );
  void detectSlurm(log);
}

function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window.showWarningMessage(`${what} is disabled in Restricted Mode. Trust this workspace to use it.`, 'Manage Workspace Trust').then((choice) => {
    if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
  });
  return false;
}

function isImage(uri: vscode.Uri): boolean {
  return IMAGE_EXTENSIONS.includes(path.posix.extname(uri.path).toLowerCase());
}

function activeImageUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom ? input.uri : undefined;
  return uri && isImage(uri) ? uri : undefined;
}

async function pickImage(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Open in CLIPDrag Editor',
    filters: { Images: IMAGE_EXTENSIONS.map((e) => e.slice(1)) },
  });
  return picked?.[0];
}

/** Shows which provider the engine uses, or why the chosen device cannot be used (with a way to fix it). */
function reportExecutionProvider(result: InitializeResult, prefix: string): void {
  const choice = result.executionProvider;
  if (choice.ok) {
    void vscode.window.showInformationMessage(`${prefix}: running on ${choice.provider} (${choice.reason}).`);
  } else {
    void vscode.window.showErrorMessage(`${prefix}, but ${choice.error}`, 'Choose Device').then((pick) => {
      if (pick) void vscode.commands.executeCommand(COMMANDS.chooseDevice);
    });
  }
}

async function chooseDevice(sidecar: SidecarClient): Promise<void> {
  let providers: InitializeResult['executionProviders'] = [];
  try {
    providers = (await sidecar.start()).executionProviders;
  } catch (error) {
    void showError(error);
  }
  const current = devicePreference();
  const describe = (device: DevicePreference): string => {
    if (device === 'auto') return 'the best provider that works here';
    const status = providers.find((p) => p.name === device);
    if (!status) return 'not offered on this platform';
    return status.usable ? 'usable' : `not usable: ${status.problem ?? 'unknown reason'}`;
  };
  const picked = await vscode.window.showQuickPick(
    DEVICE_PREFERENCES.map((device) => ({ label: device, description: device === current ? '(current)' : undefined, detail: describe(device), device })),
    { title: 'CLIPDrag: Choose Device', placeHolder: 'Execution provider for the editing engine' },
  );
  if (!picked || picked.device === current) return;
  await setDevicePreference(picked.device);
  try {
    // The configuration listener restarts a running sidecar; start() waits for that and reports the outcome.
    reportExecutionProvider(await sidecar.start(), `Device set to ${picked.device}`);
  } catch (error) {
    void showError(error);
  }
}

function showError(error: unknown): Thenable<unknown> {
  return vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error), 'Show Logs').then((pick) => {
    if (pick) void vscode.commands.executeCommand(COMMANDS.showLogs);
  });
}
