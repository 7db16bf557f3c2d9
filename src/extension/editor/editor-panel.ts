// One page (webview panel) showing a document: its HTML, the messages it sends, and keeping it up to date with the
// document, the run and the result history. Several panels of one image share one document and session.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EditorModel, MaskBase } from '../../shared/editor-model';
import {
  describeRejectedEdit,
  documentView,
  parseFromWebviewMessage,
  type FromWebviewMessage,
  type KeyboundAction,
  type MaskBaseView,
  type MaskUpdate,
  type ResultView,
  type RunView,
  type ToWebviewMessage,
} from '../../shared/webview-messages';
import type { DocumentSession } from './document-session';
import type { EditorKeybindings } from './editor-keybindings';
import type { ModelChangeEvent } from './image-document';
import type { ResultFile } from './result-history';
import { performUserAction } from './user-actions';
import { renderWebviewHtml } from './webview-html';

export class EditorPanel implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;

  constructor(
    private readonly session: DocumentSession,
    private readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    keybindings: EditorKeybindings,
  ) {
    const { webview } = panel;
    const { document } = session;
    webview.options = {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(document.uri, '..'), vscode.Uri.joinPath(extensionUri, 'dist'), vscode.Uri.joinPath(extensionUri, 'media')],
    };
    webview.html = renderWebviewHtml({
      webview,
      scriptUri: vscode.Uri.joinPath(extensionUri, 'dist', 'webview.js'),
      styleUri: vscode.Uri.joinPath(extensionUri, 'media', 'editor.css'),
      title: document.name,
    });
    this.disposables.push(
      webview.onDidReceiveMessage((raw: unknown) => this.receive(raw)),
      document.onDidChangeModel((change) => this.ready && this.post(this.documentMessage(change))),
      session.run.onDidChange((run) => {
        if (this.ready) this.post({ type: 'run', run: this.runView(run) });
        keybindings.update();
      }),
      panel.onDidChangeViewState(() => keybindings.update()),
      keybindings.add(this),
      session.addListener({
        showImage: (cacheBust) => this.ready && this.showImage(cacheBust),
        results: (results) => this.ready && this.post({ type: 'results', results: results.map((r) => this.resultView(r)) }),
        notice: (level, message, actions) => this.ready && this.post({ type: 'notice', level, message, actions }),
        clearNotice: () => this.ready && this.post({ type: 'clearNotice' }),
      }),
    );
    panel.onDidDispose(() => this.dispose());
  }

  /** Whether this page is the active editor. */
  get active(): boolean {
    return this.panel.active;
  }

  /** Whether this page's edit is starting or running (what Escape can cancel). */
  get running(): boolean {
    const { phase } = this.session.run.view;
    return phase === 'starting' || phase === 'running';
  }

  /** A key VS Code owns was pressed for this editor: the page performs it. */
  shortcut(action: KeyboundAction): void {
    if (this.ready) this.post({ type: 'shortcut', action });
  }

  cancelRun(): void {
    this.session.run.cancel();
  }

  private post(message: ToWebviewMessage): void {
    void this.panel.webview.postMessage(message);
  }

  private receive(raw: unknown): void {
    const message = parseFromWebviewMessage(raw);
    if (!message) {
      const why = describeRejectedEdit(raw);
      this.log.warn(`editor: ignoring a malformed message from the page${why ? ` (${why})` : ''}: ${JSON.stringify(raw).slice(0, 300)}`);
      return;
    }
    this.handle(message).catch((error: unknown) => this.log.error(`editor: handling "${message.type}" failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`));
  }

  private async handle(message: FromWebviewMessage): Promise<void> {
    const { session } = this;
    const { document } = session;
    switch (message.type) {
      case 'ready':
        this.log.debug(`editor: a page of ${document.uri.fsPath} is ready`);
        this.ready = true;
        this.sendEverything();
        return;
      case 'imageLoaded':
        document.setViewState({ kind: 'shown', width: message.width, height: message.height });
        return;
      case 'imageFailed':
        this.log.warn(`editor: could not show ${document.uri.fsPath}: ${message.message}`);
        document.setViewState({ kind: 'failed', message: message.message });
        return;
      case 'edit': {
        const outcome = session.applyEdit(message.edit, message.strokeId);
        if (outcome.kind === 'rejected') this.post({ type: 'editRejected', message: outcome.message });
        return;
      }
      case 'resync':
        this.post({ type: 'document', view: documentView(document.model, document.revision, document.maskRevision), mask: this.maskReset(document.model.mask.base, document.model) });
        return;
      case 'command':
        this.panel.reveal(undefined, false);
        await vscode.commands.executeCommand(message.command === 'save' ? 'workbench.action.files.save' : message.command);
        return;
      case 'run':
        await session.run.start();
        return;
      case 'cancelRun':
        session.run.cancel();
        return;
      case 'refreshResults':
        await session.refreshResults();
        return;
      case 'result': {
        // Only files of this image's history: the page names one, the extension decides what it is.
        const result = session.results.find((r) => r.name === message.file);
        if (!result) {
          this.post({ type: 'notice', level: 'warning', message: `${message.file} is no longer next to ${document.name}.`, actions: [] });
          await session.refreshResults();
          return;
        }
        if (message.action === 'open') await vscode.commands.executeCommand('vscode.open', result.uri, vscode.ViewColumn.Beside);
        else if (message.action === 'reveal') await vscode.commands.executeCommand('revealInExplorer', result.uri);
        else if (result.recipeUri) await vscode.commands.executeCommand('vscode.open', result.recipeUri, vscode.ViewColumn.Beside);
        return;
      }
      case 'maskFileDecoded':
        document.setDecodedMaskFile(message.path, message.mask);
        return;
      case 'userAction':
        await performUserAction(message.action, document.specUri);
        return;
    }
  }

  /** A page that has just loaded gets the document, the run, the results, any notice, and then the image. */
  private sendEverything(): void {
    const { session } = this;
    const { document } = session;
    this.post({ type: 'document', view: documentView(document.model, document.revision, document.maskRevision), mask: this.maskReset(document.model.mask.base, document.model) });
    this.post({ type: 'run', run: this.runView(session.run.view) });
    this.post({ type: 'results', results: session.results.map((r) => this.resultView(r)) });
    const notice = session.loadProblemNotice();
    if (notice) this.post({ type: 'notice', level: 'error', ...notice });
    this.showImage();
  }

  private showImage(cacheBust?: number): void {
    const { document } = this.session;
    // Another page of the document may already show this image: only new pixels make the document wait again
    // (a page closed before it reported must not leave the document waiting).
    if (cacheBust !== undefined || document.state.kind !== 'shown') document.setViewState({ kind: 'loading' });
    const src = this.panel.webview.asWebviewUri(document.uri);
    this.post({ type: 'showImage', src: (cacheBust ? src.with({ query: `v=${cacheBust}` }) : src).toString(), name: document.name });
  }

  private documentMessage(change: ModelChangeEvent): ToWebviewMessage {
    const view = documentView(change.model, change.revision, change.maskRevision);
    if (!change.mask) return { type: 'document', view };
    if (change.mask.kind === 'append') {
      const mask: MaskUpdate = { kind: 'append', fromRevision: change.mask.fromRevision, revision: change.maskRevision, stroke: change.mask.stroke };
      if (change.mask.strokeId) mask.strokeId = change.mask.strokeId;
      return { type: 'document', view, mask };
    }
    return { type: 'document', view, mask: this.maskReset(change.model.mask.base, change.model, change.maskRevision) };
  }

  private maskReset(base: MaskBase, model: EditorModel, revision = this.session.document.maskRevision): MaskUpdate {
    return { kind: 'reset', revision, base: this.baseView(base), strokes: [...model.mask.strokes] };
  }

  private baseView(base: MaskBase): MaskBaseView {
    if (base.kind !== 'file') return base;
    const uri = vscode.Uri.joinPath(this.session.document.uri, '..', ...base.path.split('/'));
    return { kind: 'file', path: base.path, src: this.panel.webview.asWebviewUri(uri).toString() };
  }

  private resultView(result: ResultFile): ResultView {
    const view: ResultView = { file: result.name, src: this.panel.webview.asWebviewUri(result.uri).with({ query: `v=${result.modified}` }).toString(), modified: result.modified };
    if (result.recipeUri) view.recipe = path.posix.basename(result.recipeUri.path);
    if (result.mode) view.mode = result.mode;
    return view;
  }

  private runView(run: RunView): RunView {
    if (run.phase !== 'finished') return run;
    const result = this.session.results.find((r) => r.name === run.result.file);
    return result ? { phase: 'finished', result: this.resultView(result) } : run;
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
    this.disposables.length = 0;
  }
}
