/**
 * FreeDrag's motion supervision in the step graph: for each pair, the (2r+1)² features around its template
 * position, read bilinearly from the upsampled UNet feature (`get_features_plus` at position + offsets), and
 * their mean absolute difference to the pair's template (`L1Loss`); the loss is the sum over pairs.
 *
 * The window is a regular grid shifted by the position's fraction, so it is one `sampleInterpolated` patch:
 * rows floor(y) − r … floor(y) + r with taps (1 − fy, fy), columns likewise. Positions and templates are
 * graph inputs (JS moves them between stages), so one compiled graph serves the whole edit.
 */
import type { Value } from '../../engine/graph';
import { abs, gather, reduceMean, reduceSum, reshape, sub } from '../../engine/ops';
import type { InputSpec } from './drag-config';
import { specValues } from './drag-graph';
import type { Feeds } from './drag-plan';
import { sampleInterpolated, type FeatureGrid } from './patch-sampler';
import type { Point } from './tracking';

const f32 = Math.fround;

export interface FreeDragGraphConfig {
  /** Handle/target pairs (N). */
  readonly pairs: number;
  /** Feature channels (C). */
  readonly channels: number;
  /** Template window radius r (FreeDrag's win_r, 4). */
  readonly radius: number;
  /** Supervision grid (Hs, Ws). */
  readonly supervision: readonly [number, number];
}

export const FREEDRAG_INPUT = {
  /** [N, 2] int64: floor(row) − r, floor(col) − r of each template position. */
  starts: 'freedrag_starts',
  /** [N, 4]: (1 − fy, fy, 1 − fx, fx) of each position. */
  weights: 'freedrag_weights',
  /** [N, C, 2r+1, 2r+1]: each pair's template. */
  templates: 'freedrag_templates',
} as const;

export const FREEDRAG_OUTPUT = {
  /** [N]: each pair's L1 (loss_supervised). */
  pairLosses: 'freedrag_pair_losses',
} as const;

export function freeDragSide(config: FreeDragGraphConfig): number {
  return 2 * config.radius + 1;
}

export function freeDragInputSpecs(config: FreeDragGraphConfig): InputSpec[] {
  const n = config.pairs;
  const side = freeDragSide(config);
  return [
    { name: FREEDRAG_INPUT.starts, dtype: 'int64', shape: [n, 2] },
    { name: FREEDRAG_INPUT.weights, dtype: 'float', shape: [n, 4] },
    { name: FREEDRAG_INPUT.templates, dtype: 'float', shape: [n, config.channels, side, side] },
  ];
}

export interface FreeDragLoss {
  /** [N] per-pair L1. */
  readonly pairLosses: Value;
  /** Their sum (loss_feature). */
  readonly motionLoss: Value;
}

/** The per-pair window features of `grid` at the input positions ([N, C, 2r+1, 2r+1]). */
export function freeDragWindows(grid: FeatureGrid, x: Record<string, Value>, config: FreeDragGraphConfig): Value {
  const g = grid.features.graph;
  const n = config.pairs;
  const side = freeDragSide(config);
  const column = (input: string, k: number) => reshape(gather(x[input]!, [k], 1), [n]);
  const count = g.constant(new Array<number>(n).fill(side), [n], 'int64');
  return sampleInterpolated(
    grid,
    {
      rowStart: column(FREEDRAG_INPUT.starts, 0),
      rowCount: count,
      rowWeight0: column(FREEDRAG_INPUT.weights, 0),
      rowWeight1: column(FREEDRAG_INPUT.weights, 1),
      colStart: column(FREEDRAG_INPUT.starts, 1),
      colCount: count,
      colWeight0: column(FREEDRAG_INPUT.weights, 2),
      colWeight1: column(FREEDRAG_INPUT.weights, 3),
    },
    side,
  );
}

/** FreeDrag's motion supervision on `grid` (F1), with the positions and templates as graph inputs (or constants). */
export function buildFreeDragLoss(grid: FeatureGrid, config: FreeDragGraphConfig, constants?: Feeds): FreeDragLoss {
  if (grid.channels !== config.channels || grid.height !== config.supervision[0] || grid.width !== config.supervision[1]) {
    throw new Error(`FreeDrag graph configured for ${config.channels} channels on ${config.supervision.join('x')}, got ${grid.channels} on ${grid.height}x${grid.width}`);
  }
  const x = specValues(grid.features.graph, freeDragInputSpecs(config), grid.features.dtype, constants);
  const windows = freeDragWindows(grid, x, config);
  const pairLosses = reduceMean(abs(sub(windows, x[FREEDRAG_INPUT.templates]!)), [1, 2, 3], false);
  return { pairLosses, motionLoss: reduceSum(pairLosses, [0], false) };
}

/** The position inputs for the pairs' template positions ([row, col], supervision grid). */
export function freeDragPositionFeeds(config: FreeDragGraphConfig, positions: readonly Point[]): Feeds {
  const starts = new BigInt64Array(config.pairs * 2);
  const weights = new Float32Array(config.pairs * 4);
  positions.forEach(([y, x], n) => {
    const y0 = Math.floor(y);
    const x0 = Math.floor(x);
    const fy = f32(y - y0);
    const fx = f32(x - x0);
    starts[2 * n] = BigInt(y0 - config.radius);
    starts[2 * n + 1] = BigInt(x0 - config.radius);
    weights.set([f32(1 - fy), fy, f32(1 - fx), fx], 4 * n);
  });
  return { [FREEDRAG_INPUT.starts]: starts, [FREEDRAG_INPUT.weights]: weights };
}

/** Templates in FreeDrag's layout ([cells, C] per pair, `get_features_plus` order) as the graph's [N, C, side, side]. */
export function freeDragTemplateFeed(config: FreeDragGraphConfig, templates: readonly Float32Array[]): Feeds {
  const C = config.channels;
  const cells = freeDragSide(config) ** 2;
  const out = new Float32Array(config.pairs * C * cells);
  templates.forEach((template, n) => {
    if (template.length !== cells * C) throw new RangeError(`template ${n} has ${template.length} values, expected ${cells}×${C}`);
    for (let cell = 0; cell < cells; cell++) for (let c = 0; c < C; c++) out[(n * C + c) * cells + cell] = template[cell * C + c]!;
  });
  return { [FREEDRAG_INPUT.templates]: out };
}
