/**
 * The drag part of one iteration as engine graph builders: point tracking on the current features,
 * motion supervision (CLIPDrag or DragDiffusion) at the tracked handles, and the background (mask)
 * term. Point coordinates enter only through the small inputs `drag-plan.ts` computes, so one compiled
 * graph serves every iteration; features stay inside the graph.
 *
 * Two graphs use these builders:
 *  - the reference graph, once per edit on F0 (the un-optimised latent's features): f0 at the initial
 *    handles (`buildReferenceFeatures`);
 *  - the step graph, every iteration on F1: `buildDragStep` returns the loss (whose VJP w.r.t. the
 *    latent the caller appends) and the handles after tracking.
 */
import type { DType } from '../../engine/dtype';
import type { Graph, Value } from '../../engine/graph';
import { abs, add, argmin, gather, mul, pad, reduceSum, reshape, sub } from '../../engine/ops';
import {
  CANDIDATE_FLOATS,
  CANDIDATE_INTS,
  REFERENCE_INPUT,
  STEP_INPUT,
  checkConfig,
  maskInputSpecs,
  patchSide,
  referenceInputSpecs,
  referenceOutputSpecs,
  sampleSide,
  specDType,
  stepInputSpecs,
  windowSide,
  type CandidateFloat,
  type CandidateInt,
  type DragGraphConfig,
  type InputSpec,
} from './drag-config';
import type { Feeds } from './drag-plan';
import { maskTerm } from './mask-term';
import { detachedGrid, sampleInterpolated, samplePatches, sampleWindows, type FeatureGrid, type InterpolationSpans } from './patch-sampler';

/** Names of the step graph's outputs, for callers that expose them. */
export const STEP_OUTPUT = {
  newHandles: 'drag_new_handles',
  motionLoss: 'drag_motion_loss',
  maskLoss: 'drag_mask_loss',
} as const;

/**
 * Graph values for the given specs: graph inputs, or constants when `constants` holds their data (for
 * tests and one-off graphs). Float inputs take `float` (the features' dtype).
 */
export function specValues(graph: Graph, specs: readonly InputSpec[], float: DType, constants?: Feeds): Record<string, Value> {
  const values: Record<string, Value> = {};
  for (const spec of specs) {
    const dtype = specDType(spec, float);
    if (!constants) {
      values[spec.name] = graph.input(spec.name, dtype, spec.shape);
      continue;
    }
    const data = constants[spec.name];
    if (!data) throw new Error(`no data for the drag input ${spec.name}`);
    values[spec.name] = graph.constant(dtype === 'float64' ? Float64Array.from(data as Float32Array) : data, spec.shape, dtype);
  }
  return values;
}

/** f0 where the step graph needs it: at each initial handle, and (CLIPDrag) its clipped patch there with its mean. */
export interface ReferenceFeatures {
  /** [N, C]. */
  readonly f0Vectors: Value;
  /** [N, C, 2r_m+1, 2r_m+1], zero outside the clipped window (CLIPDrag only). */
  readonly f0Patches?: Value;
  /** [N] (CLIPDrag only). */
  readonly f0Means?: Value;
}

/** The reference graph's body: f0 samples of `grid` (F0) at the positions of `referenceFeeds`. */
export function buildReferenceFeatures(grid: FeatureGrid, config: DragGraphConfig, constants?: Feeds): ReferenceFeatures {
  checkConfig(config);
  checkGrid(grid, config);
  const g = grid.features.graph;
  const x = specValues(g, referenceInputSpecs(config), grid.features.dtype, constants);
  const n = config.pairs;
  const point = samplePatches(grid, { index0: x[REFERENCE_INPUT.pointRows]! }, { index0: x[REFERENCE_INPUT.pointCols]! });
  const f0Vectors = reshape(point, [n, config.channels]);
  if (config.variant !== 'clipdrag') return { f0Vectors };
  const windows = x[REFERENCE_INPUT.windows]!;
  const column = (k: number) => reshape(gather(windows, [k], 1), [n]);
  const f0Patches = sampleWindows(grid, { row: column(0), rows: column(1), col: column(2), cols: column(3) }, patchSide(config));
  const f0Means = mul(reduceSum(f0Patches, [1, 2, 3], false), x[REFERENCE_INPUT.norms]!);
  return { f0Vectors, f0Patches, f0Means };
}

/** Makes the reference features outputs of their graph, named as the step graph's inputs that take them. */
export function outputReferenceFeatures(reference: ReferenceFeatures): void {
  const g = reference.f0Vectors.graph;
  g.output(STEP_INPUT.f0Vectors, reference.f0Vectors);
  if (reference.f0Patches) g.output(STEP_INPUT.f0Patches, reference.f0Patches);
  if (reference.f0Means) g.output(STEP_INPUT.f0Means, reference.f0Means);
}

/** The reference features as inputs of the step graph (or constants), named as `referenceOutputSpecs`. */
export function referenceFeatureInputs(graph: Graph, config: DragGraphConfig, float: DType, constants?: Feeds): ReferenceFeatures {
  const x = specValues(graph, referenceOutputSpecs(config), float, constants);
  return {
    f0Vectors: x[STEP_INPUT.f0Vectors]!,
    ...(x[STEP_INPUT.f0Patches] ? { f0Patches: x[STEP_INPUT.f0Patches] } : {}),
    ...(x[STEP_INPUT.f0Means] ? { f0Means: x[STEP_INPUT.f0Means] } : {}),
  };
}

/** The background term's inputs: x_prev of the un-optimised latent and the weights λ·(1 − mask) (or 0). */
export interface MaskInputs {
  readonly xPrev0: Value;
  readonly backgroundWeights: Value;
}

export function maskInputs(graph: Graph, latentShape: readonly number[], float: DType, constants?: Feeds): MaskInputs {
  const x = specValues(graph, maskInputSpecs(latentShape), float, constants);
  return { xPrev0: x[STEP_INPUT.xPrev0]!, backgroundWeights: x[STEP_INPUT.backgroundWeights]! };
}

export interface DragStepOptions {
  /** Per-iteration input data as constants instead of graph inputs (tests, one-off graphs). */
  readonly constants?: Feeds;
  /** x_prev of the current latent and the mask-term inputs; without them there is no background term. */
  readonly mask?: { readonly xPrev: Value; readonly inputs: MaskInputs };
}

export interface DragStep {
  /** [N, 2] float: the handles after tracking, where this iteration's motion supervision was applied. */
  readonly newHandles: Value;
  /** Scalar motion-supervision loss (sum over the pairs). */
  readonly motionLoss: Value;
  /** Scalar background term, or null without mask inputs. */
  readonly maskLoss: Value | null;
  /** motionLoss + maskLoss: the value to differentiate. */
  readonly loss: Value;
}

/** Exposes the tracked handles and the loss terms as graph outputs named by `STEP_OUTPUT`. */
export function outputDragStep(step: DragStep): void {
  const g = step.loss.graph;
  g.output(STEP_OUTPUT.newHandles, step.newHandles);
  g.output(STEP_OUTPUT.motionLoss, step.motionLoss);
  if (step.maskLoss) g.output(STEP_OUTPUT.maskLoss, step.maskLoss);
}

/** The step graph's drag part on `grid` (F1), given f0 (graph inputs or the reference graph's values). */
export function buildDragStep(grid: FeatureGrid, reference: ReferenceFeatures, config: DragGraphConfig, options: DragStepOptions = {}): DragStep {
  checkConfig(config);
  checkGrid(grid, config);
  const g = grid.features.graph;
  const x = specValues(g, stepInputSpecs(config), grid.features.dtype, options.constants);
  const choice = trackingChoice(grid, reference.f0Vectors, x, config);
  const { floats, ints } = candidateAt(x, choice, config);

  const newHandles = reshape(gather(floats.table, [0, 1], 1), [config.pairs, 2]);
  const f1 = sampleShifted(grid, floats, ints, config);
  const { f0, f0Means } = f0For(grid, reference, floats, ints, config);
  const perPair = (v: Value) => reduceSum(v, [1, 2, 3], false);
  const l1 = perPair(abs(sub(f0, f1)));
  const signedMean = sub(f0Means, mul(perPair(f1), floats.column('sampleNorm')));
  const terms = add(mul(floats.column('l1Scale'), l1), mul(floats.column('meanScale'), signedMean));
  const motionLoss = reduceSum(terms, [0], false);

  const maskLoss = options.mask ? maskTerm(options.mask.xPrev, options.mask.inputs.xPrev0, options.mask.inputs.backgroundWeights) : null;
  return { newHandles, motionLoss, maskLoss, loss: maskLoss ? add(motionLoss, maskLoss) : motionLoss };
}

/**
 * [N] int64: the chosen cell of each pair's tracking window. Distances Σ_c |f0 − F1| over the window
 * (no gradient), then `distance·keep + bias` and the row-major first minimum.
 */
function trackingChoice(grid: FeatureGrid, f0Vectors: Value, x: Record<string, Value>, config: DragGraphConfig): Value {
  const n = config.pairs;
  const side = windowSide(config);
  const window = samplePatches(detachedGrid(grid), { index0: x[STEP_INPUT.trackRows]! }, { index0: x[STEP_INPUT.trackCols]! });
  const f0 = reshape(f0Vectors, [n, config.channels, 1, 1]);
  const distances = reshape(reduceSum(abs(sub(window, f0)), [1], false), [n, side * side]);
  const adjusted = add(mul(distances, x[STEP_INPUT.trackKeep]!), x[STEP_INPUT.trackBias]!);
  return argmin(adjusted, 1, false);
}

interface CandidateColumns<Name extends string> {
  /** [N, columns]. */
  readonly table: Value;
  /** One column as [N]. */
  column(name: Name): Value;
}

/** The chosen rows of the candidate tables. */
function candidateAt(x: Record<string, Value>, choice: Value, config: DragGraphConfig) {
  const g = choice.graph;
  const n = config.pairs;
  const cells = windowSide(config) ** 2;
  // Row n·cells + choice[n] of the flattened [N·cells, columns] tables.
  const rows = add(choice, g.constant(Array.from({ length: n }, (_, i) => i * cells), [n], 'int64'));
  const pick = <Name extends string>(input: string, names: readonly Name[]): CandidateColumns<Name> => {
    const table = gather(reshape(x[input]!, [n * cells, names.length]), rows, 0);
    return { table, column: (name) => reshape(gather(table, [names.indexOf(name)], 1), [n]) };
  };
  return {
    floats: pick<CandidateFloat>(STEP_INPUT.candidates, CANDIDATE_FLOATS),
    ints: pick<CandidateInt>(STEP_INPUT.candidateIndices, CANDIDATE_INTS),
  };
}

/** f1: the shifted window, bilinearly sampled — [N, C, K, K] with K = 2r_m + 2, zero outside the patch. */
function sampleShifted(grid: FeatureGrid, floats: CandidateColumns<CandidateFloat>, ints: CandidateColumns<CandidateInt>, config: DragGraphConfig): Value {
  const spans: InterpolationSpans = {
    rowStart: ints.column('rowStart'),
    rowCount: ints.column('rowCount'),
    rowWeight0: floats.column('rowWeight0'),
    rowWeight1: floats.column('rowWeight1'),
    colStart: ints.column('colStart'),
    colCount: ints.column('colCount'),
    colWeight0: floats.column('colWeight0'),
    colWeight1: floats.column('colWeight1'),
  };
  return sampleInterpolated(grid, spans, sampleSide(config));
}

/**
 * f0 on the same [N, C, K, K] grid and its mean. CLIPDrag: the reference graph's patch of F0 at the
 * initial handle. DragDiffusion: the current (tracked) window of F1 itself, without gradient.
 */
function f0For(
  grid: FeatureGrid,
  reference: ReferenceFeatures,
  floats: CandidateColumns<CandidateFloat>,
  ints: CandidateColumns<CandidateInt>,
  config: DragGraphConfig,
): { f0: Value; f0Means: Value } {
  const side = sampleSide(config);
  if (config.variant === 'clipdrag') {
    if (!reference.f0Patches || !reference.f0Means) throw new Error('CLIPDrag motion supervision needs the f0 patches and means of the reference graph');
    const extra = side - patchSide(config);
    return { f0: pad(reference.f0Patches, [0, 0, 0, 0, 0, 0, extra, extra]), f0Means: reference.f0Means };
  }
  const window = { row: ints.column('windowRow'), rows: ints.column('windowRows'), col: ints.column('windowCol'), cols: ints.column('windowCols') };
  const f0 = sampleWindows(detachedGrid(grid), window, side);
  return { f0, f0Means: mul(reduceSum(f0, [1, 2, 3], false), floats.column('windowNorm')) };
}

function checkGrid(grid: FeatureGrid, config: DragGraphConfig): void {
  const [height, width] = config.supervision;
  if (grid.channels !== config.channels || grid.height !== height || grid.width !== width) {
    throw new Error(
      `drag graph configured for ${config.channels} channels on a ${height}x${width} grid, but the features give ${grid.channels} channels on ${grid.height}x${grid.width}`,
    );
  }
}
