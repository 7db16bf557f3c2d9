// The mask as the page holds it: a 0/1 bitmap at the image's resolution (the same rasteriser the extension saves
// with, so what is shown is what is written) and a tinted copy on an offscreen canvas that the renderer scales into
// view. Strokes update the bitmap at once and the tinted copy only where they touched, once per frame (`flush`). Keeps step with the document's mask revision: a stroke this
// page painted is already drawn when the extension confirms it; anything it cannot follow makes it ask for the layer.
import { decodeMaskRle, encodeMaskRle, type MaskBitmap, type RleMask } from '../shared/edit-spec';
import { rasterizeStroke, rasterizeStrokes, unionRect, type MaskStroke, type PixelRect } from '../shared/mask-raster';
import type { MaskBaseView, MaskUpdate } from '../shared/webview-messages';

/** Amber at 45%: visible on photos, distinct from the red handles and blue targets. */
const MASK_RGBA = [255, 176, 0, 115] as const;
/** Rows converted per ImageData block, so a full repaint never allocates an image-sized buffer. */
const BAND_ROWS = 256;

export interface MaskLayerEvents {
  /** These pixels of the tinted canvas changed (undefined: all of them). */
  changed(rect: PixelRect | undefined): void;
  /** The page cannot follow an update: ask the extension for the whole layer. */
  needResync(): void;
  /** A PNG mask file was decoded (the extension needs its pixels to save strokes over it). */
  fileDecoded(path: string, mask: RleMask): void;
  problem(message: string): void;
}

export class MaskLayer {
  readonly canvas: HTMLCanvasElement = document.createElement('canvas');
  private readonly context: CanvasRenderingContext2D;
  private bitmap: MaskBitmap | undefined;
  private revision = -1;
  private lastReset: Extract<MaskUpdate, { kind: 'reset' }> | undefined;
  /** Strokes painted here and sent, not yet confirmed: id → stroke. */
  private readonly pending = new Map<string, MaskStroke>();
  private fileCache: { src: string; bitmap: MaskBitmap } | undefined;
  private rebuildNumber = 0;
  /** Bitmap pixels not yet copied into the tinted canvas. */
  private untinted: PixelRect | undefined;
  /** Strokes (and a loaded base) in the layer: whether anything is painted, for the status line. */
  strokeCount = 0;

  constructor(private readonly events: MaskLayerEvents) {
    this.canvas.width = 1;
    this.canvas.height = 1;
    this.context = this.canvas.getContext('2d', { willReadFrequently: false })!;
  }

  get width(): number {
    return this.bitmap?.width ?? 0;
  }

  get height(): number {
    return this.bitmap?.height ?? 0;
  }

  get currentRevision(): number {
    return this.revision;
  }

  /** The image's size is known (or changed): start over from the last reset. */
  setSize(width: number, height: number): void {
    if (this.bitmap && this.bitmap.width === width && this.bitmap.height === height) return;
    this.bitmap = { width, height, data: new Uint8Array(width * height) };
    this.canvas.width = width;
    this.canvas.height = height;
    this.untinted = undefined;
    this.pending.clear();
    if (this.lastReset) void this.rebuild(this.lastReset);
  }

  apply(update: MaskUpdate): void {
    if (update.kind === 'reset') {
      this.lastReset = update;
      this.pending.clear();
      if (this.bitmap) void this.rebuild(update);
      else this.revision = update.revision;
      return;
    }
    const mine = update.strokeId !== undefined && this.pending.has(update.strokeId);
    if (mine && this.revision === update.fromRevision) {
      // Already drawn when it was painted.
      this.pending.delete(update.strokeId!);
      this.revision = update.revision;
      this.strokeCount++;
      return;
    }
    if (!mine && this.pending.size === 0 && this.revision === update.fromRevision && this.bitmap) {
      this.revision = update.revision;
      this.strokeCount++;
      this.events.changed(this.draw(update.stroke));
      return;
    }
    this.events.needResync();
  }

  /** Paints part of a stroke now (while the pointer moves); returns the pixels it changed. */
  paint(stroke: MaskStroke): PixelRect | undefined {
    if (!this.bitmap) return undefined;
    const rect = this.draw(stroke);
    this.events.changed(rect);
    return rect;
  }

  /** A stroke painted here was sent to the extension under this id. */
  markPending(id: string, stroke: MaskStroke): void {
    this.pending.set(id, stroke);
  }

  /** Forgets unconfirmed strokes (the extension rejected one): the next reset repaints from the document. */
  dropPending(): void {
    if (this.pending.size > 0) {
      this.pending.clear();
      this.events.needResync();
    }
  }

  /** The 0/1 value of an image pixel (for tests and the status line). */
  valueAt(x: number, y: number): number {
    return this.bitmap ? this.bitmap.data[y * this.bitmap.width + x]! : 0;
  }

  editablePixelCount(): number {
    if (!this.bitmap) return 0;
    let count = 0;
    for (const value of this.bitmap.data) count += value;
    return count;
  }

  /** Brings the tinted canvas up to date with the bitmap (the renderer calls this before drawing the mask). */
  flush(): void {
    const rect = this.untinted;
    this.untinted = undefined;
    if (rect && this.bitmap) this.tint(rect);
  }

  private draw(stroke: MaskStroke): PixelRect | undefined {
    const rect = rasterizeStroke(this.bitmap!, stroke);
    this.untinted = unionRect(this.untinted, rect);
    return rect;
  }

  private async rebuild(reset: Extract<MaskUpdate, { kind: 'reset' }>): Promise<void> {
    const bitmap = this.bitmap!;
    const number = ++this.rebuildNumber;
    let base: MaskBitmap | undefined;
    try {
      base = await this.baseBitmap(reset.base);
    } catch (error) {
      this.events.problem(error instanceof Error ? error.message : String(error));
    }
    // A newer reset or size change arrived while a mask file was being decoded.
    if (number !== this.rebuildNumber || bitmap !== this.bitmap) return;
    if (base && (base.width !== bitmap.width || base.height !== bitmap.height)) {
      this.events.problem(`The mask is ${base.width} × ${base.height} pixels, but the image is ${bitmap.width} × ${bitmap.height}; it is not shown. Clear the mask and paint it again.`);
      base = undefined;
    }
    if (base) bitmap.data.set(base.data);
    else bitmap.data.fill(0);
    rasterizeStrokes(bitmap, reset.strokes);
    this.revision = reset.revision;
    this.strokeCount = reset.strokes.length + (reset.base.kind === 'none' ? 0 : 1);
    this.untinted = { x: 0, y: 0, width: bitmap.width, height: bitmap.height };
    this.events.changed(undefined);
  }

  private async baseBitmap(base: MaskBaseView): Promise<MaskBitmap | undefined> {
    if (base.kind === 'none') return undefined;
    if (base.kind === 'rle') return decodeMaskRle(base.mask);
    if (this.fileCache?.src === base.src) return this.fileCache.bitmap;
    const bitmap = await decodeMaskFile(base.src, base.path);
    this.fileCache = { src: base.src, bitmap };
    this.events.fileDecoded(base.path, encodeMaskRle(bitmap));
    return bitmap;
  }

  /** Copies the bitmap's rectangle into the tinted canvas. */
  private tint(rect: PixelRect): void {
    const bitmap = this.bitmap!;
    const on = (MASK_RGBA[3] << 24) | (MASK_RGBA[2] << 16) | (MASK_RGBA[1] << 8) | MASK_RGBA[0];
    for (let y0 = rect.y; y0 < rect.y + rect.height; y0 += BAND_ROWS) {
      const rows = Math.min(BAND_ROWS, rect.y + rect.height - y0);
      const block = this.context.createImageData(rect.width, rows);
      const pixels = new Uint32Array(block.data.buffer);
      for (let row = 0; row < rows; row++) {
        const source = (y0 + row) * bitmap.width + rect.x;
        const target = row * rect.width;
        for (let x = 0; x < rect.width; x++) if (bitmap.data[source + x]) pixels[target + x] = on >>> 0;
      }
      this.context.putImageData(block, rect.x, y0);
    }
  }
}

/** Reads a PNG mask the way the engine does: a pixel is editable when it is not transparent and not black. */
async function decodeMaskFile(src: string, path: string): Promise<MaskBitmap> {
  const image = new Image();
  image.src = src;
  try {
    await image.decode();
  } catch {
    throw new Error(`The mask file ${path} named by the edit spec could not be loaded; the mask is not shown. Clear the mask and paint it again, or fix the file.`);
  }
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(image, 0, 0);
  const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const data = new Uint8Array(canvas.width * canvas.height);
  for (let i = 0, p = 0; i < data.length; i++, p += 4) data[i] = rgba[p + 3] !== 0 && (rgba[p]! | rgba[p + 1]! | rgba[p + 2]!) !== 0 ? 1 : 0;
  return { width: canvas.width, height: canvas.height, data };
}
