// The `clipdrag.editor` custom editor: an editable `CustomEditorProvider` whose document is the image's edit spec
// (points, mask, prompts, parameters). Edits go on VS Code's undo stack; save writes `<image>.clipdrag-edit.json`
// next to the image; hot exit backs up unsaved edits; several editors of one image share its document.
import * as vscode from 'vscode';
import type { SidecarClient } from '../sidecar/sidecar-client';
import { DocumentSession, modelForDiskState } from './document-session';
import { EditorKeybindings } from './editor-keybindings';
import { EditorPanel } from './editor-panel';
import { ImageDocument, type ImageViewState } from './image-document';
import { readBackup, readSpecFile, specUriForImage, writeBackup } from './spec-io';
import { notifyWithActions } from './user-actions';

export const EDITOR_VIEW_TYPE = 'clipdrag.editor';

export class ImageEditorProvider implements vscode.CustomEditorProvider<ImageDocument> {
  private readonly documents = new Map<string, ImageDocument>();
  private readonly sessions = new Map<ImageDocument, DocumentSession>();
  private readonly didChangeCustomDocument = new vscode.EventEmitter<vscode.CustomDocumentEditEvent<ImageDocument>>();
  readonly onDidChangeCustomDocument = this.didChangeCustomDocument.event;
  private readonly keybindings = new EditorKeybindings();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    private readonly sidecar: SidecarClient,
  ) {}

  static register(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, sidecar: SidecarClient): ImageEditorProvider {
    const provider = new ImageEditorProvider(context.extensionUri, log, sidecar);
    context.subscriptions.push(
      vscode.window.registerCustomEditorProvider(EDITOR_VIEW_TYPE, provider, {
        // The page holds the decoded image and mask; keeping it alive avoids decoding a large image again.
        webviewOptions: { retainContextWhenHidden: true },
        supportsMultipleEditorsPerDocument: true,
      }),
      provider.didChangeCustomDocument,
      provider.keybindings,
    );
    return provider;
  }

  /** The open CLIPDrag document for this image, if any. */
  documentFor(uri: vscode.Uri): ImageDocument | undefined {
    return this.documents.get(uri.toString());
  }

  /** The session (run, results) of an open document. */
  sessionFor(uri: vscode.Uri): DocumentSession | undefined {
    const document = this.documentFor(uri);
    return document && this.sessions.get(document);
  }

  /** Resolves once the editor for `uri` has shown the image or failed to (rejects on timeout). */
  whenImageSettled(uri: vscode.Uri, timeoutMs = 20_000): Promise<ImageViewState> {
    const document = this.documentFor(uri);
    if (!document) return Promise.reject(new Error(`No CLIPDrag editor is open for ${uri.toString()}`));
    if (document.state.kind !== 'loading') return Promise.resolve(document.state);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        subscription.dispose();
        reject(new Error(`The CLIPDrag editor for ${uri.toString()} did not report its image within ${timeoutMs} ms`));
      }, timeoutMs);
      const subscription = document.onDidChangeViewState((state) => {
        if (state.kind === 'loading') return;
        clearTimeout(timer);
        subscription.dispose();
        resolve(state);
      });
    });
  }

  async openCustomDocument(uri: vscode.Uri, openContext: vscode.CustomDocumentOpenContext): Promise<ImageDocument> {
    const disk = await readSpecFile(specUriForImage(uri));
    const saved = modelForDiskState(disk, this.log);
    const diskText = disk.kind === 'missing' ? undefined : disk.text;
    const loadProblem = disk.kind === 'invalid' ? disk.message : undefined;
    let model = saved;
    if (openContext.backupId) {
      try {
        model = await readBackup(vscode.Uri.parse(openContext.backupId));
        this.log.info(`editor: restored the unsaved edit of ${uri.fsPath} from its backup`);
      } catch (error) {
        this.log.error(`editor: the backup of ${uri.fsPath} could not be restored (${String(error)}); opening the saved edit`);
        void vscode.window.showWarningMessage(`CLIPDrag: the unsaved edit of ${uri.fsPath} could not be restored from its backup; the saved edit is shown.`, 'Show Logs').then((pick) => {
          if (pick) void vscode.commands.executeCommand('clipdrag.showLogs');
        });
      }
    }
    if (loadProblem) {
      this.log.warn(`editor: ${loadProblem.split('\n').join(' ')}`);
      notifyWithActions('error', `CLIPDrag: ${loadProblem.split('\n').join(' ')} The editor starts empty; saving replaces the file.`, ['openSpec', 'showLogs'], specUriForImage(uri));
    }
    const document = new ImageDocument(uri, { model, saved, diskText, loadProblem });
    const session = new DocumentSession(document, { sidecar: this.sidecar, log: this.log, fireEdit: (event) => this.didChangeCustomDocument.fire(event) });
    this.documents.set(uri.toString(), document);
    this.sessions.set(document, session);
    this.log.info(`editor: opened ${uri.fsPath}${diskText === undefined ? ' (no saved edit)' : ''}`);
    document.onDidDispose(() => {
      this.log.info(`editor: closed ${uri.fsPath}`);
      session.dispose();
      this.sessions.delete(document);
      if (this.documents.get(uri.toString()) === document) this.documents.delete(uri.toString());
    });
    return document;
  }

  resolveCustomEditor(document: ImageDocument, panel: vscode.WebviewPanel): void {
    const session = this.sessions.get(document);
    if (!session) throw new Error(`No session for ${document.uri.toString()}`);
    new EditorPanel(session, panel, this.extensionUri, this.log, this.keybindings);
  }

  async saveCustomDocument(document: ImageDocument): Promise<void> {
    const session = this.session(document);
    try {
      await session.save();
    } catch (error) {
      session.reportSaveFailure(error);
      throw error;
    }
  }

  async saveCustomDocumentAs(document: ImageDocument, destination: vscode.Uri): Promise<void> {
    const session = this.session(document);
    try {
      await session.saveAs(destination);
    } catch (error) {
      session.reportSaveFailure(error);
      throw error;
    }
  }

  async revertCustomDocument(document: ImageDocument): Promise<void> {
    await this.session(document).revert();
  }

  async backupCustomDocument(document: ImageDocument, context: vscode.CustomDocumentBackupContext): Promise<vscode.CustomDocumentBackup> {
    const destination = context.destination;
    await writeBackup(destination, document.model);
    return {
      id: destination.toString(),
      delete: () => void vscode.workspace.fs.delete(destination).then(undefined, () => undefined),
    };
  }

  private session(document: ImageDocument): DocumentSession {
    const session = this.sessions.get(document);
    if (!session) throw new Error(`The CLIPDrag editor of ${document.uri.fsPath} is closed`);
    return session;
  }
}
