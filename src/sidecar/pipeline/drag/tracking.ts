/**
 * Point tracking between UNet feature maps, at supervision resolution.
 * Points are [row, col]. F0 holds the features of the un-optimised latent
 * (looked up at the *initial* handle), F1 the current features.
 *
 * - `pointTracking`: DragDiffusion's nearest neighbour in a (2r_p+1)² window.
 * - `fastPointTracking`: CLIPDrag's variant that only accepts positions
 *   strictly closer to the target than the current handle.
 */

export type Point = readonly [row: number, col: number];

/** One feature map [C, H, W] (batch 1), row-major. */
export interface FeatureMap {
  readonly data: Float32Array;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
}

export function featureMap(data: Float32Array, channels: number, height: number, width: number): FeatureMap {
  if (data.length !== channels * height * width) {
    throw new RangeError(`feature map [${channels}, ${height}, ${width}] needs ${channels * height * width} values, got ${data.length}`);
  }
  return { data, channels, height, width };
}

function checkInputs(f0: FeatureMap, f1: FeatureMap, handles: readonly Point[], others: ReadonlyArray<readonly Point[]>): void {
  if (f0.channels !== f1.channels || f0.height !== f1.height || f0.width !== f1.width) {
    throw new RangeError(`F0 [${f0.channels}, ${f0.height}, ${f0.width}] and F1 [${f1.channels}, ${f1.height}, ${f1.width}] differ in shape`);
  }
  for (const list of others) {
    if (list.length !== handles.length) throw new RangeError(`got ${handles.length} handles but ${list.length} matching points`);
  }
}

/** The feature vector of F0 at int(p) (truncation toward zero, as Python's int()). */
function featureAt(f: FeatureMap, p: Point): Float64Array {
  const r = Math.trunc(p[0]);
  const c = Math.trunc(p[1]);
  if (r < 0 || r >= f.height || c < 0 || c >= f.width) {
    throw new RangeError(`initial handle [${p[0]}, ${p[1]}] lies outside the ${f.height}x${f.width} feature map`);
  }
  const v = new Float64Array(f.channels);
  const plane = f.height * f.width;
  for (let ch = 0; ch < f.channels; ch++) v[ch] = f.data[ch * plane + r * f.width + c]!;
  return v;
}

/** Rows [r1, r2) and cols [c1, c2) of a window on the map. */
export interface Window {
  readonly r1: number;
  readonly r2: number;
  readonly c1: number;
  readonly c2: number;
}

/** The search window around int(p), clipped to the map: rows [r1, r2), cols [c1, c2). */
export function trackingWindow(p: Point, radius: number, height: number, width: number): Window {
  const r = Math.trunc(p[0]);
  const c = Math.trunc(p[1]);
  return {
    r1: Math.max(0, r - radius),
    r2: Math.min(height, r + radius + 1),
    c1: Math.max(0, c - radius),
    c2: Math.min(width, c + radius + 1),
  };
}

/** Σ_ch |f0 − F1[:, r, c]| over the window, row-major [rows, cols]. */
function windowDistances(f0: Float64Array, f1: FeatureMap, w: { r1: number; r2: number; c1: number; c2: number }): Float64Array {
  const cols = w.c2 - w.c1;
  const dist = new Float64Array((w.r2 - w.r1) * cols);
  const plane = f1.height * f1.width;
  for (let ch = 0; ch < f1.channels; ch++) {
    const ref = f0[ch]!;
    for (let r = w.r1; r < w.r2; r++) {
      const rowBase = ch * plane + r * f1.width;
      for (let c = w.c1; c < w.c2; c++) dist[(r - w.r1) * cols + (c - w.c1)] += Math.abs(ref - f1.data[rowBase + c]!);
    }
  }
  return dist;
}

/** Row-major first minimum; an all-+inf window yields 0, like torch.argmin. */
function argmin(values: Float64Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! < values[best]!) best = i;
  return best;
}

/** DragDiffusion `point_tracking`: each handle moves to the best feature match in its window. */
export function pointTracking(f0: FeatureMap, f1: FeatureMap, handles: readonly Point[], handlesInit: readonly Point[], radius: number): Point[] {
  checkInputs(f0, f1, handles, [handlesInit]);
  return handles.map((p, i) => {
    const w = trackingWindow(p, radius, f1.height, f1.width);
    const dist = windowDistances(featureAt(f0, handlesInit[i]!), f1, w);
    const best = argmin(dist);
    const cols = w.c2 - w.c1;
    return [w.r1 + Math.floor(best / cols), w.c1 + (best % cols)] as const;
  });
}

/**
 * Fast point tracking's rule for the distances of one window, by window-local cell: +inf where the cell
 * is not strictly closer to the target than the handle; |p − t|² at the cell [r_p, r_p] when the handle
 * is within 1 pixel of its target (at a top/left border that cell is not the handle); null where the
 * feature distance stands. It depends on coordinates only, so the graph version takes it as an input.
 */
export function fastTrackingOverride(p: Point, t: Point, w: Window, radius: number): (row: number, col: number) => number | null {
  const threshold = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2;
  // The entry exists unless the whole map is smaller than r_p+1 (where the reference would fail).
  const pinned = threshold <= 1 && radius < w.r2 - w.r1 && radius < w.c2 - w.c1;
  return (row, col) => {
    if (pinned && row === radius && col === radius) return threshold;
    return (w.r1 + row - t[0]) ** 2 + (w.c1 + col - t[1]) ** 2 >= threshold ? Infinity : null;
  };
}

/**
 * CLIPDrag `fast_point_tracking`: candidates not strictly closer to the
 * target than the current handle are excluded; when the handle is within 1
 * pixel of its target the window-local entry [r_p, r_p] is set to that
 * squared distance. At a top/left border that entry is not the handle, and
 * the handle then jumps there, as in the reference.
 */
export function fastPointTracking(
  f0: FeatureMap,
  f1: FeatureMap,
  handles: readonly Point[],
  handlesInit: readonly Point[],
  targets: readonly Point[],
  radius: number,
): Point[] {
  checkInputs(f0, f1, handles, [handlesInit, targets]);
  return handles.map((p, i) => {
    const t = targets[i]!;
    const w = trackingWindow(p, radius, f1.height, f1.width);
    const dist = windowDistances(featureAt(f0, handlesInit[i]!), f1, w);
    const cols = w.c2 - w.c1;
    const rows = w.r2 - w.r1;
    const override = fastTrackingOverride(p, t, w, radius);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const value = override(r, c);
        if (value !== null) dist[r * cols + c] = value;
      }
    }
    const best = argmin(dist);
    return [w.r1 + Math.floor(best / cols), w.c1 + (best % cols)] as const;
  });
}

/** The loop's stop test: every handle within 2 supervision pixels (strictly) of its target. */
export function allHandlesReached(handles: readonly Point[], targets: readonly Point[], distance = 2): boolean {
  return handles.every((p, i) => Math.hypot(p[0] - targets[i]![0], p[1] - targets[i]![1]) < distance);
}
