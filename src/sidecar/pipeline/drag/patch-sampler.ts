/**
 * Samples small per-pair patches of a feature map at positions that are graph inputs, so that one
 * compiled graph serves every drag iteration while handles move.
 *
 * The map being sampled is `R · F[c] · Cᵀ` for every channel c: F [1, C, h, w] is the feature map in
 * the graph, R [Hs, h] and C [Ws, w] are constant resampling matrices. They are the identity when F is
 * already at supervision resolution, and PyTorch's bilinear upsampling matrices when F is the UNet's
 * feature at latent resolution: the (Hs, Ws) upsampled map is then never materialised.
 *
 * A patch row is a weighted sum of (at most two) rows of R picked by index inputs, so a patch is
 * `(taps·R) · F · (taps·C)ᵀ`: two matrix products whose gradient w.r.t. F is two matrix products again.
 * No Scatter op is needed (WebGPU has none) and no [C, Hs, Ws] buffer is written, forward or backward.
 */
import type { Graph, Value } from '../../engine/graph';
import type { DType } from '../../engine/dtype';
import { add, cast, clip, gather, gemm, less, matmul, mul, reshape, stopGradient, transpose, unsqueeze } from '../../engine/ops';

const f32 = Math.fround;

/** A feature map together with the resampling that takes it to supervision resolution. */
export interface FeatureGrid {
  /** [1, C, h, w]. */
  readonly features: Value;
  /** [Hs, h]: row r of the supervision grid as a combination of feature rows. */
  readonly rowBasis: Value;
  /** [Ws, w]. */
  readonly colBasis: Value;
  readonly channels: number;
  /** Supervision grid size (Hs, Ws): the coordinates every index refers to. */
  readonly height: number;
  readonly width: number;
}

/**
 * The grid of `features` ([1, C, h, w]) seen at supervision size (Hs, Ws): bilinearly upsampled
 * (align_corners=False, as `F.interpolate`) when the sizes differ.
 */
export function featureGrid(features: Value, supervision: readonly [number, number]): FeatureGrid {
  if (features.rank !== 4 || features.shape[0] !== 1) {
    throw new Error(`drag features must be [1, C, h, w], got ${features.name} [${features.shape.join(', ')}]`);
  }
  const [, channels, h, w] = features.shape as [number, number, number, number];
  const [height, width] = supervision;
  const g = features.graph;
  return {
    features,
    rowBasis: g.constant(resamplingMatrix(h, height), [height, h], features.dtype),
    colBasis: g.constant(resamplingMatrix(w, width), [width, w], features.dtype),
    channels,
    height,
    width,
  };
}

/** The same grid with its features cut off from the gradient (tracking, DragDiffusion's f0). */
export function detachedGrid(grid: FeatureGrid): FeatureGrid {
  return { ...grid, features: stopGradient(grid.features) };
}

/**
 * [output, input] row-major: the identity for equal sizes, else the matrix of
 * `F.interpolate(mode='bilinear', align_corners=False)` along one axis, computed in float32 as
 * PyTorch's CPU kernel does (source clamped at 0, second tap clamped to the last cell).
 */
export function resamplingMatrix(input: number, output: number): number[] {
  const m = new Array<number>(output * input).fill(0);
  if (input === output) {
    for (let i = 0; i < input; i++) m[i * input + i] = 1;
    return m;
  }
  const scale = f32(input / output);
  for (let d = 0; d < output; d++) {
    const src = Math.max(f32(f32(scale * f32(d + 0.5)) - 0.5), 0);
    const i0 = Math.min(Math.floor(src), input - 1);
    const i1 = i0 < input - 1 ? i0 + 1 : i0;
    const l1 = Math.min(Math.max(f32(src - i0), 0), 1);
    m[d * input + i0]! += f32(1 - l1);
    m[d * input + i1]! += l1;
  }
  return m;
}

/**
 * Where one axis of a batch of patches samples: [N, K] indices into the supervision grid, with
 * optional [N, K] weights (default 1) and an optional second tap (bilinear sampling).
 */
export interface AxisTaps {
  readonly index0: Value;
  readonly weight0?: Value;
  readonly index1?: Value;
  readonly weight1?: Value;
}

/** [N, K, h]: each sampled position as a combination of feature rows (or columns). */
function axisOperator(basis: Value, taps: AxisTaps): Value {
  const pick = (index: Value, weight: Value | undefined): Value => {
    const rows = gather(basis, index, 0);
    return weight ? mul(rows, unsqueeze(weight, [2])) : rows;
  };
  const first = pick(taps.index0, taps.weight0);
  return taps.index1 ? add(first, pick(taps.index1, taps.weight1)) : first;
}

/** [N, C, Kr, Kc]: patch n is `Σ taps` of the supervision-resolution map at its rows × cols. */
export function samplePatches(grid: FeatureGrid, rows: AxisTaps, cols: AxisTaps): Value {
  const pairs = rows.index0.shape[0]!;
  const [colPairs, kc] = cols.index0.shape as [number, number];
  if (colPairs !== pairs) throw new Error(`samplePatches: ${pairs} row tap sets but ${colPairs} column tap sets`);
  const [, c, h, w] = grid.features.shape as [number, number, number, number];
  const rowOp = axisOperator(grid.rowBasis, rows);
  const colOp = axisOperator(grid.colBasis, cols);
  const kr = rowOp.shape[1]!;
  // All pairs' columns in one GEMM [N·Kc, w] × [w, C·h]; its gradient w.r.t. F is one GEMM summing
  // over the pairs. Laid out [N, Kc·C, h], the rows are then one product per pair, and no large
  // tensor is ever transposed (forward or backward).
  const byColumn = gemm(reshape(colOp, [pairs * kc, w]), reshape(grid.features, [c * h, w]), { transB: true });
  const patches = matmul(reshape(byColumn, [pairs, kc * c, h]), transpose(rowOp, [0, 2, 1]));
  return transpose(reshape(patches, [pairs, kc, c, kr]), [0, 2, 3, 1]);
}

/** An int64 [1, n] constant 0..n−1 (plus `offset`), for building index rows in the graph. */
export function iota(graph: Graph, n: number, offset = 0): Value {
  return graph.constant(Array.from({ length: n }, (_, i) => i + offset), [1, n], 'int64');
}

/**
 * Per-pair `interpolate_feature_patch` parameters as [N] values (see `interpolationSpan`): int64 first
 * cell and cell count per axis, float weights of the two taps.
 */
export interface InterpolationSpans {
  readonly rowStart: Value;
  readonly rowCount: Value;
  readonly rowWeight0: Value;
  readonly rowWeight1: Value;
  readonly colStart: Value;
  readonly colCount: Value;
  readonly colWeight0: Value;
  readonly colWeight1: Value;
}

/** [N, C, side, side]: each pair's bilinear patch in the top-left corner, zeros elsewhere. */
export function sampleInterpolated(grid: FeatureGrid, spans: InterpolationSpans, side: number): Value {
  const dtype = grid.features.dtype;
  const rows = axisTaps(spans.rowStart, spans.rowCount, side, grid.height, dtype, [spans.rowWeight0, spans.rowWeight1]);
  const cols = axisTaps(spans.colStart, spans.colCount, side, grid.width, dtype, [spans.colWeight0, spans.colWeight1]);
  return samplePatches(grid, rows, cols);
}

/** Integer windows as [N] int64 values: first row, rows, first column, columns. */
export interface WindowSpans {
  readonly row: Value;
  readonly rows: Value;
  readonly col: Value;
  readonly cols: Value;
}

/** [N, C, side, side]: each pair's window of the map in the top-left corner, zeros elsewhere. */
export function sampleWindows(grid: FeatureGrid, window: WindowSpans, side: number): Value {
  const dtype = grid.features.dtype;
  return samplePatches(grid, axisTaps(window.row, window.rows, side, grid.height, dtype), axisTaps(window.col, window.cols, side, grid.width, dtype));
}

/**
 * Taps of `count` cells from `start` on an axis of `size` cells, padded to `side`: tap i reads cell
 * start+i with weights[0] (and start+i+1 with weights[1]: bilinear), indices clamped to the axis (which
 * reproduces the reference's truncation at the bottom/right edge); taps i ≥ count weigh 0. Without
 * weights the taps weigh 1.
 */
function axisTaps(start: Value, count: Value, side: number, size: number, dtype: DType, weights: readonly Value[] = []): AxisTaps {
  const g = start.graph;
  const n = start.shape[0]!;
  const column = (v: Value) => reshape(v, [n, 1]);
  const valid = cast(less(iota(g, side), column(count)), dtype);
  const index = (offset: number) => clip(add(column(start), iota(g, side, offset)), 0, size - 1);
  const [w0, w1] = weights.map((w) => mul(valid, column(w)));
  if (!w0) return { index0: index(0), weight0: valid };
  return w1 ? { index0: index(0), weight0: w0, index1: index(1), weight1: w1 } : { index0: index(0), weight0: w0 };
}
