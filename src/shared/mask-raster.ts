// Brush strokes on a mask bitmap. A stroke is a polyline swept by a disk: `paint` makes the covered pixels editable
// (1), `erase` makes them kept (0). Pixel (x, y) has its centre at (x, y) — the convention of spec points — and is
// covered when that centre lies within `radius` of the polyline. Each segment is a capsule (a convex shape), so its
// intersection with a pixel row is one interval computed in closed form: a stroke costs O(rows it touches) plus the
// bytes it fills, which keeps strokes cheap on a 4000 × 3000 image. Shared by the editor (webview display, extension
// save); no Node- or DOM-only code.
import type { ImagePoint } from './edit-spec';
import type { MaskBitmap } from './mask-rle';

export const MASK_STROKE_MODES = ['paint', 'erase'] as const;
export type MaskStrokeMode = (typeof MASK_STROKE_MODES)[number];

export interface MaskStroke {
  mode: MaskStrokeMode;
  /** Brush radius in image pixels (> 0). */
  radius: number;
  /** The brush centre's path in image pixels; one point is a dab. */
  points: ImagePoint[];
}

/** An axis-aligned block of pixels (integer position and size). */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Applies one stroke to the bitmap in place and returns the pixels it may have changed (undefined: none). */
export function rasterizeStroke(mask: MaskBitmap, stroke: MaskStroke): PixelRect | undefined {
  const { points, radius } = stroke;
  if (points.length === 0 || !(radius > 0)) return undefined;
  const value = stroke.mode === 'paint' ? 1 : 0;
  let dirty: PixelRect | undefined;
  if (points.length === 1) return fillCapsule(mask, points[0]!, points[0]!, radius, value);
  for (let i = 1; i < points.length; i++) {
    dirty = unionRect(dirty, fillCapsule(mask, points[i - 1]!, points[i]!, radius, value));
  }
  return dirty;
}

/** Applies the strokes in order; returns the union of what they changed. */
export function rasterizeStrokes(mask: MaskBitmap, strokes: readonly MaskStroke[]): PixelRect | undefined {
  let dirty: PixelRect | undefined;
  for (const stroke of strokes) dirty = unionRect(dirty, rasterizeStroke(mask, stroke));
  return dirty;
}

/** The pixels a segment from `a` to `b` with this radius can touch, clipped to the image (undefined: none). */
export function capsuleBounds(a: ImagePoint, b: ImagePoint, radius: number, width: number, height: number): PixelRect | undefined {
  const x0 = Math.max(0, Math.ceil(Math.min(a[0], b[0]) - radius));
  const x1 = Math.min(width - 1, Math.floor(Math.max(a[0], b[0]) + radius));
  const y0 = Math.max(0, Math.ceil(Math.min(a[1], b[1]) - radius));
  const y1 = Math.min(height - 1, Math.floor(Math.max(a[1], b[1]) + radius));
  if (x1 < x0 || y1 < y0) return undefined;
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

export function unionRect(a: PixelRect | undefined, b: PixelRect | undefined): PixelRect | undefined {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

function fillCapsule(mask: MaskBitmap, a: ImagePoint, b: ImagePoint, radius: number, value: number): PixelRect | undefined {
  const bounds = capsuleBounds(a, b, radius, mask.width, mask.height);
  if (!bounds) return undefined;
  const [ax, ay] = a;
  const dx = b[0] - ax;
  const dy = b[1] - ay;
  const lengthSquared = dx * dx + dy * dy;
  const length = Math.sqrt(lengthSquared);
  const radiusSquared = radius * radius;
  const { data, width } = mask;
  let touched = false;
  for (let y = bounds.y; y < bounds.y + bounds.height; y++) {
    let lo = Infinity;
    let hi = -Infinity;
    // The two end disks.
    for (const [cx, cy] of [a, b]) {
      const rest = radiusSquared - (y - cy) * (y - cy);
      if (rest < 0) continue;
      const half = Math.sqrt(rest);
      lo = Math.min(lo, cx - half);
      hi = Math.max(hi, cx + half);
    }
    // The band between them: 0 ≤ projection ≤ 1 and distance to the line ≤ radius, both linear in x.
    if (lengthSquared > 0) {
      const ry = y - ay;
      let bandLo = -Infinity;
      let bandHi = Infinity;
      // (x − ax)·dx + ry·dy ∈ [0, |d|²]
      if (dx !== 0) {
        const p = ax - (ry * dy) / dx;
        const q = ax + (lengthSquared - ry * dy) / dx;
        bandLo = Math.min(p, q);
        bandHi = Math.max(p, q);
      } else if (ry * dy < 0 || ry * dy > lengthSquared) {
        bandHi = -Infinity;
      }
      // |(x − ax)·dy − ry·dx| ≤ radius·|d|
      if (dy !== 0) {
        const p = ax + (ry * dx - radius * length) / dy;
        const q = ax + (ry * dx + radius * length) / dy;
        bandLo = Math.max(bandLo, Math.min(p, q));
        bandHi = Math.min(bandHi, Math.max(p, q));
      } else if (Math.abs(ry * dx) > radius * length) {
        bandHi = -Infinity;
      }
      if (bandLo <= bandHi) {
        lo = Math.min(lo, bandLo);
        hi = Math.max(hi, bandHi);
      }
    }
    const start = Math.max(bounds.x, Math.ceil(lo));
    const end = Math.min(bounds.x + bounds.width - 1, Math.floor(hi));
    if (start > end) continue;
    data.fill(value, y * width + start, y * width + end + 1);
    touched = true;
  }
  return touched ? bounds : undefined;
}
