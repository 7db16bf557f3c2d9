// Activation: the log channel, the engine (sidecar) client, the custom editor and the commands.
import * as vscode from 'vscode';
import type { ClipdragApi } from './api';
import { registerCommands } from './commands';
import { linkInstalledCuda } from './cuda/cuda-command';
import { ImageEditorProvider } from './editor/image-editor-provider';
import { createSidecar } from './sidecar/sidecar-service';
import type { SidecarClient } from './sidecar/sidecar-client';

let sidecar: SidecarClient | undefined;

export function activate(context: vscode.ExtensionContext): ClipdragApi {
  const log = vscode.window.createOutputChannel('CLIPDrag', { log: true });
  context.subscriptions.push(log);
  log.info(`CLIPDrag ${String((context.extension.packageJSON as { version?: unknown }).version)} activating in VS Code ${vscode.version} (${vscode.env.appHost})`);

  // CUDA provider libraries installed earlier live in global storage; this copy of the extension may be new.
  linkInstalledCuda(context, log);
  sidecar = createSidecar(context, log);
  const editor = ImageEditorProvider.register(context, log, sidecar);
  registerCommands(context, sidecar, log);
  return { sidecar, editor };
}

/** VS Code awaits this: the sidecar gets a graceful shutdown and is killed if it does not comply. */
export async function deactivate(): Promise<void> {
  await sidecar?.dispose();
  sidecar = undefined;
}
