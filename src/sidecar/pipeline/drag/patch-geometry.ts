/**
 * Coordinate arithmetic of the drag losses, done in float32 the way the reference's tensors do it, so
 * that floors, clipped windows and patch shapes come out exactly as in the reference. Everything here
 * depends on point coordinates only; the drag graphs receive its results as small inputs.
 *
 * Points are [row, col] at supervision resolution, as in `tracking.ts`.
 */
import { trackingWindow, type Point, type Window } from './tracking';

const f32 = Math.fround;

export type DragVariant = 'clipdrag' | 'dragdiffusion';

/**
 * How `interpolate_feature_patch` samples one axis: output position i blends cells `start + i` and
 * `start + i + 1` with `weight0` and `weight1`, for i < `count`.
 */
export interface AxisSpan {
  /** floor of the start coordinate; negative only where the reference itself fails (see below). */
  readonly start: number;
  /** Output positions along this axis (the patch's height or width). */
  readonly count: number;
  /** (start + 1) − lo, in float32. */
  readonly weight0: number;
  /** lo − start, in float32. */
  readonly weight1: number;
}

/**
 * `interpolate_feature_patch` along one axis from `lo` to `hi` (already float32 values) on an axis of
 * `size` cells: `span = floor(hi) − floor(lo)` cells and the fraction of `lo` only, as the reference.
 *
 * Past the bottom/right edge the reference's slices come out short: the first tap keeps
 * `size − start` cells and the second one fewer, which broadcasts when that is one cell. That equals
 * reading the last cell again for the second tap, so samplers clamp their indices to the axis and the
 * patch is `min(span, size − start)` long. Where the reference fails (a start below 0, or shorter taps
 * that do not broadcast) the same clamping gives an edge-replicating patch of at least one cell.
 */
export function interpolationSpan(lo: number, hi: number, size: number): AxisSpan {
  const start = Math.floor(lo);
  const span = Math.floor(hi) - start;
  const count = Math.max(1, start < 0 ? span : Math.min(span, size - start));
  return { start, count, weight0: f32(start + 1 - lo), weight1: f32(lo - start) };
}

/** The step of one pair's motion supervision: `delta` = (t − p)/|t − p| · (min(4, |t − p|) or 1). */
export interface MotionStep {
  /** False when |t − p| < 2: the reference skips the pair. */
  readonly active: boolean;
  readonly delta: readonly [number, number];
}

/** CLIPDrag steps up to 4 pixels along the direction to the target; DragDiffusion one pixel. */
export function motionStep(p: Point, t: Point, variant: DragVariant): MotionStep {
  const dr = f32(t[0] - p[0]);
  const dc = f32(t[1] - p[1]);
  // torch reduces the norm of a float32 vector in double precision and rounds the result once.
  const norm = f32(Math.sqrt(dr * dr + dc * dc));
  if (!(norm >= 2)) return { active: false, delta: [0, 0] };
  const unit = [f32(dr / norm), f32(dc / norm)] as const;
  if (variant === 'dragdiffusion') return { active: true, delta: unit };
  const length = norm < 4 ? norm : 4;
  return { active: true, delta: [f32(unit[0] * length), f32(unit[1] * length)] };
}

/** Where one pair's motion-supervision patch samples the current features. */
export interface MotionPatch {
  readonly active: boolean;
  /** The window around int(p), clipped to the map: the un-shifted patch (DragDiffusion's f0). */
  readonly window: Window;
  /** The shifted, bilinearly sampled patch (f1). */
  readonly rows: AxisSpan;
  readonly cols: AxisSpan;
}

/**
 * The f1 patch of a pair whose current handle is `p`: the clipped window around int(p) shifted by the
 * motion step, sampled with `interpolate_feature_patch(F1, r1+d.row, r2+d.row, c1+d.col, c2+d.col)`.
 */
export function motionPatch(p: Point, t: Point, radius: number, height: number, width: number, variant: DragVariant): MotionPatch {
  const step = motionStep(p, t, variant);
  const window = trackingWindow(p, radius, height, width);
  const [dr, dc] = step.delta;
  return {
    active: step.active,
    window,
    rows: interpolationSpan(f32(window.r1 + dr), f32(window.r2 + dr), height),
    cols: interpolationSpan(f32(window.c1 + dc), f32(window.c2 + dc), width),
  };
}

export function windowRows(w: Window): number {
  return w.r2 - w.r1;
}

export function windowCols(w: Window): number {
  return w.c2 - w.c1;
}
