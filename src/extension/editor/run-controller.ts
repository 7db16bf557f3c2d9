// Running the edit of one document: checks that a run can happen (trust, a shown image, a spec valid for running,
// an engine that can run edits on a usable device), then runs it with progress in the editor and in a cancellable
// notification. Every way a run can end is shown to the user with something to do about it; nothing fails silently.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatSpecIssues, validateEditSpec } from '../../shared/edit-spec';
import type { ResultView, RunView, UserAction } from '../../shared/webview-messages';
import type { SidecarClient } from '../sidecar/sidecar-client';
import { EditRunCancelled, EditRunError, stageLabel, type EditRunAvailability, type EditRunProgress } from './edit-run-backend';
import type { ImageDocument } from './image-document';
import { notifyWithActions } from './user-actions';

export interface RunControllerOptions {
  document: ImageDocument;
  sidecar: SidecarClient;
  availability: () => EditRunAvailability;
  log: vscode.LogOutputChannel;
  /** Turns a result file into what a page shows (webview URI and all). */
  describeResult: (uri: vscode.Uri) => Promise<ResultView>;
}

export class RunController implements vscode.Disposable {
  private current: RunView = { phase: 'idle' };
  private cancellation: vscode.CancellationTokenSource | undefined;
  private readonly didChange = new vscode.EventEmitter<RunView>();
  readonly onDidChange = this.didChange.event;

  constructor(private readonly options: RunControllerOptions) {}

  get view(): RunView {
    return this.current;
  }

  get running(): boolean {
    return this.cancellation !== undefined;
  }

  /** Starts a run unless one is going; resolves when it has ended (in whatever way). */
  async start(): Promise<RunView> {
    if (this.cancellation) return this.current;
    const source = new vscode.CancellationTokenSource();
    this.cancellation = source;
    try {
      await this.run(source.token);
    } catch (error) {
      this.fail(error);
    } finally {
      source.dispose();
      this.cancellation = undefined;
    }
    return this.current;
  }

  cancel(): void {
    if (!this.cancellation || this.cancellation.token.isCancellationRequested) return;
    this.cancellation.cancel();
    this.set({ phase: 'cancelling' });
  }

  private async run(token: vscode.CancellationToken): Promise<void> {
    const { document, log } = this.options;
    if (!vscode.workspace.isTrusted) {
      return this.unavailable('Running an edit is disabled in Restricted Mode: it runs the engine and writes files. Trust this workspace to run edits.', ['manageTrust']);
    }
    const size = document.imageSize;
    if (!size) {
      const why = document.state.kind === 'failed' ? `it could not be shown: ${document.state.message}` : 'it is still loading';
      throw new EditRunError(`${document.name} cannot be edited yet: ${why}.`, ['showLogs']);
    }
    const spec = document.specFor();
    const validation = validateEditSpec(spec, { imageSize: size, forRun: true });
    // The page shows what to fix next to the Run button; no notification for a problem the user is looking at.
    if (!validation.ok) return this.set({ phase: 'failed', message: formatSpecIssues(validation.issues, `for ${document.name}`), actions: [] });

    const availability = this.options.availability();
    if (!availability.available) return this.unavailable(availability.reason, document.isDirty ? ['save'] : []);

    this.set({ phase: 'starting', message: 'Starting the engine…' });
    const engine = await this.options.sidecar.start();
    if (!engine.executionProvider.ok) throw new EditRunError(engine.executionProvider.error, ['chooseDevice', 'showLogs']);
    if (token.isCancellationRequested) throw new EditRunCancelled();

    log.info(`editor: running the edit of ${document.uri.fsPath} on ${engine.executionProvider.provider}`);
    const started = Date.now();
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `CLIPDrag: editing ${document.name}`, cancellable: true },
      (progress, notificationToken) => {
        notificationToken.onCancellationRequested(() => this.cancel());
        let reported = 0;
        const onProgress = (update: EditRunProgress) => {
          this.showProgress(update);
          const fraction = update.total > 0 ? update.step / update.total : 0;
          const eta = update.etaSeconds !== undefined ? `, ${formatDuration(update.etaSeconds)} left in this stage` : '';
          progress.report({ message: `${stageLabel(update.stage)} ${update.step}/${update.total}${eta}` });
          // The bar follows the current stage; each stage starts it over.
          const percent = Math.round(fraction * 100);
          if (percent < reported) reported = 0;
          if (percent > reported) progress.report({ increment: percent - reported });
          reported = percent;
        };
        return availability.backend.run({ imageUri: document.uri, spec: validation.spec }, onProgress, token);
      },
    );
    const reached = result.reachedTargets ? 'every handle reached its target' : 'not every handle reached its target';
    log.info(`editor: ${path.basename(result.resultUri.fsPath)} written in ${((Date.now() - started) / 1000).toFixed(1)} s on ${result.executionProvider} (${result.iterations} drag iterations, ${reached})`);
    this.set({ phase: 'finished', result: await this.options.describeResult(result.resultUri) });
    void vscode.window.showInformationMessage(`CLIPDrag: wrote ${path.basename(result.resultUri.fsPath)}.`, 'Open Result', 'Reveal in Explorer').then((pick) => {
      if (pick === 'Open Result') void vscode.commands.executeCommand('vscode.open', result.resultUri);
      if (pick === 'Reveal in Explorer') void vscode.commands.executeCommand('revealInExplorer', result.resultUri);
    });
  }

  private showProgress(update: EditRunProgress): void {
    const view: RunView = { phase: 'running', stage: update.stage, label: stageLabel(update.stage), step: update.step, total: update.total };
    if (update.etaSeconds !== undefined) view.etaSeconds = update.etaSeconds;
    if (update.losses) view.losses = update.losses;
    if (update.message) view.message = update.message;
    if (update.handles) view.handles = update.handles;
    // Keep the last preview while stages without one report.
    const preview = update.previewPngBase64 ? `data:image/png;base64,${update.previewPngBase64}` : this.current.phase === 'running' ? this.current.preview : undefined;
    if (preview) view.preview = preview;
    if (this.current.phase !== 'cancelling') this.set(view);
  }

  private unavailable(message: string, actions: UserAction[]): void {
    this.set({ phase: 'unavailable', message, actions });
    notifyWithActions('info', message, actions, this.options.document.specUri);
  }

  private fail(error: unknown): void {
    if (error instanceof EditRunCancelled || (error instanceof vscode.CancellationError && this.cancellation?.token.isCancellationRequested)) {
      this.set({ phase: 'cancelled' });
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const actions: UserAction[] = error instanceof EditRunError ? error.actions : ['showLogs'];
    this.options.log.error(`editor: the edit of ${this.options.document.uri.fsPath} failed: ${message}`);
    this.set({ phase: 'failed', message, actions });
    notifyWithActions('error', message, actions, this.options.document.specUri);
  }

  private set(view: RunView): void {
    this.current = view;
    this.didChange.fire(view);
  }

  dispose(): void {
    this.cancellation?.cancel();
    this.didChange.dispose();
  }
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
