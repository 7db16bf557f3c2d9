// Which point of which pair is under the pointer. Pure arithmetic, no DOM.
import type { ImagePoint, PointPair } from '../shared/edit-spec';
import type { PointEnd } from '../shared/editor-model';

export interface PointRef {
  index: number;
  end: PointEnd;
}

/**
 * The point nearest to `at` within `radius` (image pixels), preferring later pairs (drawn on top) on ties, and
 * targets over handles (a target is placed after its handle, so it is drawn above it).
 */
export function hitTestPoints(points: readonly PointPair[], at: ImagePoint, radius: number): PointRef | undefined {
  let best: PointRef | undefined;
  let bestDistance = radius * radius;
  for (let index = points.length - 1; index >= 0; index--) {
    for (const end of ['target', 'handle'] as const) {
      const [x, y] = points[index]![end];
      const distance = (x - at[0]) ** 2 + (y - at[1]) ** 2;
      if (distance <= bestDistance && (!best || distance < bestDistance)) {
        best = { index, end };
        bestDistance = distance;
      }
    }
  }
  return best;
}
