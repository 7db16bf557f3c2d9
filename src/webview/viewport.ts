// Zoom and pan of the canvas: where the image sits in the view (CSS pixels). Image pixel (x, y) has its centre at
// view position (offsetX + (x + 0.5)·scale, offsetY + (y + 0.5)·scale). Pure arithmetic, no DOM.

export interface ViewTransform {
  scale: number;
  offsetX: number;
  offsetY: number;
}

export const MIN_SCALE = 1 / 64;
export const MAX_SCALE = 32;
/** Space kept around the image when fitting, in CSS pixels. */
const FIT_MARGIN = 16;

export class Viewport {
  scale = 1;
  offsetX = 0;
  offsetY = 0;
  viewWidth = 1;
  viewHeight = 1;
  imageWidth = 1;
  imageHeight = 1;
  /** True until the user zooms or pans: the view then keeps fitting the image when it is resized. */
  fitted = true;

  get transform(): ViewTransform {
    return { scale: this.scale, offsetX: this.offsetX, offsetY: this.offsetY };
  }

  setImage(width: number, height: number): void {
    const changed = width !== this.imageWidth || height !== this.imageHeight;
    this.imageWidth = width;
    this.imageHeight = height;
    if (changed || this.fitted) this.fit();
  }

  setView(width: number, height: number): void {
    const centre = this.toImage(this.viewWidth / 2, this.viewHeight / 2);
    this.viewWidth = Math.max(1, width);
    this.viewHeight = Math.max(1, height);
    if (this.fitted) this.fit();
    else this.centreOn(centre[0], centre[1]);
  }

  /** The whole image, centred, as large as fits (never above 100% for small images). */
  fit(): void {
    const available = (size: number) => Math.max(1, size - 2 * FIT_MARGIN);
    this.scale = clampScale(Math.min(available(this.viewWidth) / this.imageWidth, available(this.viewHeight) / this.imageHeight, 1));
    this.offsetX = (this.viewWidth - this.imageWidth * this.scale) / 2;
    this.offsetY = (this.viewHeight - this.imageHeight * this.scale) / 2;
    this.fitted = true;
  }

  /** 100%: one image pixel per CSS pixel, keeping the view's centre where it is. */
  actualSize(): void {
    this.zoomAt(1 / this.scale, this.viewWidth / 2, this.viewHeight / 2);
  }

  /** Multiplies the scale by `factor`, keeping the image point under view position (x, y) in place. */
  zoomAt(factor: number, x: number, y: number): void {
    const scale = clampScale(this.scale * factor);
    const [ix, iy] = this.toImage(x, y);
    this.scale = scale;
    this.offsetX = x - (ix + 0.5) * scale;
    this.offsetY = y - (iy + 0.5) * scale;
    this.fitted = false;
  }

  panBy(dx: number, dy: number): void {
    this.offsetX += dx;
    this.offsetY += dy;
    this.keepImageReachable();
    this.fitted = false;
  }

  centreOn(ix: number, iy: number): void {
    this.offsetX = this.viewWidth / 2 - (ix + 0.5) * this.scale;
    this.offsetY = this.viewHeight / 2 - (iy + 0.5) * this.scale;
  }

  /** View position → image pixel coordinates (continuous; pixel centres are integers). */
  toImage(x: number, y: number): [number, number] {
    return [(x - this.offsetX) / this.scale - 0.5, (y - this.offsetY) / this.scale - 0.5];
  }

  /** Image pixel coordinates → view position. */
  toView(ix: number, iy: number): [number, number] {
    return [this.offsetX + (ix + 0.5) * this.scale, this.offsetY + (iy + 0.5) * this.scale];
  }

  /** Image coordinates rounded to the nearest pixel centre inside the image. */
  toImagePixel(x: number, y: number): [number, number] {
    const [ix, iy] = this.toImage(x, y);
    return [clamp(Math.round(ix), 0, this.imageWidth - 1), clamp(Math.round(iy), 0, this.imageHeight - 1)];
  }

  /** Whether a view position lies over the image. */
  isOverImage(x: number, y: number): boolean {
    const [ix, iy] = this.toImage(x, y);
    return ix >= -0.5 && iy >= -0.5 && ix < this.imageWidth - 0.5 && iy < this.imageHeight - 0.5;
  }

  /** At least a corner of the image stays in view, so it cannot be panned out of reach. */
  private keepImageReachable(): void {
    const keep = 32;
    const width = this.imageWidth * this.scale;
    const height = this.imageHeight * this.scale;
    this.offsetX = clamp(this.offsetX, keep - width, this.viewWidth - keep);
    this.offsetY = clamp(this.offsetY, keep - height, this.viewHeight - keep);
  }
}

export function clampScale(scale: number): number {
  return clamp(scale, MIN_SCALE, MAX_SCALE);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
