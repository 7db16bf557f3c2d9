// The CLIPDrag editor page: shows the image with its point pairs and mask, lets the user edit them, and sends every
// edit to the extension, which owns the document and its undo stack and answers with the document's new state.
// Points and strokes show at once (the page applies them itself); the extension's answer confirms or corrects them.
import type { ImagePoint } from '../shared/edit-spec';
import type { EditorEdit } from '../shared/editor-model';
import type { MaskStroke, PixelRect } from '../shared/mask-raster';
import { USER_ACTION_LABELS, type DocumentView, type RunView, type ToWebviewMessage, type UserAction } from '../shared/webview-messages';
import { CanvasInput, isTextInput, type CanvasInputHost, type Tool } from './canvas-input';
import { addPair, deletePair, drawnPoints, INITIAL_EDITOR_STATE, movePoint, revertToDocument, showDocument, type EditorState } from './editor-state';
import './elements';
import { MaskLayer } from './mask-layer';
import { ParameterPanel } from './parameter-panel';
import type { PointRef } from './point-hits';
import { PointsList } from './points-list';
import { PromptPanel } from './prompt-panel';
import { Renderer } from './renderer';
import { ResultsPanel } from './results-panel';
import { button, RunPanel } from './run-panel';
import { SHORTCUTS, shortcutFor, type ShortcutAction } from './shortcuts';
import { Store } from './store';
import { Viewport } from './viewport';
import { loadPageState, post, savePageState, type PageState } from './vscode-api';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const MIN_BRUSH = 1;
const MAX_BRUSH = 500;
const ZOOM_STEP = 1.25;

class Editor {
  private readonly viewport = new Viewport();
  private readonly stack = byId<HTMLDivElement>('canvas-stack');
  private readonly imageElement = byId<HTMLImageElement>('clipdrag-image');
  private readonly status = byId<HTMLParagraphElement>('clipdrag-status');
  private readonly renderer: Renderer;
  private readonly mask: MaskLayer;
  private readonly input: CanvasInput;
  private readonly prompts: PromptPanel;
  private readonly parameters: ParameterPanel;
  private readonly pointsList: PointsList;
  private readonly runPanel: RunPanel;
  private readonly results: ResultsPanel;

  /** Points, selection, pending handle and document: changed by `store.update`, drawn by `render` alone. */
  private readonly store = new Store<EditorState>(INITIAL_EDITOR_STATE);
  private brushAt: { x: number; y: number } | undefined;
  private imageName = '';
  private imageSize: { width: number; height: number } | undefined;
  private state: PageState;
  private mode: 'edit' | 'compare' = 'edit';
  private preview: HTMLImageElement | undefined;
  private strokeNumber = 0;

  constructor() {
    const saved = loadPageState();
    this.state = {
      tool: saved.tool ?? 'point',
      brushRadius: clampBrush(saved.brushRadius ?? 24),
      brushSizeChosen: saved.brushSizeChosen ?? false,
      maskVisible: saved.maskVisible ?? true,
    };
    this.renderer = new Renderer({ image: byId('layer-image'), mask: byId('layer-mask'), overlay: byId('layer-overlay') }, this.viewport, () => ({
      points: drawnPoints(this.store.state),
      selected: this.store.state.selected,
      pendingHandle: this.store.state.pending,
      brush: this.brushAt && (this.state.tool === 'brush' || this.state.tool === 'eraser') ? { ...this.brushAt, radius: this.state.brushRadius, erase: this.state.tool === 'eraser' } : undefined,
      liveHandles: this.runPanel?.view.phase === 'running' ? this.runPanel.view.handles : undefined,
    }), (ms) => (this.stack.dataset.frameMs = ms.toFixed(2)));
    this.mask = new MaskLayer({
      changed: (rect: PixelRect | undefined) => (rect ? this.renderer.invalidateMaskRect(rect) : this.renderer.invalidate('mask')),
      needResync: () => post({ type: 'resync' }),
      fileDecoded: (path, mask) => post({ type: 'maskFileDecoded', path, mask }),
      problem: (message) => this.notice('warning', message, []),
    });
    this.renderer.setMaskSource(this.mask);
    this.input = new CanvasInput(this.stack, this.inputHost());
    const send = (edit: EditorEdit) => this.send(edit);
    this.prompts = new PromptPanel(send);
    this.parameters = new ParameterPanel(byId('parameters'), send);
    this.pointsList = new PointsList({ select: (index) => this.selectPair(index), remove: (index) => this.send({ kind: 'deletePair', index }) });
    this.runPanel = new RunPanel({
      run: () => this.run(),
      cancel: () => post({ type: 'cancelRun' }),
      action: (action) => post({ type: 'userAction', action }),
      showResult: (file) => {
        this.results.select(file);
      },
    });
    this.results = new ResultsPanel({ action: (action, file) => post({ type: 'result', action, file }), compareShown: () => this.setMode('compare') });
    this.store.subscribe((state, previous) => this.render(state, previous));
    this.wireToolbar();
    this.wireNotice();
    this.listShortcuts();
    new ResizeObserver(() => this.resize()).observe(this.stack);
    window.addEventListener('message', (event: MessageEvent<ToWebviewMessage>) => this.receive(event.data));
    window.addEventListener('keydown', (event) => this.keydown(event));
    this.setTool(this.state.tool);
    this.setMaskVisible(this.state.maskVisible);
    this.setBrush(this.state.brushRadius, false);
    this.setMode('edit');
    this.resize();
    post({ type: 'ready' });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Messages from the extension

  private receive(message: ToWebviewMessage): void {
    switch (message?.type) {
      case 'showImage':
        return this.showImage(message.src, message.name);
      case 'document':
        return this.showDocument(message.view, message.mask);
      case 'editRejected':
        this.mask.dropPending();
        if (!this.parameters.showRejected(message.message)) this.notice('warning', message.message, []);
        this.store.update(revertToDocument);
        return;
      case 'run':
        return this.showRun(message.run);
      case 'results':
        return this.results.show(message.results);
      case 'notice':
        return this.notice(message.level, message.message, message.actions);
      case 'clearNotice':
        byId('notice').hidden = true;
        return;
      case 'shortcut':
        // A tool key typed into the prompt or a parameter field is text, not a tool switch.
        if (message.action !== 'run' && isEditingText()) return;
        return this.perform(message.action);
    }
  }

  private showDocument(view: DocumentView, mask: Parameters<MaskLayer['apply']>[0] | undefined): void {
    if (mask) this.mask.apply(mask);
    else if (view.maskRevision !== this.mask.currentRevision && this.mask.currentRevision >= 0) post({ type: 'resync' });
    this.store.update((state) => showDocument(state, view));
  }

  /** The one place the store's state is drawn: the document's fields, the points list, the canvas overlay, the status. */
  private render(state: EditorState, previous: EditorState | undefined): void {
    if (state.view && state.view !== previous?.view) {
      this.prompts.show(state.view);
      this.parameters.show(state.view);
      this.stack.dataset.revision = String(state.view.revision);
    }
    const listed = !previous || state.points !== previous.points || state.selected !== previous.selected || state.pending !== previous.pending;
    if (listed) {
      this.pointsList.show(state.points, state.selected?.index, state.pending);
      this.stack.dataset.points = String(state.points.length);
    }
    if (listed || state.moving !== previous?.moving) this.renderer.invalidate('overlay');
    if (listed) this.updateStatus();
  }

  private showImage(src: string, name: string): void {
    this.imageName = name;
    this.status.textContent = `Loading ${name}…`;
    const image = this.imageElement;
    image.alt = name;
    image.onload = () => {
      const width = image.naturalWidth;
      const height = image.naturalHeight;
      this.imageSize = { width, height };
      this.viewport.setImage(width, height);
      this.mask.setSize(width, height);
      this.renderer.setImage(image);
      if (!this.state.brushSizeChosen) this.setBrush(Math.round(Math.max(width, height) / 40), false);
      this.results.setSource(src);
      this.stack.dataset.imageSize = `${width}x${height}`;
      this.viewChanged();
      post({ type: 'imageLoaded', src, width, height });
      // A decoded bitmap draws without decoding again on every frame; until it exists the element is drawn.
      createImageBitmap(image).then(
        (bitmap) => {
          if (this.imageElement.src === src) this.renderer.setImage(bitmap);
        },
        () => undefined,
      );
    };
    image.onerror = () => {
      const message = `The image could not be decoded or loaded (${name}).`;
      this.imageSize = undefined;
      this.renderer.setImage(undefined);
      this.status.textContent = message;
      this.notice('error', message, ['showLogs']);
      post({ type: 'imageFailed', src, message });
    };
    image.src = src;
  }

  private showRun(run: RunView): void {
    this.runPanel.show(run);
    this.stack.dataset.run = run.phase;
    if (run.phase === 'running' && run.preview) {
      if (this.preview?.src !== run.preview) {
        const preview = new Image();
        preview.onload = () => this.renderer.setPreview(preview);
        preview.src = run.preview;
        this.preview = preview;
      }
    } else if (run.phase !== 'running' && this.preview) {
      this.preview = undefined;
      this.renderer.setPreview(undefined);
    }
    if (run.phase === 'finished') this.results.highlight(run.result.file);
    this.renderer.invalidate('overlay');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Edits

  private send(edit: EditorEdit, strokeId?: string): void {
    post(strokeId ? { type: 'edit', edit, strokeId } : { type: 'edit', edit });
  }

  private inputHost(): CanvasInputHost {
    return {
      viewport: this.viewport,
      tool: () => this.state.tool,
      brushRadius: () => this.state.brushRadius,
      imageReady: () => this.imageSize !== undefined && this.mode === 'edit',
      displayPoints: () => drawnPoints(this.store.state),
      pendingHandle: () => this.store.state.pending,
      setPendingHandle: (point: ImagePoint | undefined) => this.store.update((state) => ({ ...state, pending: point })),
      select: (ref: PointRef | undefined) => this.store.update((state) => ({ ...state, selected: ref })),
      addPair: (handle: ImagePoint, target: ImagePoint) => {
        const pair = { handle, target };
        this.store.update((state) => addPair(state, pair));
        this.send({ kind: 'addPair', pair });
      },
      previewMove: (ref: PointRef, to: ImagePoint) => this.store.update((state) => ({ ...state, moving: { ref, to } })),
      commitMove: (ref: PointRef, to: ImagePoint) => {
        this.store.update((state) => movePoint(state, ref, to));
        this.send({ kind: 'movePoint', index: ref.index, end: ref.end, to });
      },
      cancelMove: () => this.store.update(revertToDocument),
      paint: (segment: MaskStroke) => {
        this.mask.paint(segment);
      },
      commitStroke: (stroke: MaskStroke) => {
        const id = `s${Date.now().toString(36)}-${++this.strokeNumber}`;
        this.mask.markPending(id, stroke);
        this.send({ kind: 'maskStroke', stroke }, id);
        this.updateStatus();
      },
      brushMoved: (at: { x: number; y: number } | undefined) => {
        this.brushAt = at;
        this.renderer.invalidate('overlay');
      },
      viewChanged: () => this.viewChanged(),
    };
  }

  private selectPair(index: number): void {
    this.store.update((state) => ({ ...state, selected: { index, end: 'handle' } }));
    this.setTool('point');
  }

  private nudge(dx: number, dy: number): void {
    const { selected: ref, points } = this.store.state;
    const size = this.imageSize;
    if (!ref || !size || !points[ref.index]) return;
    const [x, y] = points[ref.index]![ref.end];
    const to: ImagePoint = [Math.min(size.width - 1, Math.max(0, x + dx)), Math.min(size.height - 1, Math.max(0, y + dy))];
    this.store.update((state) => movePoint(state, ref, to));
    this.send({ kind: 'movePoint', index: ref.index, end: ref.end, to });
  }

  private addPairAtCentre(): void {
    const size = this.imageSize;
    if (!size) return;
    const [cx, cy] = this.viewport.toImagePixel(this.viewport.viewWidth / 2, this.viewport.viewHeight / 2);
    const offset = Math.max(8, Math.round(Math.max(size.width, size.height) / 20));
    const handle: ImagePoint = [cx, cy];
    const target: ImagePoint = [Math.min(size.width - 1, cx + offset), cy];
    this.store.update((state) => addPair(state, { handle, target }));
    this.setTool('point');
    this.send({ kind: 'addPair', pair: { handle, target } });
  }

  private run(): void {
    this.prompts.flushAll();
    post({ type: 'run' });
  }

  // -------------------------------------------------------------------------------------------------------------
  // View and tools

  private resize(): void {
    if (this.stack.hidden) return; // compare view: a hidden canvas has no size to fit (it made the zoom read 2%)
    const rect = this.stack.getBoundingClientRect();
    this.viewport.setView(rect.width, rect.height);
    this.renderer.resize(rect.width, rect.height, window.devicePixelRatio || 1);
    this.viewChanged();
  }

  private viewChanged(): void {
    this.renderer.invalidateAll();
    const { scale, offsetX, offsetY } = this.viewport;
    this.stack.dataset.view = JSON.stringify({ scale, offsetX, offsetY });
    byId('zoom-level').textContent = `${Math.round(scale * 100)}%`;
    this.updateStatus();
  }

  private setTool(tool: Tool): void {
    this.state.tool = tool;
    for (const element of document.querySelectorAll<HTMLButtonElement>('.tool')) element.setAttribute('aria-checked', String(element.dataset.tool === tool));
    this.stack.dataset.tool = tool;
    this.input.updateCursor();
    this.saveState();
    // Only the Points tool places handles; the overlay shows the brush for the brush tools.
    if (tool !== 'point') this.store.update((state) => (state.pending ? { ...state, pending: undefined } : state));
    this.renderer.invalidate('overlay');
  }

  private setBrush(radius: number, chosen: boolean): void {
    this.state.brushRadius = clampBrush(radius);
    if (chosen) this.state.brushSizeChosen = true;
    const slider = byId<HTMLInputElement>('brush-size');
    slider.value = String(this.state.brushRadius);
    byId('brush-size-value').textContent = `${this.state.brushRadius} px`;
    this.renderer.invalidate('overlay');
    this.saveState();
  }

  private setMaskVisible(visible: boolean): void {
    this.state.maskVisible = visible;
    this.renderer.setMaskVisible(visible);
    byId('toggle-mask').setAttribute('aria-pressed', String(visible));
    this.saveState();
  }

  private setMode(mode: 'edit' | 'compare'): void {
    this.mode = mode;
    this.stack.hidden = mode !== 'edit';
    this.results.setVisible(mode === 'compare');
    // Tools, mask and zoom act on the editing canvas only.
    for (const element of document.querySelectorAll<HTMLElement>('[data-edit-only]')) element.hidden = mode !== 'edit';
    for (const element of document.querySelectorAll<HTMLButtonElement>('.view-mode')) element.setAttribute('aria-checked', String(element.dataset.view === mode));
    if (mode === 'edit') this.resize();
  }

  private zoom(factor: number): void {
    this.viewport.zoomAt(factor, this.viewport.viewWidth / 2, this.viewport.viewHeight / 2);
    this.viewChanged();
  }

  private saveState(): void {
    savePageState(this.state);
  }

  private updateStatus(): void {
    if (!this.imageSize) return;
    const { width, height } = this.imageSize;
    const count = this.store.state.points.length;
    const parts = [`${this.imageName} — ${width} × ${height} px`, `${Math.round(this.viewport.scale * 100)}%`, `${count} point ${count === 1 ? 'pair' : 'pairs'}`];
    if (this.mask.strokeCount > 0) parts.push('mask painted');
    this.status.textContent = parts.join(' · ');
  }

  private wireToolbar(): void {
    for (const element of document.querySelectorAll<HTMLButtonElement>('.tool')) element.addEventListener('click', () => this.setTool(element.dataset.tool as Tool));
    const slider = byId<HTMLInputElement>('brush-size');
    slider.min = String(MIN_BRUSH);
    slider.max = String(MAX_BRUSH);
    slider.addEventListener('input', () => this.setBrush(Number(slider.value), true));
    byId('toggle-mask').addEventListener('click', () => this.setMaskVisible(!this.state.maskVisible));
    byId('zoom-in').addEventListener('click', () => this.zoom(ZOOM_STEP));
    byId('zoom-out').addEventListener('click', () => this.zoom(1 / ZOOM_STEP));
    byId('zoom-fit').addEventListener('click', () => {
      this.viewport.fit();
      this.viewChanged();
    });
    byId('zoom-actual').addEventListener('click', () => {
      this.viewport.actualSize();
      this.viewChanged();
    });
    byId('undo').addEventListener('click', () => post({ type: 'command', command: 'undo' }));
    byId('redo').addEventListener('click', () => post({ type: 'command', command: 'redo' }));
    byId('clear-mask').addEventListener('click', () => this.send({ kind: 'clearMask' }));
    byId('clear-all').addEventListener('click', () => this.send({ kind: 'clearAll' }));
    for (const element of document.querySelectorAll<HTMLButtonElement>('.view-mode')) element.addEventListener('click', () => this.setMode(element.dataset.view as 'edit' | 'compare'));
  }

  private wireNotice(): void {
    byId('notice')
      .querySelector('.notice-close')!
      .addEventListener('click', () => (byId('notice').hidden = true));
  }

  private notice(level: 'info' | 'warning' | 'error', message: string, actions: readonly UserAction[]): void {
    const notice = byId('notice');
    notice.dataset.level = level;
    notice.querySelector('.notice-message')!.textContent = message;
    notice.querySelector('.notice-actions')!.replaceChildren(...actions.map((action) => button(USER_ACTION_LABELS[action], () => post({ type: 'userAction', action }))));
    notice.hidden = false;
  }

  private listShortcuts(): void {
    const list = byId('shortcuts');
    for (const shortcut of SHORTCUTS) {
      const term = document.createElement('dt');
      term.textContent = shortcut.keys;
      const description = document.createElement('dd');
      description.textContent = shortcut.description;
      list.append(term, description);
    }
  }

  private keydown(event: KeyboardEvent): void {
    if (isTextInput(event)) return;
    const action = shortcutFor(event);
    if (!action) return;
    event.preventDefault();
    this.perform(action, event.shiftKey ? 10 : 1);
  }

  /** `step`: how far the arrow keys move a point (Shift: 10 pixels). */
  private perform(action: ShortcutAction, step = 1): void {
    const nudge = (dx: number, dy: number) => this.nudge(dx * step, dy * step);
    switch (action) {
      case 'tool-point':
        return this.setTool('point');
      case 'tool-brush':
        return this.setTool('brush');
      case 'tool-eraser':
        return this.setTool('eraser');
      case 'tool-pan':
        return this.setTool('pan');
      case 'brush-smaller':
        return this.setBrush(Math.round(this.state.brushRadius / 1.25), true);
      case 'brush-larger':
        return this.setBrush(Math.max(this.state.brushRadius + 1, Math.round(this.state.brushRadius * 1.25)), true);
      case 'toggle-mask':
        return this.setMaskVisible(!this.state.maskVisible);
      case 'zoom-in':
        return this.zoom(ZOOM_STEP);
      case 'zoom-out':
        return this.zoom(1 / ZOOM_STEP);
      case 'zoom-fit':
        this.viewport.fit();
        return this.viewChanged();
      case 'zoom-actual':
        this.viewport.actualSize();
        return this.viewChanged();
      case 'add-pair':
        return this.addPairAtCentre();
      case 'select-next':
      case 'select-previous': {
        const { points, selected } = this.store.state;
        if (points.length === 0) return;
        const step = action === 'select-next' ? 1 : -1;
        const index = selected ? (selected.index + step + points.length) % points.length : step > 0 ? 0 : points.length - 1;
        return this.selectPair(index);
      }
      case 'toggle-end':
        return this.store.update((state) => {
          const selected = state.selected;
          return selected ? { ...state, selected: { index: selected.index, end: selected.end === 'handle' ? 'target' : 'handle' } } : state;
        });
      case 'nudge-left':
        return nudge(-1, 0);
      case 'nudge-right':
        return nudge(1, 0);
      case 'nudge-up':
        return nudge(0, -1);
      case 'nudge-down':
        return nudge(0, 1);
      case 'delete-selected': {
        const selected = this.store.state.selected;
        if (selected) {
          this.store.update((state) => deletePair(state, selected.index));
          this.send({ kind: 'deletePair', index: selected.index });
        }
        return;
      }
      case 'clear-mask':
        return this.send({ kind: 'clearMask' });
      case 'clear-all':
        return this.send({ kind: 'clearAll' });
      case 'escape':
        // Cancelling a run is VS Code's Escape keybinding (clipdrag.editor.cancelRun), so one press never does both.
        return this.store.update((state) =>
          state.pending ? { ...state, pending: undefined } : state.selected ? { ...state, selected: undefined } : state,
        );
      case 'run':
        return this.run();
      case 'toggle-compare':
        return this.setMode(this.mode === 'edit' ? 'compare' : 'edit');
    }
  }
}

/** True while the page's focus is in a text field (the prompt, a parameter). */
function isEditingText(): boolean {
  let element = document.activeElement;
  while (element?.shadowRoot?.activeElement) element = element.shadowRoot.activeElement;
  if (!(element instanceof HTMLElement)) return false;
  const tag = element.tagName.toLowerCase();
  return element.isContentEditable || ['input', 'textarea', 'select', 'vscode-textarea', 'vscode-textfield', 'vscode-single-select'].includes(tag);
}

function clampBrush(radius: number): number {
  return Math.min(MAX_BRUSH, Math.max(MIN_BRUSH, Math.round(radius) || MIN_BRUSH));
}

new Editor();
