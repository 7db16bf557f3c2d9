// The document behind one CLIPDrag editor: the image file and what its webview reported about it.
// (Points, mask, prompts and undo/redo join this model with the editing work.)
import * as vscode from 'vscode';

export type ImageViewState =
  | { kind: 'loading' }
  | { kind: 'shown'; width: number; height: number }
  | { kind: 'failed'; message: string };

export class ImageDocument implements vscode.CustomDocument {
  private viewState: ImageViewState = { kind: 'loading' };
  private readonly didChangeViewState = new vscode.EventEmitter<ImageViewState>();
  private readonly didDispose = new vscode.EventEmitter<void>();
  readonly onDidChangeViewState = this.didChangeViewState.event;
  readonly onDidDispose = this.didDispose.event;

  constructor(readonly uri: vscode.Uri) {}

  get state(): ImageViewState {
    return this.viewState;
  }

  setViewState(state: ImageViewState): void {
    this.viewState = state;
    this.didChangeViewState.fire(state);
  }

  dispose(): void {
    this.didDispose.fire();
    this.didChangeViewState.dispose();
    this.didDispose.dispose();
  }
}
