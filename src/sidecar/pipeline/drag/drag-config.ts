/**
 * The static shape of an edit's drag graphs (pairs, channels, radii, supervision grid) and the names,
 * shapes and dtypes of their small per-iteration inputs. The JS side (`drag-plan.ts`) fills exactly
 * these inputs; the graph side (`drag-graph.ts`) declares them.
 */
import type { DType } from '../../engine/dtype';
import type { DragVariant } from './patch-geometry';

export interface DragGraphConfig {
  readonly variant: DragVariant;
  /** Handle/target pairs (N). */
  readonly pairs: number;
  /** Feature channels (C). */
  readonly channels: number;
  /** Motion-supervision radius r_m. */
  readonly motionRadius: number;
  /** Point-tracking radius r_p. */
  readonly trackingRadius: number;
  /** Supervision grid (Hs, Ws) = (int(H/2), int(W/2)): where points and windows live. */
  readonly supervision: readonly [number, number];
}

export function checkConfig(config: DragGraphConfig): void {
  const { pairs, channels, motionRadius, trackingRadius, supervision } = config;
  const positive = (v: number) => Number.isInteger(v) && v > 0;
  if (!positive(pairs)) throw new RangeError(`drag graph: pairs must be a positive integer, got ${pairs}`);
  if (!positive(channels)) throw new RangeError(`drag graph: channels must be a positive integer, got ${channels}`);
  if (!Number.isInteger(motionRadius) || motionRadius < 0) throw new RangeError(`drag graph: r_m must be an integer >= 0, got ${motionRadius}`);
  if (!positive(trackingRadius)) throw new RangeError(`drag graph: r_p must be a positive integer, got ${trackingRadius}`);
  if (!supervision.every(positive)) throw new RangeError(`drag graph: supervision size must be positive integers, got [${supervision.join(', ')}]`);
}

/** Side of the reference's (clipped) patch grid: 2·r_m + 1. */
export function patchSide(config: DragGraphConfig): number {
  return 2 * config.motionRadius + 1;
}

/**
 * Side of the padded grid an f1 patch is sampled on: one more than the patch, because in float32
 * `floor(r2 + d) − floor(r1 + d)` can exceed r2 − r1 by one (the reference then samples one more row).
 */
export function sampleSide(config: DragGraphConfig): number {
  return patchSide(config) + 1;
}

/** Side of the tracking window: 2·r_p + 1. */
export function windowSide(config: DragGraphConfig): number {
  return 2 * config.trackingRadius + 1;
}

/**
 * Per-candidate data: for every cell of a pair's tracking window, what the motion supervision does if
 * tracking lands there. Float columns, in order.
 */
export const CANDIDATE_FLOATS = [
  // the handle after tracking
  'row',
  'col',
  // bilinear weights of the f1 patch's two taps per axis
  'rowWeight0',
  'rowWeight1',
  'colWeight0',
  'colWeight1',
  // (2r_m+1)²/(C·cells of f1) when the pair is active and the f0/f1 shapes agree (L1 term), else 0
  'l1Scale',
  // (2r_m+1)² when the pair is active and the shapes differ (signed mean term), else 0
  'meanScale',
  // 1/(C·cells of f1): turns the sum of f1 into its mean
  'sampleNorm',
  // 1/(C·cells of the current window): DragDiffusion's f0 mean (used only when shapes differ)
  'windowNorm',
] as const;

/** Integer columns of the per-candidate data, in order. */
export const CANDIDATE_INTS = [
  // f1 patch: first row (floor of the shifted start), rows, first column, columns
  'rowStart',
  'rowCount',
  'colStart',
  'colCount',
  // the clipped window around the handle (DragDiffusion's f0 patch): first row, rows, first column, columns
  'windowRow',
  'windowRows',
  'windowCol',
  'windowCols',
] as const;

export type CandidateFloat = (typeof CANDIDATE_FLOATS)[number];
export type CandidateInt = (typeof CANDIDATE_INTS)[number];

export interface InputSpec {
  readonly name: string;
  readonly dtype: 'float' | 'int64';
  readonly shape: readonly number[];
}

/** Names of the step graph's drag inputs. */
export const STEP_INPUT = {
  trackRows: 'drag_track_rows',
  trackCols: 'drag_track_cols',
  trackKeep: 'drag_track_keep',
  trackBias: 'drag_track_bias',
  candidates: 'drag_candidates',
  candidateIndices: 'drag_candidate_indices',
  f0Vectors: 'drag_f0_vectors',
  f0Patches: 'drag_f0_patches',
  f0Means: 'drag_f0_means',
  xPrev0: 'drag_x_prev_0',
  backgroundWeights: 'drag_background_weights',
} as const;

/** Names of the reference graph's inputs (run once on F0, at the initial handles). */
export const REFERENCE_INPUT = {
  /** [N, 1] int64: int(p0), where f0 for tracking is read. */
  pointRows: 'drag_ref_point_rows',
  pointCols: 'drag_ref_point_cols',
  /** [N, 4] int64: the clipped window around int(p0): first row, rows, first column, columns. */
  windows: 'drag_ref_windows',
  /** [N]: 1/(C·cells of the window), for the f0 mean. */
  norms: 'drag_ref_norms',
} as const;

/** The per-iteration inputs of the step graph (the F0-derived ones are listed by `referenceOutputSpecs`). */
export function stepInputSpecs(config: DragGraphConfig): InputSpec[] {
  const n = config.pairs;
  const side = windowSide(config);
  const cells = side * side;
  return [
    { name: STEP_INPUT.trackRows, dtype: 'int64', shape: [n, side] },
    { name: STEP_INPUT.trackCols, dtype: 'int64', shape: [n, side] },
    { name: STEP_INPUT.trackKeep, dtype: 'float', shape: [n, cells] },
    { name: STEP_INPUT.trackBias, dtype: 'float', shape: [n, cells] },
    { name: STEP_INPUT.candidates, dtype: 'float', shape: [n, cells, CANDIDATE_FLOATS.length] },
    { name: STEP_INPUT.candidateIndices, dtype: 'int64', shape: [n, cells, CANDIDATE_INTS.length] },
  ];
}

/**
 * What the reference graph computes from F0 and the step graph takes as inputs every iteration:
 * f0 at each initial handle (tracking) and, for CLIPDrag, the clipped f0 patch there and its mean.
 */
export function referenceOutputSpecs(config: DragGraphConfig): InputSpec[] {
  const n = config.pairs;
  const side = patchSide(config);
  const specs: InputSpec[] = [{ name: STEP_INPUT.f0Vectors, dtype: 'float', shape: [n, config.channels] }];
  if (config.variant === 'clipdrag') {
    specs.push({ name: STEP_INPUT.f0Patches, dtype: 'float', shape: [n, config.channels, side, side] });
    specs.push({ name: STEP_INPUT.f0Means, dtype: 'float', shape: [n] });
  }
  return specs;
}

export function referenceInputSpecs(config: DragGraphConfig): InputSpec[] {
  const n = config.pairs;
  return [
    { name: REFERENCE_INPUT.pointRows, dtype: 'int64', shape: [n, 1] },
    { name: REFERENCE_INPUT.pointCols, dtype: 'int64', shape: [n, 1] },
    { name: REFERENCE_INPUT.windows, dtype: 'int64', shape: [n, 4] },
    { name: REFERENCE_INPUT.norms, dtype: 'float', shape: [n] },
  ];
}

/** The mask-term inputs for a latent of `latentShape` ([1, 4, h, w]). */
export function maskInputSpecs(latentShape: readonly number[]): InputSpec[] {
  const [b, , h, w] = latentShape as [number, number, number, number];
  return [
    { name: STEP_INPUT.xPrev0, dtype: 'float', shape: [...latentShape] },
    { name: STEP_INPUT.backgroundWeights, dtype: 'float', shape: [b, 1, h, w] },
  ];
}

export function specDType(spec: InputSpec, float: DType): DType {
  return spec.dtype === 'int64' ? 'int64' : float;
}
