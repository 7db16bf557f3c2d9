// The document behind CLIPDrag editors of one image: the image file, its edit (points, mask, prompts, parameters)
// as an `EditorModel`, and what the pages reported about the image. Edits replace the model (it is immutable), which
// makes undo/redo a matter of putting an earlier model back; the provider hands those to VS Code's undo stack.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { decodeMaskRle, type EditSpec, type ImageSize, type MaskBitmap, type RleMask } from '../../shared/edit-spec';
import { applyEdit, maskSpecOf, specFromModel, type EditOutcome, type EditorEdit, type EditorModel, type MaskStroke } from '../../shared/editor-model';
import { specUriForImage } from './spec-io';

export type ImageViewState =
  | { kind: 'loading' }
  | { kind: 'shown'; width: number; height: number }
  | { kind: 'failed'; message: string };

/** How the mask layer changed with a model change: one stroke on top, the whole layer, or not at all. */
export type MaskChange = { kind: 'append'; fromRevision: number; stroke: MaskStroke; strokeId?: string } | { kind: 'reset' } | undefined;

export interface ModelChangeEvent {
  model: EditorModel;
  revision: number;
  maskRevision: number;
  mask: MaskChange;
}

export class ImageDocument implements vscode.CustomDocument {
  readonly specUri: vscode.Uri;
  private viewState: ImageViewState = { kind: 'loading' };
  private current: EditorModel;
  /** The model as it is on disk (last load, save or revert): the document is dirty when it differs. */
  private saved: EditorModel;
  private revisionNumber = 0;
  private maskRevisionNumber = 0;
  private decodedMaskFile: { path: string; bitmap: MaskBitmap } | undefined;
  /** The spec text as last read or written, to tell our own writes from changes made by others. */
  diskText: string | undefined;
  /** Why the spec on disk could not be loaded (the editor then starts empty), if it could not. */
  loadProblem: string | undefined;

  private readonly didChangeViewState = new vscode.EventEmitter<ImageViewState>();
  private readonly didChangeModel = new vscode.EventEmitter<ModelChangeEvent>();
  private readonly didDispose = new vscode.EventEmitter<void>();
  readonly onDidChangeViewState = this.didChangeViewState.event;
  readonly onDidChangeModel = this.didChangeModel.event;
  readonly onDidDispose = this.didDispose.event;

  constructor(
    readonly uri: vscode.Uri,
    initial: { model: EditorModel; saved: EditorModel; diskText?: string; loadProblem?: string },
  ) {
    this.specUri = specUriForImage(uri);
    this.current = initial.model;
    this.saved = initial.saved;
    this.diskText = initial.diskText;
    this.loadProblem = initial.loadProblem;
  }

  get name(): string {
    return path.posix.basename(this.uri.path);
  }

  get state(): ImageViewState {
    return this.viewState;
  }

  get model(): EditorModel {
    return this.current;
  }

  get revision(): number {
    return this.revisionNumber;
  }

  get maskRevision(): number {
    return this.maskRevisionNumber;
  }

  get isDirty(): boolean {
    return this.current !== this.saved;
  }

  /** The image's size once a page has shown it. */
  get imageSize(): ImageSize | undefined {
    return this.viewState.kind === 'shown' ? { width: this.viewState.width, height: this.viewState.height } : undefined;
  }

  setViewState(state: ImageViewState): void {
    this.viewState = state;
    this.didChangeViewState.fire(state);
  }

  /** Applies a user's edit; on a change, returns the models before and after (for the undo stack). */
  edit(edit: EditorEdit, strokeId?: string): EditOutcome & { before?: EditorModel } {
    const outcome = applyEdit(this.current, edit, this.imageSize);
    if (outcome.kind !== 'changed') return outcome;
    const before = this.current;
    const mask: MaskChange = edit.kind === 'maskStroke' ? { kind: 'append', fromRevision: this.maskRevisionNumber, stroke: outcome.model.mask.strokes.at(-1)!, strokeId } : undefined;
    this.replace(outcome.model, mask ?? (outcome.model.mask !== before.mask ? { kind: 'reset' } : undefined));
    return { ...outcome, before };
  }

  /** Puts a model back (undo, redo, revert, reload). */
  restore(model: EditorModel): void {
    if (model === this.current) return;
    const before = this.current.mask;
    const after = model.mask;
    let mask: MaskChange;
    if (after === before) mask = undefined;
    else if (after.base === before.base && after.strokes.length === before.strokes.length + 1 && before.strokes.every((s, i) => after.strokes[i] === s)) {
      mask = { kind: 'append', fromRevision: this.maskRevisionNumber, stroke: after.strokes.at(-1)! };
    } else mask = { kind: 'reset' };
    this.replace(model, mask);
  }

  /** The current model is now what is on disk. */
  markSaved(diskText: string): void {
    this.saved = this.current;
    this.diskText = diskText;
    this.loadProblem = undefined;
  }

  /** Replaces both the model and what counts as saved (reload from disk, revert). */
  resetTo(model: EditorModel, diskText: string | undefined, loadProblem?: string): void {
    this.saved = model;
    this.diskText = diskText;
    this.loadProblem = loadProblem;
    this.restore(model);
  }

  /** Remembers the pixels of the PNG mask the spec names (decoded by a page). */
  setDecodedMaskFile(maskPath: string, mask: RleMask): void {
    if (this.current.mask.base.kind === 'file' && this.current.mask.base.path === maskPath) this.decodedMaskFile = { path: maskPath, bitmap: decodeMaskRle(mask) };
  }

  /** The spec to write or run: strokes rasterised onto the mask (which needs the image's size when there are strokes). */
  specFor(model: EditorModel = this.current): EditSpec {
    const base = model.mask.base;
    if (model.mask.strokes.length === 0) return specFromModel(model, maskSpecOf(model.mask, undefined));
    const size = this.imageSize;
    if (!size) throw new Error(`The mask of ${this.name} cannot be saved before the editor has shown the image (${this.viewState.kind === 'failed' ? this.viewState.message : 'still loading'}).`);
    const decoded = base.kind === 'file' && this.decodedMaskFile?.path === base.path ? this.decodedMaskFile.bitmap : undefined;
    return specFromModel(model, maskSpecOf(model.mask, size, decoded));
  }

  private replace(model: EditorModel, mask: MaskChange): void {
    this.current = model;
    this.revisionNumber++;
    if (mask) this.maskRevisionNumber++;
    this.didChangeModel.fire({ model, revision: this.revisionNumber, maskRevision: this.maskRevisionNumber, mask });
  }

  dispose(): void {
    this.didDispose.fire();
    this.didChangeViewState.dispose();
    this.didChangeModel.dispose();
    this.didDispose.dispose();
  }
}
