import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ImagePoint } from '../../../src/shared/edit-spec';
import { capsuleBounds, rasterizeStroke, rasterizeStrokes, unionRect, type MaskStroke } from '../../../src/shared/mask-raster';
import type { MaskBitmap } from '../../../src/shared/mask-rle';

function blank(width: number, height: number): MaskBitmap {
  return { width, height, data: new Uint8Array(width * height) };
}

/** Distance from (px, py) to the segment a–b: the definition the rasteriser must follow. */
function segmentDistance(px: number, py: number, a: ImagePoint, b: ImagePoint): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const lengthSquared = dx * dx + dy * dy;
  const t = lengthSquared === 0 ? 0 : Math.min(1, Math.max(0, ((px - a[0]) * dx + (py - a[1]) * dy) / lengthSquared));
  return Math.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy));
}

function polylineDistance(px: number, py: number, points: ImagePoint[]): number {
  if (points.length === 1) return segmentDistance(px, py, points[0]!, points[0]!);
  let best = Infinity;
  for (let i = 1; i < points.length; i++) best = Math.min(best, segmentDistance(px, py, points[i - 1]!, points[i]!));
  return best;
}

function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

describe('mask strokes', () => {
  it('paints exactly the pixels whose centres lie within the radius of the path (random strokes vs the definition)', () => {
    const next = random(7);
    const width = 61;
    const height = 47;
    for (let trial = 0; trial < 60; trial++) {
      const count = 1 + Math.floor(next() * 5);
      const points: ImagePoint[] = Array.from({ length: count }, () => [next() * 80 - 10, next() * 66 - 10] as ImagePoint);
      const radius = 0.3 + next() * 12;
      const mask = blank(width, height);
      rasterizeStroke(mask, { mode: 'paint', radius, points });
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const distance = polylineDistance(x, y, points);
          // Pixels within rounding noise of the outline may go either way.
          if (Math.abs(distance - radius) < 1e-9) continue;
          assert.equal(mask.data[y * width + x], distance <= radius ? 1 : 0, `trial ${trial}: pixel (${x}, ${y}) at distance ${distance} from a radius-${radius} stroke through ${JSON.stringify(points)}`);
        }
      }
    }
  });

  it('erases what was painted, and later strokes win', () => {
    const mask = blank(20, 10);
    const paint: MaskStroke = { mode: 'paint', radius: 3, points: [[2, 5], [17, 5]] };
    const erase: MaskStroke = { mode: 'erase', radius: 2, points: [[10, 5]] };
    rasterizeStrokes(mask, [paint, erase]);
    assert.equal(mask.data[5 * 20 + 10], 0, 'erased centre');
    assert.equal(mask.data[5 * 20 + 4], 1, 'painted, outside the eraser');
    rasterizeStroke(mask, paint);
    assert.equal(mask.data[5 * 20 + 10], 1, 'painted over again');
  });

  it('reports the rectangle it may have changed, clipped to the image', () => {
    const mask = blank(100, 100);
    assert.deepEqual(rasterizeStroke(mask, { mode: 'paint', radius: 5, points: [[10, 20]] }), { x: 5, y: 15, width: 11, height: 11 });
    assert.deepEqual(rasterizeStroke(mask, { mode: 'paint', radius: 5, points: [[-2, 50], [3, 50]] }), { x: 0, y: 45, width: 9, height: 11 });
    assert.equal(rasterizeStroke(mask, { mode: 'paint', radius: 5, points: [[-50, -50]] }), undefined, 'entirely outside');
    assert.equal(rasterizeStroke(mask, { mode: 'paint', radius: 5, points: [] }), undefined, 'no points');
    // Every changed pixel lies inside the reported rectangle.
    const stroke: MaskStroke = { mode: 'paint', radius: 7.5, points: [[30, 30], [60, 42], [55, 80]] };
    const fresh = blank(100, 100);
    const rect = rasterizeStroke(fresh, stroke)!;
    for (let y = 0; y < 100; y++) {
      for (let x = 0; x < 100; x++) {
        if (fresh.data[y * 100 + x]) assert.ok(x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height, `(${x}, ${y}) outside ${JSON.stringify(rect)}`);
      }
    }
  });

  it('computes bounds and unions of rectangles', () => {
    assert.deepEqual(capsuleBounds([10, 10], [20, 15], 2, 100, 100), { x: 8, y: 8, width: 15, height: 10 });
    assert.equal(capsuleBounds([200, 200], [210, 210], 2, 100, 100), undefined);
    assert.deepEqual(unionRect({ x: 0, y: 0, width: 2, height: 2 }, { x: 5, y: 1, width: 1, height: 4 }), { x: 0, y: 0, width: 6, height: 5 });
    assert.deepEqual(unionRect(undefined, { x: 1, y: 1, width: 1, height: 1 }), { x: 1, y: 1, width: 1, height: 1 });
  });

  it('paints a long stroke on a 4000 × 3000 mask: every point covered, nothing beyond the radius', () => {
    const mask = blank(4000, 3000);
    const points: ImagePoint[] = Array.from({ length: 200 }, (_, i) => [200 + i * 17, 1500 + Math.sin(i / 10) * 800] as ImagePoint);
    rasterizeStroke(mask, { mode: 'paint', radius: 60, points });
    for (const [x, y] of points) assert.equal(mask.data[Math.round(y) * 4000 + Math.round(x)], 1, `stroke point (${x}, ${y})`);
    assert.equal(mask.data[1500 * 4000 + 200], 1);
    // Left of the first point by more than the radius, and far below the stroke's lowest point.
    assert.equal(mask.data[1500 * 4000 + 130], 0);
    assert.equal(mask.data[2900 * 4000 + 2000], 0);
  });
});
