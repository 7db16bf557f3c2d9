// Everything the extension keeps for one open image besides its model: the pages showing it, the undo stack entries
// it hands to VS Code, saving, the result history, a run, and the files next to it (image, spec, results) changing
// on disk.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatSpecIssues, validateEditSpec } from '../../shared/edit-spec';
import { emptyModel, modelFromSpec, type EditOutcome, type EditorEdit, type EditorModel } from '../../shared/editor-model';
import type { ResultView, UserAction } from '../../shared/webview-messages';
import type { SidecarClient } from '../sidecar/sidecar-client';
import { editRunAvailability } from './edit-run-backend';
import type { ImageDocument } from './image-document';
import { userParameterDefaults } from './parameter-settings';
import { listResults, resultIndex, type ResultFile } from './result-history';
import { RunController } from './run-controller';
import { readSpecFile, specText, specUriForImage, writeFileAtomic, type SpecFileState } from './spec-io';

export interface SessionHost {
  sidecar: SidecarClient;
  log: vscode.LogOutputChannel;
  /** Puts an edit on VS Code's undo stack (the provider's `onDidChangeCustomDocument`). */
  fireEdit(event: vscode.CustomDocumentEditEvent<ImageDocument>): void;
}

/** What a page needs to hear about besides the model (the model travels through the document's own event). */
export interface SessionListener {
  showImage(cacheBust: number): void;
  results(results: readonly ResultFile[]): void;
  notice(level: 'info' | 'warning' | 'error', message: string, actions: UserAction[]): void;
  clearNotice(): void;
}

const DISK_EVENT_DELAY_MS = 150;

/** The model a document starts from for what is on disk (a missing spec: an empty edit with the user's defaults). */
export function modelForDiskState(state: SpecFileState, log?: vscode.LogOutputChannel): EditorModel {
  if (state.kind === 'ok') return modelFromSpec(state.spec);
  return { ...emptyModel(), parameters: userParameterDefaults(log) };
}

export class DocumentSession implements vscode.Disposable {
  readonly run: RunController;
  private resultFiles: ResultFile[] = [];
  private readonly listeners = new Set<SessionListener>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly pendingDiskEvents = new Map<string, ReturnType<typeof setTimeout>>();
  /** The spec text being written right now: its change event is ours. */
  private writingText: string | undefined;
  private askingAboutSpec = false;

  constructor(
    readonly document: ImageDocument,
    private readonly host: SessionHost,
  ) {
    this.run = new RunController({
      document,
      sidecar: host.sidecar,
      log: host.log,
      availability: () => editRunAvailability(host.sidecar),
      describeResult: async (uri) => {
        await this.refreshResults();
        const file = this.resultFiles.find((r) => r.uri.toString() === uri.toString());
        return { file: path.posix.basename(uri.path), src: '', modified: file?.modified ?? Date.now(), ...(file?.recipeUri ? { recipe: path.posix.basename(file.recipeUri.path) } : {}), ...(file?.mode ? { mode: file.mode } : {}) } satisfies ResultView;
      },
    });
    this.disposables.push(this.run);
    if (document.uri.scheme === 'file') this.watchFolder();
    void this.refreshResults();
  }

  get results(): readonly ResultFile[] {
    return this.resultFiles;
  }

  addListener(listener: SessionListener): vscode.Disposable {
    this.listeners.add(listener);
    return new vscode.Disposable(() => this.listeners.delete(listener));
  }

  /** Applies a page's edit and, when it changed something, puts it on the undo stack. */
  applyEdit(edit: EditorEdit, strokeId?: string): EditOutcome {
    const outcome = this.document.edit(edit, strokeId);
    if (outcome.kind === 'changed') this.pushUndo(outcome.label, outcome.before!, outcome.model);
    return outcome;
  }

  private pushUndo(label: string, before: EditorModel, after: EditorModel): void {
    const { document } = this;
    this.host.fireEdit({ document, label, undo: () => document.restore(before), redo: () => document.restore(after) });
  }

  async save(): Promise<void> {
    const { document } = this;
    if (!vscode.workspace.isTrusted) throw new Error(`Saving the edit of ${document.name} is disabled in Restricted Mode (CLIPDrag writes no files there). Trust this workspace to save.`);
    const text = this.validatedSpecText();
    await this.writeSpec(document.specUri, text);
    document.markSaved(text);
    this.listeners.forEach((l) => l.clearNotice());
  }

  /** Save As: the image goes to `destination` (copied), its spec next to it. */
  async saveAs(destination: vscode.Uri): Promise<void> {
    const { document } = this;
    if (!vscode.workspace.isTrusted) throw new Error('Saving is disabled in Restricted Mode. Trust this workspace to save.');
    const text = this.validatedSpecText();
    if (destination.toString() !== document.uri.toString()) await vscode.workspace.fs.copy(document.uri, destination, { overwrite: true });
    const base = document.model.mask.base;
    const sourceFolder = vscode.Uri.joinPath(document.uri, '..');
    const destinationFolder = vscode.Uri.joinPath(destination, '..');
    // A spec names its PNG mask relative to itself: take the mask along when the spec moves to another folder.
    if (base.kind === 'file' && document.model.mask.strokes.length === 0 && sourceFolder.toString() !== destinationFolder.toString()) {
      const target = vscode.Uri.joinPath(destinationFolder, base.path);
      await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(target, '..'));
      await vscode.workspace.fs.copy(vscode.Uri.joinPath(sourceFolder, base.path), target, { overwrite: true });
    }
    await writeFileAtomic(specUriForImage(destination), text);
  }

  async revert(): Promise<void> {
    const state = await readSpecFile(this.document.specUri);
    this.document.resetTo(modelForDiskState(state, this.host.log), state.kind === 'missing' ? undefined : state.text, state.kind === 'invalid' ? state.message : undefined);
    this.showLoadProblem();
  }

  /** The current spec as file text, checked first (a spec that would not load again is not written). */
  private validatedSpecText(): string {
    const spec = this.document.specFor();
    const validation = validateEditSpec(spec, this.document.imageSize ? { imageSize: this.document.imageSize } : {});
    if (!validation.ok) throw new Error(formatSpecIssues(validation.issues, `of ${this.document.name}`));
    return specText(validation.spec);
  }

  private async writeSpec(target: vscode.Uri, text: string): Promise<void> {
    this.writingText = text;
    try {
      await writeFileAtomic(target, text);
    } finally {
      // Late watcher events compare with diskText, which the caller sets.
      setTimeout(() => {
        if (this.writingText === text) this.writingText = undefined;
      }, 2 * DISK_EVENT_DELAY_MS);
    }
  }

  /** The banner for a spec on disk that could not be used, if it could not. */
  loadProblemNotice(): { message: string; actions: UserAction[] } | undefined {
    const problem = this.document.loadProblem;
    return problem ? { message: `${problem}\nThe editor started empty; saving replaces the file.`, actions: ['openSpec'] } : undefined;
  }

  /** Tells the pages that the spec on disk could not be used. */
  showLoadProblem(): void {
    const notice = this.loadProblemNotice();
    if (notice) this.listeners.forEach((l) => l.notice('error', notice.message, notice.actions));
  }

  async refreshResults(): Promise<void> {
    this.resultFiles = await listResults(this.document.uri);
    this.listeners.forEach((l) => l.results(this.resultFiles));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Files changing on disk

  private watchFolder(): void {
    const folder = vscode.Uri.joinPath(this.document.uri, '..');
    // One watcher for the folder, dispatched by name: file names may hold glob characters.
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, '*'));
    const onEvent = (uri: vscode.Uri) => this.scheduleDiskEvent(path.posix.basename(uri.path));
    this.disposables.push(watcher, watcher.onDidChange(onEvent), watcher.onDidCreate(onEvent), watcher.onDidDelete(onEvent));
  }

  private scheduleDiskEvent(name: string): void {
    const imageName = this.document.name;
    const specName = path.posix.basename(this.document.specUri.path);
    let kind: 'image' | 'spec' | 'results';
    if (name === imageName) kind = 'image';
    else if (name === specName) kind = 'spec';
    else if (resultIndex(imageName, name) !== undefined || resultIndex(imageName, name.replace(/\.json$/i, '.png')) !== undefined) kind = 'results';
    else return;
    // Atomic writes arrive as several events (create, change, rename): act once they settle.
    clearTimeout(this.pendingDiskEvents.get(kind));
    this.pendingDiskEvents.set(
      kind,
      setTimeout(() => {
        this.pendingDiskEvents.delete(kind);
        const work = kind === 'image' ? this.onImageChanged() : kind === 'spec' ? this.onSpecChanged() : this.refreshResults();
        work.catch((error: unknown) => this.host.log.error(`editor: handling a change of ${name} on disk failed: ${String(error)}`));
      }, DISK_EVENT_DELAY_MS),
    );
  }

  private async onImageChanged(): Promise<void> {
    try {
      await vscode.workspace.fs.stat(this.document.uri);
    } catch {
      this.listeners.forEach((l) => l.notice('error', `${this.document.name} was deleted or moved on disk. The edit is kept; save it elsewhere with Save As, or close the editor.`, []));
      return;
    }
    this.host.log.info(`editor: ${this.document.uri.fsPath} changed on disk; showing the new pixels`);
    this.listeners.forEach((l) => l.showImage(Date.now()));
  }

  private async onSpecChanged(): Promise<void> {
    const { document } = this;
    const state = await readSpecFile(document.specUri);
    const text = state.kind === 'missing' ? undefined : state.text;
    if (text === document.diskText || (text !== undefined && text === this.writingText)) return;
    const specName = path.posix.basename(document.specUri.path);
    if (state.kind === 'invalid') {
      document.diskText = text;
      this.host.log.warn(`editor: ${specName} changed on disk and is not valid; keeping the editor's edit`);
      this.listeners.forEach((l) => l.notice('warning', `${state.message}\nThe editor keeps its edit; saving replaces the file.`, ['openSpec']));
      return;
    }
    const model = modelForDiskState(state, this.host.log);
    if (!document.isDirty) {
      this.host.log.info(`editor: ${specName} changed on disk; reloading it`);
      document.resetTo(model, text);
      this.listeners.forEach((l) => l.clearNotice());
      return;
    }
    if (this.askingAboutSpec) return;
    this.askingAboutSpec = true;
    try {
      const what = state.kind === 'missing' ? 'was deleted on disk' : 'changed on disk';
      const pick = await vscode.window.showWarningMessage(`${specName} ${what}, and the CLIPDrag editor of ${document.name} has unsaved changes.`, 'Reload from Disk', 'Keep My Changes');
      if (pick === 'Reload from Disk') {
        // Undoable: the user's unsaved edit is one Undo away.
        const before = document.model;
        document.resetTo(model, text);
        this.pushUndo('Reload Edit Spec from Disk', before, model);
      } else {
        document.diskText = text;
      }
    } finally {
      this.askingAboutSpec = false;
    }
  }

  /** Shows a failure of a save in the pages and the log (the provider rethrows it: VS Code reports it as well). */
  reportSaveFailure(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.host.log.error(`editor: saving the edit of ${this.document.uri.fsPath} failed: ${message}`);
    this.listeners.forEach((l) => l.notice('error', `The edit was not saved: ${message}`, ['showLogs']));
  }

  dispose(): void {
    this.pendingDiskEvents.forEach((timer) => clearTimeout(timer));
    this.disposables.forEach((d) => d.dispose());
    this.listeners.clear();
  }
}
