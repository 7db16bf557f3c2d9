// Draws the editor's three stacked canvases, each only when its content changed, once per animation frame:
//   image   — the picture (or the live preview of a run), redrawn on zoom, pan or resize; large images are drawn
//             from a downscaled copy when zoomed out, so panning stays fluid;
//   mask    — the tinted mask, redrawn on zoom/pan, or only the rectangle a brush stroke touched;
//   overlay — point pairs, arrows, numbers, the pending handle, the brush outline, live handles (cheap: a few shapes).
import type { ImagePoint, PointPair } from '../shared/edit-spec';
import type { PixelRect } from '../shared/mask-raster';
import type { PointRef } from './point-hits';
import type { Viewport } from './viewport';

export interface OverlayState {
  points: readonly PointPair[];
  selected: PointRef | undefined;
  pendingHandle: ImagePoint | undefined;
  /** Brush outline: centre in view pixels and radius in image pixels. */
  brush: { x: number; y: number; radius: number; erase: boolean } | undefined;
  /** Where the handles are during a run (drag stage). */
  liveHandles: readonly ImagePoint[] | undefined;
}

export const POINT_COLOURS = { handle: '#ff4d4f', target: '#3d8bff', arrow: '#ffffff', live: '#39d353' } as const;

/** The tinted mask at image resolution; `flush` brings it up to date before it is drawn. */
export interface MaskSource {
  readonly canvas: HTMLCanvasElement;
  flush(): void;
}

interface Layer {
  canvas: HTMLCanvasElement;
  context: CanvasRenderingContext2D;
}

/** Downscaled copies of the image, halving each time, for drawing zoomed out. */
interface ImageLevel {
  source: CanvasImageSource;
  width: number;
}

export class Renderer {
  private readonly image: Layer;
  private readonly mask: Layer;
  private readonly overlay: Layer;
  private levels: ImageLevel[] = [];
  private preview: HTMLImageElement | undefined;
  private maskSource: MaskSource | undefined;
  private pixelRatio = 1;
  private frame = 0;
  private dirty = { image: false, mask: false as boolean | PixelRect[], overlay: false };
  /** Time the last frame's drawing took (ms). */
  lastFrameMs = 0;
  private readonly frameListeners: (() => void)[] = [];

  constructor(
    canvases: { image: HTMLCanvasElement; mask: HTMLCanvasElement; overlay: HTMLCanvasElement },
    private readonly viewport: Viewport,
    private readonly overlayState: () => OverlayState,
    /** Called after each frame with the time its drawing took (ms). */
    private readonly onFrame: (ms: number) => void = () => undefined,
  ) {
    const layer = (canvas: HTMLCanvasElement): Layer => ({ canvas, context: canvas.getContext('2d')! });
    this.image = layer(canvases.image);
    this.mask = layer(canvases.mask);
    this.overlay = layer(canvases.overlay);
  }

  /** The view's size in CSS pixels changed. */
  resize(width: number, height: number, pixelRatio: number): void {
    this.pixelRatio = pixelRatio;
    for (const { canvas } of [this.image, this.mask, this.overlay]) {
      canvas.width = Math.max(1, Math.round(width * pixelRatio));
      canvas.height = Math.max(1, Math.round(height * pixelRatio));
    }
    this.invalidateAll();
  }

  setImage(image: HTMLImageElement | ImageBitmap | undefined): void {
    this.levels = image ? [{ source: image, width: image.width }] : [];
    this.invalidate('image');
    if (image) void this.buildLevels(image);
  }

  setMaskSource(source: MaskSource): void {
    this.maskSource = source;
  }

  setPreview(preview: HTMLImageElement | undefined): void {
    this.preview = preview;
    this.invalidate('image');
  }

  setMaskVisible(visible: boolean): void {
    this.mask.canvas.hidden = !visible;
    if (visible) this.invalidate('mask');
  }

  invalidate(layer: 'image' | 'overlay' | 'mask'): void {
    if (layer === 'mask') this.dirty.mask = true;
    else this.dirty[layer] = true;
    this.schedule();
  }

  /** Only these image pixels of the mask changed. */
  invalidateMaskRect(rect: PixelRect): void {
    if (this.dirty.mask === true) return;
    this.dirty.mask = [...(this.dirty.mask || []), rect];
    this.schedule();
  }

  invalidateAll(): void {
    this.dirty = { image: true, mask: true, overlay: true };
    this.schedule();
  }

  /** Resolves after the next frame has been drawn. */
  nextFrame(): Promise<void> {
    return new Promise((resolve) => {
      this.frameListeners.push(resolve);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.draw());
  }

  /** Draws what changed now (the frame callback; also for tests that measure drawing). */
  draw(): void {
    this.frame = 0;
    const started = performance.now();
    const { image, mask, overlay } = this.dirty;
    this.dirty = { image: false, mask: false, overlay: false };
    if (image) this.drawImage();
    if (mask && !this.mask.canvas.hidden) this.drawMask(mask === true ? undefined : mask);
    if (overlay) this.drawOverlay();
    this.lastFrameMs = performance.now() - started;
    this.onFrame(this.lastFrameMs);
    this.frameListeners.splice(0).forEach((resolve) => resolve());
  }

  private prepare({ canvas, context }: Layer): CanvasRenderingContext2D {
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.setTransform(this.pixelRatio, 0, 0, this.pixelRatio, 0, 0);
    return context;
  }

  private drawImage(): void {
    const context = this.prepare(this.image);
    const { scale, offsetX, offsetY, imageWidth, imageHeight } = this.viewport;
    const width = imageWidth * scale;
    const height = imageHeight * scale;
    if (this.preview) {
      context.imageSmoothingEnabled = true;
      context.drawImage(this.preview, offsetX, offsetY, width, height);
      return;
    }
    if (this.levels.length === 0) return;
    // The smallest copy that still has at least one pixel per device pixel.
    const needed = width * this.pixelRatio;
    let level = this.levels[0]!;
    for (const candidate of this.levels) if (candidate.width >= needed) level = candidate;
    // Zoomed in, show crisp pixels; zoomed out, smooth them.
    context.imageSmoothingEnabled = scale * this.pixelRatio < 2;
    context.imageSmoothingQuality = 'medium';
    context.drawImage(level.source, offsetX, offsetY, width, height);
  }

  private drawMask(rects: PixelRect[] | undefined): void {
    const { canvas, context } = this.mask;
    this.maskSource?.flush();
    const source = this.maskSource?.canvas;
    const { scale, offsetX, offsetY, imageWidth, imageHeight } = this.viewport;
    context.imageSmoothingEnabled = false;
    if (!rects || !source) {
      this.prepare(this.mask);
      if (source && source.width === imageWidth) context.drawImage(source, offsetX, offsetY, imageWidth * scale, imageHeight * scale);
      return;
    }
    context.setTransform(this.pixelRatio, 0, 0, this.pixelRatio, 0, 0);
    for (const rect of rects) {
      // Whole device pixels around the rectangle, so no seam is left between partial redraws.
      const x0 = Math.floor((offsetX + rect.x * scale) * this.pixelRatio) / this.pixelRatio;
      const y0 = Math.floor((offsetY + rect.y * scale) * this.pixelRatio) / this.pixelRatio;
      const x1 = Math.ceil((offsetX + (rect.x + rect.width) * scale) * this.pixelRatio) / this.pixelRatio;
      const y1 = Math.ceil((offsetY + (rect.y + rect.height) * scale) * this.pixelRatio) / this.pixelRatio;
      if (x1 <= 0 || y1 <= 0 || x0 >= canvas.width / this.pixelRatio || y0 >= canvas.height / this.pixelRatio) continue;
      context.save();
      context.beginPath();
      context.rect(x0, y0, x1 - x0, y1 - y0);
      context.clip();
      context.clearRect(x0, y0, x1 - x0, y1 - y0);
      // Source pixels covering the cleared area (one extra on each side for the rounding above).
      const sx = Math.max(0, rect.x - 1);
      const sy = Math.max(0, rect.y - 1);
      const sw = Math.min(imageWidth, rect.x + rect.width + 1) - sx;
      const sh = Math.min(imageHeight, rect.y + rect.height + 1) - sy;
      context.drawImage(source, sx, sy, sw, sh, offsetX + sx * scale, offsetY + sy * scale, sw * scale, sh * scale);
      context.restore();
    }
  }

  private drawOverlay(): void {
    const context = this.prepare(this.overlay);
    const state = this.overlayState();
    const view = (p: ImagePoint) => this.viewport.toView(p[0], p[1]);
    state.points.forEach((pair, index) => {
      const handle = view(pair.handle);
      const target = view(pair.target);
      const selected = state.selected?.index === index;
      drawArrow(context, handle, target, selected);
      drawPoint(context, target, POINT_COLOURS.target, 'ring', selected && state.selected?.end === 'target');
      drawPoint(context, handle, POINT_COLOURS.handle, 'disc', selected && state.selected?.end === 'handle');
      drawLabel(context, handle, String(index + 1));
    });
    if (state.pendingHandle) {
      const handle = view(state.pendingHandle);
      drawPoint(context, handle, POINT_COLOURS.handle, 'disc', true);
      drawLabel(context, handle, String(state.points.length + 1));
    }
    state.liveHandles?.forEach((point, index) => {
      const at = view(point);
      drawPoint(context, at, POINT_COLOURS.live, 'disc', false);
      const origin = state.points[index];
      if (origin) drawArrow(context, view(origin.handle), at, false, POINT_COLOURS.live);
    });
    if (state.brush) {
      const radius = Math.max(1, state.brush.radius * this.viewport.scale);
      context.lineWidth = 1;
      context.setLineDash(state.brush.erase ? [4, 3] : []);
      for (const [colour, extra] of [['rgba(0,0,0,0.8)', 1], ['rgba(255,255,255,0.95)', 0]] as const) {
        context.strokeStyle = colour;
        context.beginPath();
        context.arc(state.brush.x, state.brush.y, radius + extra, 0, Math.PI * 2);
        context.stroke();
      }
      context.setLineDash([]);
    }
  }

  private async buildLevels(image: HTMLImageElement | ImageBitmap): Promise<void> {
    const levels: ImageLevel[] = [{ source: image, width: image.width }];
    let width = image.width;
    let height = image.height;
    // Halve down to about screen size; each copy costs a quarter of the one before.
    while (width > 1024 && height > 256) {
      width = Math.round(width / 2);
      height = Math.round(height / 2);
      try {
        levels.push({ source: await createImageBitmap(image, { resizeWidth: width, resizeHeight: height, resizeQuality: 'medium' }), width });
      } catch {
        break;
      }
      if (this.levels[0]?.source !== image) return; // another image arrived meanwhile
    }
    this.levels = levels;
    this.invalidate('image');
  }
}

function drawPoint(context: CanvasRenderingContext2D, [x, y]: [number, number], colour: string, shape: 'disc' | 'ring', selected: boolean): void {
  const radius = selected ? 8 : 6;
  context.beginPath();
  context.arc(x, y, radius, 0, Math.PI * 2);
  if (shape === 'disc') {
    context.fillStyle = colour;
    context.fill();
    context.lineWidth = 2;
    context.strokeStyle = selected ? '#ffffff' : 'rgba(0,0,0,0.85)';
    context.stroke();
  } else {
    context.lineWidth = 5;
    context.strokeStyle = 'rgba(0,0,0,0.85)';
    context.stroke();
    context.lineWidth = 3;
    context.strokeStyle = colour;
    context.stroke();
    if (selected) {
      context.beginPath();
      context.arc(x, y, radius + 4, 0, Math.PI * 2);
      context.lineWidth = 2;
      context.strokeStyle = '#ffffff';
      context.stroke();
    }
  }
}

function drawArrow(context: CanvasRenderingContext2D, [x0, y0]: [number, number], [x1, y1]: [number, number], selected: boolean, colour: string = POINT_COLOURS.arrow): void {
  const length = Math.hypot(x1 - x0, y1 - y0);
  if (length < 12) return;
  const ux = (x1 - x0) / length;
  const uy = (y1 - y0) / length;
  // Stop short of the target ring; the head ends at its edge.
  const ex = x1 - ux * 9;
  const ey = y1 - uy * 9;
  const head = 10;
  const path = () => {
    context.beginPath();
    context.moveTo(x0 + ux * 7, y0 + uy * 7);
    context.lineTo(ex, ey);
    context.moveTo(ex - ux * head - uy * head * 0.5, ey - uy * head + ux * head * 0.5);
    context.lineTo(ex, ey);
    context.lineTo(ex - ux * head + uy * head * 0.5, ey - uy * head - ux * head * 0.5);
  };
  context.lineCap = 'round';
  context.lineJoin = 'round';
  path();
  context.lineWidth = selected ? 6 : 5;
  context.strokeStyle = 'rgba(0,0,0,0.7)';
  context.stroke();
  path();
  context.lineWidth = selected ? 3 : 2;
  context.strokeStyle = colour;
  context.stroke();
}

function drawLabel(context: CanvasRenderingContext2D, [x, y]: [number, number], text: string): void {
  context.font = 'bold 12px sans-serif';
  context.textBaseline = 'middle';
  context.lineWidth = 3;
  context.strokeStyle = 'rgba(0,0,0,0.9)';
  context.strokeText(text, x + 10, y - 10);
  context.fillStyle = '#ffffff';
  context.fillText(text, x + 10, y - 10);
}
