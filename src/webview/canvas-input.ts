// Pointer and wheel input on the canvas: placing, selecting and dragging points, painting and erasing the mask,
// panning and zooming (wheel, pinch on touch screens and trackpads). Turns gestures into calls on the editor; it
// keeps only the state of the gesture in progress.
import type { ImagePoint } from '../shared/edit-spec';
import type { MaskStroke } from '../shared/mask-raster';
import { hitTestPoints, type PointRef } from './point-hits';
import type { Viewport } from './viewport';

export type Tool = 'point' | 'brush' | 'eraser' | 'pan';

/** What the input needs from the editor, and what it tells it. */
export interface CanvasInputHost {
  readonly viewport: Viewport;
  tool(): Tool;
  brushRadius(): number;
  imageReady(): boolean;
  displayPoints(): readonly { handle: ImagePoint; target: ImagePoint }[];
  pendingHandle(): ImagePoint | undefined;
  setPendingHandle(point: ImagePoint | undefined): void;
  select(ref: PointRef | undefined): void;
  addPair(handle: ImagePoint, target: ImagePoint): void;
  /** Shows a point at a new place while it is dragged (no edit yet). */
  previewMove(ref: PointRef, to: ImagePoint): void;
  commitMove(ref: PointRef, to: ImagePoint): void;
  cancelMove(): void;
  /** Paints part of a stroke now; `commitStroke` sends the whole stroke when the pointer is released. */
  paint(segment: MaskStroke): void;
  commitStroke(stroke: MaskStroke): void;
  brushMoved(at: { x: number; y: number } | undefined): void;
  viewChanged(): void;
}

/** Screen distance within which a click picks a point, in CSS pixels. */
const HIT_RADIUS_PX = 10;

type Gesture =
  | { kind: 'pan'; x: number; y: number }
  | { kind: 'move'; ref: PointRef; start: ImagePoint; to: ImagePoint; moved: boolean; downX: number; downY: number }
  | { kind: 'stroke'; stroke: MaskStroke }
  | { kind: 'pinch'; distance: number; x: number; y: number };

export class CanvasInput {
  private gesture: Gesture | undefined;
  private spaceHeld = false;
  private readonly touches = new Map<number, { x: number; y: number }>();

  constructor(
    private readonly element: HTMLElement,
    private readonly host: CanvasInputHost,
  ) {
    element.addEventListener('pointerdown', (e) => this.down(e));
    element.addEventListener('pointermove', (e) => this.move(e));
    element.addEventListener('pointerup', (e) => this.up(e));
    element.addEventListener('pointercancel', (e) => this.cancel(e));
    element.addEventListener('pointerleave', () => this.host.brushMoved(undefined));
    element.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    element.addEventListener('contextmenu', (e) => e.preventDefault());
    window.addEventListener('keydown', (e) => {
      if (e.key === ' ' && !isTextInput(e)) {
        this.spaceHeld = true;
        this.updateCursor();
      }
    });
    window.addEventListener('keyup', (e) => {
      if (e.key === ' ') {
        this.spaceHeld = false;
        this.updateCursor();
      }
    });
  }

  /** The cursor for the tool (called when the tool changes). */
  updateCursor(): void {
    const tool = this.host.tool();
    const cursor = this.spaceHeld || tool === 'pan' ? (this.gesture?.kind === 'pan' ? 'grabbing' : 'grab') : tool === 'point' ? 'crosshair' : 'none';
    this.element.style.cursor = cursor;
  }

  private local(event: PointerEvent | WheelEvent): { x: number; y: number } {
    const rect = this.element.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  private down(event: PointerEvent): void {
    this.element.focus({ preventScroll: true });
    const at = this.local(event);
    if (event.pointerType === 'touch') {
      this.touches.set(event.pointerId, at);
      if (this.touches.size === 2) {
        this.abandonGesture();
        const [a, b] = [...this.touches.values()] as [{ x: number; y: number }, { x: number; y: number }];
        this.gesture = { kind: 'pinch', distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
        return;
      }
    }
    if (event.button !== 0 && event.button !== 1) return;
    if (!this.host.imageReady()) return;
    try {
      this.element.setPointerCapture(event.pointerId);
    } catch {
      // A pointer the browser does not track (synthetic events): the gesture works without capture.
    }
    const tool = this.host.tool();
    if (event.button === 1 || this.spaceHeld || tool === 'pan') {
      this.gesture = { kind: 'pan', x: at.x, y: at.y };
      this.updateCursor();
      event.preventDefault();
      return;
    }
    const { viewport } = this.host;
    if (tool === 'point') {
      const imageAt = viewport.toImage(at.x, at.y);
      const hit = hitTestPoints(this.host.displayPoints(), imageAt, HIT_RADIUS_PX / viewport.scale);
      if (hit) {
        const start = this.host.displayPoints()[hit.index]![hit.end];
        this.host.select(hit);
        this.gesture = { kind: 'move', ref: hit, start, to: start, moved: false, downX: at.x, downY: at.y };
        return;
      }
      if (!viewport.isOverImage(at.x, at.y)) return;
      const point = viewport.toImagePixel(at.x, at.y);
      const pending = this.host.pendingHandle();
      this.host.select(undefined);
      if (pending) {
        this.host.setPendingHandle(undefined);
        this.host.addPair(pending, point);
      } else {
        this.host.setPendingHandle(point);
      }
      return;
    }
    const stroke: MaskStroke = { mode: tool === 'eraser' ? 'erase' : 'paint', radius: this.host.brushRadius(), points: [strokePoint(viewport.toImage(at.x, at.y))] };
    this.gesture = { kind: 'stroke', stroke };
    this.host.paint(stroke);
  }

  private move(event: PointerEvent): void {
    const at = this.local(event);
    const tool = this.host.tool();
    if ((tool === 'brush' || tool === 'eraser') && !this.spaceHeld) this.host.brushMoved(at);
    if (event.pointerType === 'touch' && this.touches.has(event.pointerId)) {
      this.touches.set(event.pointerId, at);
      if (this.gesture?.kind === 'pinch' && this.touches.size === 2) return this.pinch();
    }
    const gesture = this.gesture;
    if (!gesture) return;
    const { viewport } = this.host;
    switch (gesture.kind) {
      case 'pan':
        viewport.panBy(at.x - gesture.x, at.y - gesture.y);
        gesture.x = at.x;
        gesture.y = at.y;
        this.host.viewChanged();
        return;
      case 'move': {
        // A click that wobbles a pixel or two is a selection, not a move.
        if (!gesture.moved && Math.hypot(at.x - gesture.downX, at.y - gesture.downY) < 3) return;
        gesture.moved = true;
        gesture.to = viewport.toImagePixel(at.x, at.y);
        this.host.previewMove(gesture.ref, gesture.to);
        return;
      }
      case 'stroke': {
        const points = gesture.stroke.points;
        const last = points[points.length - 1]!;
        const next = strokePoint(viewport.toImage(at.x, at.y));
        // Spacing of a quarter radius keeps the swept outline smooth without piling up points.
        if (Math.hypot(next[0] - last[0], next[1] - last[1]) < Math.max(0.5, gesture.stroke.radius / 4)) return;
        points.push(next);
        this.host.paint({ mode: gesture.stroke.mode, radius: gesture.stroke.radius, points: [last, next] });
        return;
      }
      case 'pinch':
        return;
    }
  }

  private up(event: PointerEvent): void {
    this.touches.delete(event.pointerId);
    const gesture = this.gesture;
    if (!gesture || gesture.kind === 'pinch') {
      if (this.touches.size < 2) this.gesture = undefined;
      return;
    }
    this.gesture = undefined;
    if (this.element.hasPointerCapture(event.pointerId)) this.element.releasePointerCapture(event.pointerId);
    if (gesture.kind === 'move' && gesture.moved) this.host.commitMove(gesture.ref, gesture.to);
    if (gesture.kind === 'stroke') this.host.commitStroke(gesture.stroke);
    this.updateCursor();
  }

  private cancel(event: PointerEvent): void {
    this.touches.delete(event.pointerId);
    this.abandonGesture();
  }

  /** Ends the gesture in progress without an edit (a second finger arrived, or the pointer was lost). */
  private abandonGesture(): void {
    const gesture = this.gesture;
    this.gesture = undefined;
    if (gesture?.kind === 'move' && gesture.moved) this.host.cancelMove();
    // Paint already on the canvas must reach the document, or the page and the document would differ.
    if (gesture?.kind === 'stroke') this.host.commitStroke(gesture.stroke);
  }

  private pinch(): void {
    const gesture = this.gesture;
    if (gesture?.kind !== 'pinch') return;
    const [a, b] = [...this.touches.values()] as [{ x: number; y: number }, { x: number; y: number }];
    const distance = Math.hypot(a.x - b.x, a.y - b.y);
    const x = (a.x + b.x) / 2;
    const y = (a.y + b.y) / 2;
    const { viewport } = this.host;
    viewport.panBy(x - gesture.x, y - gesture.y);
    if (gesture.distance > 0 && distance > 0) viewport.zoomAt(distance / gesture.distance, x, y);
    Object.assign(gesture, { distance, x, y });
    this.host.viewChanged();
  }

  private wheel(event: WheelEvent): void {
    event.preventDefault();
    if (!this.host.imageReady()) return;
    const at = this.local(event);
    // Lines (mouse wheels on some systems) are about 33 pixels; trackpad pinches arrive as ctrl+wheel in pixels.
    const pixels = event.deltaMode === WheelEvent.DOM_DELTA_LINE ? event.deltaY * 33 : event.deltaMode === WheelEvent.DOM_DELTA_PAGE ? event.deltaY * 400 : event.deltaY;
    const factor = Math.exp(-pixels * (event.ctrlKey ? 0.01 : 0.002));
    this.host.viewport.zoomAt(factor, at.x, at.y);
    this.host.viewChanged();
  }
}

/** Stroke points carry a tenth of a pixel: enough precision, and the page and the extension round alike. */
function strokePoint([x, y]: [number, number]): ImagePoint {
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

export function isTextInput(event: Event): boolean {
  for (const target of event.composedPath()) {
    if (!(target instanceof HTMLElement)) continue;
    const tag = target.tagName.toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || target.isContentEditable) return true;
    if (tag === 'vscode-textarea' || tag === 'vscode-textfield' || tag === 'vscode-single-select') return true;
  }
  return false;
}
