// The `clipdrag.editor` custom editor: opens an image in a webview that shows it. Each document keeps
// what its webview reported (shown with its size, or failed), which the extension API exposes.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseFromWebviewMessage, type ToWebviewMessage } from '../../shared/webview-messages';
import { ImageDocument, type ImageViewState } from './image-document';
import { renderWebviewHtml } from './webview-html';

export const EDITOR_VIEW_TYPE = 'clipdrag.editor';

export class ImageEditorProvider implements vscode.CustomReadonlyEditorProvider<ImageDocument> {
  private readonly documents = new Map<string, ImageDocument>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  static register(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): ImageEditorProvider {
    const provider = new ImageEditorProvider(context.extensionUri, log);
    context.subscriptions.push(
      vscode.window.registerCustomEditorProvider(EDITOR_VIEW_TYPE, provider, {
        // The edit state will live in the extension; keeping the webview alive avoids re-decoding large images.
        webviewOptions: { retainContextWhenHidden: true },
        supportsMultipleEditorsPerDocument: false,
      }),
    );
    return provider;
  }

  /** The open CLIPDrag document for this image, if any. */
  documentFor(uri: vscode.Uri): ImageDocument | undefined {
    return this.documents.get(uri.toString());
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

  openCustomDocument(uri: vscode.Uri): ImageDocument {
    const document = new ImageDocument(uri);
    this.documents.set(uri.toString(), document);
    document.onDidDispose(() => {
      if (this.documents.get(uri.toString()) === document) this.documents.delete(uri.toString());
    });
    return document;
  }

  resolveCustomEditor(document: ImageDocument, panel: vscode.WebviewPanel): void {
    const { webview } = panel;
    const imageFolder = vscode.Uri.joinPath(document.uri, '..');
    webview.options = {
      enableScripts: true,
      localResourceRoots: [imageFolder, vscode.Uri.joinPath(this.extensionUri, 'dist'), vscode.Uri.joinPath(this.extensionUri, 'media')],
    };
    webview.html = renderWebviewHtml({
      webview,
      scriptUri: vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview.js'),
      styleUri: vscode.Uri.joinPath(this.extensionUri, 'media', 'editor.css'),
      title: path.posix.basename(document.uri.path),
    });

    const post = (message: ToWebviewMessage) => void webview.postMessage(message);
    const showImage = (version?: number) => {
      document.setViewState({ kind: 'loading' });
      const src = webview.asWebviewUri(document.uri);
      post({ type: 'showImage', src: (version ? src.with({ query: `v=${version}` }) : src).toString(), name: path.posix.basename(document.uri.path) });
    };

    const disposables: vscode.Disposable[] = [
      webview.onDidReceiveMessage((raw: unknown) => {
        const message = parseFromWebviewMessage(raw);
        if (!message) {
          this.log.warn(`editor: ignoring malformed webview message ${JSON.stringify(raw)}`);
          return;
        }
        switch (message.type) {
          case 'ready':
            showImage();
            break;
          case 'imageLoaded':
            document.setViewState({ kind: 'shown', width: message.width, height: message.height });
            break;
          case 'imageFailed':
            this.log.warn(`editor: could not show ${document.uri.fsPath}: ${message.message}`);
            document.setViewState({ kind: 'failed', message: message.message });
            break;
        }
      }),
    ];
    // Show the new pixels when the file changes on disk (the webview would otherwise keep its cached copy).
    if (document.uri.scheme === 'file') {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(imageFolder, path.posix.basename(document.uri.path)));
      disposables.push(watcher, watcher.onDidChange(() => showImage(Date.now())));
    }
    panel.onDidDispose(() => disposables.forEach((d) => d.dispose()));
  }
}
