// Wires the SidecarClient into VS Code: the script from the extension folder, the device setting,
// log lines into the CLIPDrag LogOutputChannel, and a restart when the device setting changes.
import * as vscode from 'vscode';
import { devicePreference } from '../config';
import { SidecarClient } from './sidecar-client';

export function createSidecar(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): SidecarClient {
  const version = String((context.extension.packageJSON as { version?: unknown }).version);
  const sidecar = new SidecarClient({
    script: context.asAbsolutePath('dist/sidecar.js'),
    initializeParams: () => ({ client: `CLIPDrag VS Code extension ${version} (VS Code ${vscode.version})`, devicePreference: devicePreference() }),
    // What the engine can recompute (trained LoRAs, optimised onnxruntime sessions) lives in the extension's own
    // storage, which VS Code removes with the extension; model weights stay in the shared Hugging Face cache.
    env: { CLIPDRAG_CACHE_DIR: vscode.Uri.joinPath(context.globalStorageUri, 'cache').fsPath },
    log: {
      trace: (m) => log.trace(m),
      debug: (m) => log.debug(m),
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
    },
  });
  // Disposal is awaited by the extension's deactivate(), not by the synchronous subscriptions list.
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      // A running sidecar chose its execution provider at start-up: restart it with the new preference.
      if (event.affectsConfiguration('clipdrag.device') && sidecar.pid !== undefined) {
        sidecar.restart().then(
          (result) => log.info(`device setting changed; engine restarted with ${result.executionProvider.ok ? result.executionProvider.provider : 'no usable provider'}`),
          (error: unknown) => log.error(`restart after device change failed: ${error instanceof Error ? error.message : String(error)}`),
        );
      }
    }),
  );
  return sidecar;
}
