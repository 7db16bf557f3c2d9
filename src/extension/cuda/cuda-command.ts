// CLIPDrag: Install CUDA Support (Linux x64), and the step on every activation that puts installed provider
// libraries where this copy of onnxruntime-node looks for them (so they survive extension updates).
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SidecarClient } from '../sidecar/sidecar-client';
import { CUDA_PACKAGE, defaultCudaPackageUrl } from './cuda-package';
import { describeMissingSystemLibraries, installCudaProviders, linkCudaProviders, missingSystemLibraries, readLoaderCache, type ExpectedHash } from './cuda-install';
import { NUGET_SERVICE_INDEX } from './nuget-hash';

export const CUDA_SUPPORTED = process.platform === 'linux' && process.arch === 'x64';

/** onnxruntime-node's binary folder inside this extension (where it loads provider libraries from). */
function onnxruntimeBinFolder(context: vscode.ExtensionContext): string {
  return path.join(context.extensionPath, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', process.platform, process.arch);
}

/** Links previously installed CUDA provider libraries into this copy of onnxruntime-node; call before the engine starts. */
export function linkInstalledCuda(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): void {
  if (!CUDA_SUPPORTED) return;
  try {
    const linked = linkCudaProviders(context.globalStorageUri.fsPath, CUDA_PACKAGE, onnxruntimeBinFolder(context));
    if (linked.length > 0) log.info(`cuda: linked the installed provider libraries into onnxruntime-node: ${linked.join(', ')}`);
  } catch (error) {
    log.warn(`cuda: could not link the installed provider libraries: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export async function installCudaCommand(context: vscode.ExtensionContext, sidecar: SidecarClient, log: vscode.LogOutputChannel): Promise<void> {
  if (!CUDA_SUPPORTED) {
    void vscode.window.showInformationMessage(
      `CLIPDrag: onnxruntime-node offers CUDA on Linux x64 only (this is ${process.platform}-${process.arch}). Windows uses DirectML or WebGPU, macOS CoreML or WebGPU.`,
    );
    return;
  }
  const settings = vscode.workspace.getConfiguration('clipdrag');
  const url = settings.get<string>('cuda.packageUrl', '').trim() || defaultCudaPackageUrl();
  const serviceIndexUrl = settings.get<string>('cuda.serviceIndexUrl', '').trim() || NUGET_SERVICE_INDEX;
  let verified: ExpectedHash;
  try {
    verified = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIPDrag: installing CUDA support (${CUDA_PACKAGE.package} ${CUDA_PACKAGE.version})`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let reported = 0;
        progress.report({ message: 'reading the published SHA-512' });
        const { expected } = await installCudaProviders({
          url,
          serviceIndexUrl,
          manifest: CUDA_PACKAGE,
          storageDir: context.globalStorageUri.fsPath,
          signal: abort.signal,
          onProgress: ({ receivedBytes, totalBytes }) => {
            const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
            const percent = totalBytes ? (100 * receivedBytes) / totalBytes : 0;
            progress.report({ message: totalBytes ? `${mb(receivedBytes)} of ${mb(totalBytes)}` : mb(receivedBytes), increment: percent - reported });
            reported = percent;
          },
        });
        progress.report({ message: 'verified; linking into onnxruntime-node' });
        return expected;
      },
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error(`cuda: ${message}`);
    void vscode.window.showErrorMessage(`CLIPDrag: ${message}`);
    return;
  }
  linkInstalledCuda(context, log);
  if (verified.publishedProblem) log.warn(`cuda: verified against the pinned SHA-512 only; the published one could not be read: ${verified.publishedProblem}`);
  log.info(`cuda: installed ${CUDA_PACKAGE.package} ${CUDA_PACKAGE.version} from ${url}; its SHA-512 ${verified.sha512} matched the ${verified.origin} hash${verified.publishedAt ? ` (${verified.publishedAt})` : ''}`);
  await reportCudaState(sidecar, log);
}

/** After installing: restart the engine, which tries a CUDA session, and say what is still missing if it fails. */
async function reportCudaState(sidecar: SidecarClient, log: vscode.LogOutputChannel): Promise<void> {
  const missing = describeMissingSystemLibraries(missingSystemLibraries(await readLoaderCache(), process.env.LD_LIBRARY_PATH));
  let problem: string | undefined;
  try {
    const cuda = (await sidecar.restart()).executionProviders.find((p) => p.name === 'cuda');
    if (cuda?.usable) {
      void vscode.window.showInformationMessage('CLIPDrag: CUDA is ready. With the device setting "auto" or "cuda" the engine uses it.');
      return;
    }
    problem = cuda?.problem;
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  const message = `CLIPDrag: the CUDA provider libraries are installed, but CUDA cannot start yet. ${missing ?? `The engine reports: ${problem ?? 'no reason given'}.`}`;
  log.warn(`cuda: ${message}${problem ? ` (engine: ${problem})` : ''}`);
  void vscode.window.showWarningMessage(message, 'Show Logs').then((pick) => {
    if (pick) void vscode.commands.executeCommand('clipdrag.showLogs');
  });
}
