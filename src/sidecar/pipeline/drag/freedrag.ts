/**
 * FreeDrag's rules outside the graph (its diffusion code, `utils/freedrag_utils.py`): there is no point
 * tracking. Each pair keeps a template — the (2r+1)² features around a position that walks from the handle
 * to the target — and the latent is optimised so the features at that position match the template.
 * Between stages of at most five Adam steps, JS decides where the template goes next:
 *
 * - a line search along handle → target (`nextTemplatePosition`): ten candidates up to d_max away, the one
 *   whose feature distance to the template is closest to l_expected; or stay when the last stage did not
 *   settle; or roll back one stride and search twice as far for the closest match (backtracking);
 * - arrival (`updateSigns`): within 2 supervision pixels of the target with a settled loss;
 * - the adaptive template (`templateWeight`, `blendTemplate`): the features found at the new position are
 *   blended into the template with a weight that falls as the stage's final loss grows.
 *
 * Features are read bilinearly from the supervision-size map as `get_features_plus` does; the map is the
 * UNet feature upsampled (align_corners=False), evaluated cell by cell, never materialised.
 */
import { resamplingMatrix } from './patch-sampler';
import type { Point } from './tracking';

const f32 = Math.fround;

/** FreeDrag's fixed constants (freedrag_update). */
export const FREEDRAG_CONSTANTS = {
  /** A pair has arrived within this distance (threshold_d). */
  arrivalDistance: 2,
  /** Candidates of one line search (interval_number). */
  candidates: 10,
  /** Adam steps of one stage at most. */
  stageSteps: 5,
} as const;

/** (row, col) offsets of the template window in FreeDrag's order (get_position_for_feature): row-major. */
export function windowOffsets(radius: number): Point[] {
  const offsets: Point[] = [];
  for (let i = -radius; i <= radius; i++) for (let j = -radius; j <= radius; j++) offsets.push([i, j]);
  return offsets;
}

/** A feature map seen at the supervision size (Hs, Ws), from the UNet feature [C, h, w] at latent size. */
export class SupervisionFeatures {
  private readonly rows: { i0: number; w0: number; i1: number; w1: number }[];
  private readonly cols: { i0: number; w0: number; i1: number; w1: number }[];

  constructor(
    private readonly data: Float32Array,
    readonly channels: number,
    private readonly latent: readonly [number, number],
    readonly size: readonly [number, number],
  ) {
    if (data.length !== channels * latent[0] * latent[1]) throw new RangeError(`feature of ${data.length} values is not ${channels}×${latent[0]}×${latent[1]}`);
    this.rows = taps(latent[0], size[0]);
    this.cols = taps(latent[1], size[1]);
  }

  /** The upsampled map's value at an integer cell (clamped into the grid). */
  cell(channel: number, row: number, col: number): number {
    const r = this.rows[clampIndex(row, this.size[0])]!;
    const c = this.cols[clampIndex(col, this.size[1])]!;
    const w = this.latent[1];
    const base = channel * this.latent[0] * w;
    const d = this.data;
    const top = c.w0 * d[base + r.i0 * w + c.i0]! + c.w1 * d[base + r.i0 * w + c.i1]!;
    const bottom = c.w0 * d[base + r.i1 * w + c.i0]! + c.w1 * d[base + r.i1 * w + c.i1]!;
    return r.w0 * top + r.w1 * bottom;
  }
}

function taps(input: number, output: number): { i0: number; w0: number; i1: number; w1: number }[] {
  const m = resamplingMatrix(input, output);
  return Array.from({ length: output }, (_, d) => {
    const row = m.slice(d * input, (d + 1) * input);
    const nonzero = row.flatMap((v, i) => (v !== 0 ? [i] : []));
    const i0 = nonzero[0] ?? 0;
    const i1 = nonzero[1] ?? i0;
    return { i0, w0: row[i0]!, i1, w1: i1 === i0 ? 0 : row[i1]! };
  });
}

function clampIndex(i: number, size: number): number {
  return Math.min(Math.max(i, 0), size - 1);
}

/**
 * `get_features_plus`: bilinear features at [row, col] positions, [N, C] row-major. Positions outside the grid
 * read its edge cells (the reference indexes out of range there).
 */
export function featuresAt(map: SupervisionFeatures, positions: readonly Point[]): Float32Array {
  const C = map.channels;
  const out = new Float32Array(positions.length * C);
  positions.forEach(([y, x], n) => {
    const y0 = Math.floor(y);
    const x0 = Math.floor(x);
    const fy = f32(y - y0);
    const fx = f32(x - x0);
    const wa = f32(f32(1 - fx) * f32(1 - fy));
    const wb = f32(f32(1 - fx) * fy);
    const wc = f32(fx * f32(1 - fy));
    const wd = f32(fx * fy);
    for (let c = 0; c < C; c++) {
      out[n * C + c] =
        wa * map.cell(c, y0, x0) + wb * map.cell(c, y0 + 1, x0) + wc * map.cell(c, y0, x0 + 1) + wd * map.cell(c, y0 + 1, x0 + 1);
    }
  });
  return out;
}

/** The template window's positions around a centre. */
export function windowAround(center: Point, offsets: readonly Point[]): Point[] {
  return offsets.map(([i, j]) => [f32(center[0] + i), f32(center[1] + j)] as const);
}

/** Mean absolute difference (torch's L1Loss). */
export function meanAbsDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`L1 of ${a.length} and ${b.length} values`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return f32(sum / a.length);
}

export interface LineSearch {
  /** l_expected: the feature distance a good next position has to the template. */
  readonly expectedLoss: number;
  /** d_max: the largest move of one stage, supervision pixels. */
  readonly maxDistance: number;
  /** 0.5·l_expected: a stage whose final loss is below it has settled. */
  readonly thresholdLoss: number;
  /** The losses at the start and end of the last stage. */
  readonly lossInitial: number;
  readonly lossEnd: number;
}

const distance = (a: Point, b: Point) => f32(Math.sqrt(f32(f32(f32(a[0] - b[0]) ** 2) + f32(f32(a[1] - b[1]) ** 2))));

/** Where a pair's template goes next (`get_each_point`): search, hold, or roll back and search twice as far. */
export function nextTemplatePosition(current: Point, target: Point, map: SupervisionFeatures, template: Float32Array, offsets: readonly Point[], search: LineSearch): Point {
  if (search.lossEnd < search.thresholdLoss) return bestCandidate(current, target, map, template, offsets, search.maxDistance, search.expectedLoss);
  if (search.lossEnd < search.lossInitial) return current;
  const stride = Math.min(f32(search.maxDistance / f32(distance(current, target) + 1e-8)), 1);
  const back: Point = [f32(current[0] - f32(stride * f32(target[0] - current[0]))), f32(current[1] - f32(stride * f32(target[1] - current[1])))];
  return bestCandidate(back, target, map, template, offsets, 2 * search.maxDistance, 0);
}

/** The candidate on current → target (up to `reach` away) whose template distance is closest to `expected`. */
function bestCandidate(current: Point, target: Point, map: SupervisionFeatures, template: Float32Array, offsets: readonly Point[], reach: number, expected: number): Point {
  const stride = Math.min(f32(reach / f32(distance(current, target) + 1e-8)), 1);
  const far: Point = [f32(current[0] + f32(stride * f32(target[0] - current[0]))), f32(current[1] + f32(stride * f32(target[1] - current[1])))];
  let best: Point = current;
  let bestScore = Infinity;
  for (let k = 1; k <= FREEDRAG_CONSTANTS.candidates; k++) {
    const t = f32(k / FREEDRAG_CONSTANTS.candidates);
    const candidate: Point = [f32(f32(f32(1 - t) * current[0]) + f32(t * far[0])), f32(f32(f32(1 - t) * current[1]) + f32(t * far[1]))];
    const score = Math.abs(meanAbsDifference(featuresAt(map, windowAround(candidate, offsets)), template) - expected);
    // argmin: the first of equal scores.
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}

/** `update_signs`: 1 where a pair is within the arrival distance of its target and its stage settled. */
export function updateSigns(current: readonly Point[], targets: readonly Point[], lossEnd: readonly number[], thresholdLoss: number): number[] {
  return current.map((p, k) => (distance(p, targets[k]!) < FREEDRAG_CONSTANTS.arrivalDistance && !(lossEnd[k]! > thresholdLoss) ? 1 : 0));
}

/** `get_xishu`: the adaptive template's blend weight 1/(1 + exp(a·(loss − b))), a = ln 9/(0.6·l_expected), b = 0.2·l_expected. */
export function templateWeight(lossEnd: number, expectedLoss: number): number {
  const a = f32(f32(Math.log(9)) / f32(0.6 * expectedLoss));
  const b = f32(0.2 * expectedLoss);
  return f32(1 / (1 + Math.exp(f32(a * f32(lossEnd - b)))));
}

/** weight·features + (1 − weight)·template. */
export function blendTemplate(template: Float32Array, features: Float32Array, weight: number): Float32Array {
  const out = new Float32Array(template.length);
  const rest = f32(1 - weight);
  for (let i = 0; i < out.length; i++) out[i] = f32(f32(weight * features[i]!) + f32(rest * template[i]!));
  return out;
}
