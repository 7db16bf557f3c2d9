/**
 * The drag golden cases run through the drag graphs the way the pipeline runs them: point data as
 * graph inputs filled by `drag-plan.ts`, one session per graph. Shared by the conformance handlers and
 * the unit tests.
 */
import { grad, vjp } from '../../src/sidecar/engine/autodiff';
import { Graph } from '../../src/sidecar/engine/graph';
import { STEP_INPUT, type DragGraphConfig } from '../../src/sidecar/pipeline/drag/drag-config';
import { buildDragStep, buildReferenceFeatures, maskInputs, outputDragStep, STEP_OUTPUT } from '../../src/sidecar/pipeline/drag/drag-graph';
import { referenceFeeds, stepFeeds, type DragPoints, type TrackingMode } from '../../src/sidecar/pipeline/drag/drag-plan';
import { upsampleFeatures } from '../../src/sidecar/pipeline/drag/feature-upsample';
import { backgroundWeights, maskTerm, meanTermWeights, resizeMaskNearest } from '../../src/sidecar/pipeline/drag/mask-term';
import { buildFreeDragLoss, freeDragPositionFeeds, freeDragTemplateFeed, type FreeDragGraphConfig } from '../../src/sidecar/pipeline/drag/freedrag-graph';
import { add } from '../../src/sidecar/engine/ops';
import { interpolationSpan, type AxisSpan } from '../../src/sidecar/pipeline/drag/patch-geometry';
import { featureGrid, sampleInterpolated } from '../../src/sidecar/pipeline/drag/patch-sampler';
import type { Point } from '../../src/sidecar/pipeline/drag/tracking';
import { GraphSession } from './graph-session';
import type { GoldenTensors } from '../conformance/golden';

/** [1, C, H, W] feature maps F0 and F1 (the same map twice when the case has no F0). */
export interface FeaturePair {
  readonly shape: readonly [number, number, number, number];
  readonly f0: Float32Array;
  readonly f1: Float32Array;
}

export async function readFeaturePair(golden: GoldenTensors): Promise<FeaturePair> {
  const shape = golden.shape('F1') as [number, number, number, number];
  const f1 = await golden.float32('F1');
  return { shape, f1, f0: golden.has('F0') ? await golden.float32('F0') : f1 };
}

export interface DragRun {
  readonly newHandles: Point[];
  readonly motionLoss: number;
  /** d motionLoss / d F1, [1, C, H, W]. */
  readonly gradF1: Float32Array;
}

/**
 * One drag step on features given at supervision resolution: the reference graph part (f0 from F0)
 * and the step graph part (tracking as `mode`, then motion supervision) in one graph, with every
 * point-dependent tensor a graph input.
 */
export async function runDragStep(config: DragGraphConfig, features: FeaturePair, points: DragPoints, mode: TrackingMode): Promise<DragRun> {
  const g = new Graph('drag-step');
  const f0 = g.input('F0', 'float32', features.shape);
  const f1 = g.input('F1', 'float32', features.shape);
  const reference = buildReferenceFeatures(featureGrid(f0, config.supervision), config);
  const step = buildDragStep(featureGrid(f1, config.supervision), reference, config);
  const [gradF1] = grad(step.motionLoss, [f1]);
  outputDragStep(step);
  g.output('grad_F1', gradF1!);
  const session = await GraphSession.create(g);
  try {
    const out = await session.run({
      F0: features.f0,
      F1: features.f1,
      ...referenceFeeds(config, points.handlesInit),
      ...stepFeeds(config, points, mode),
    });
    const handles = out[STEP_OUTPUT.newHandles] as Float32Array;
    return {
      newHandles: Array.from({ length: config.pairs }, (_, i) => [handles[2 * i]!, handles[2 * i + 1]!] as const),
      motionLoss: (out[STEP_OUTPUT.motionLoss] as Float32Array)[0]!,
      gradF1: out.grad_F1 as Float32Array,
    };
  } finally {
    await session.release();
  }
}

/** The config of a golden drag sub-case on a [1, C, H, W] map. */
export function caseConfig(variant: DragGraphConfig['variant'], shape: readonly number[], pairs: number, motionRadius: number, trackingRadius: number): DragGraphConfig {
  return { variant, pairs, channels: shape[1]!, motionRadius, trackingRadius, supervision: [shape[2]!, shape[3]!] };
}

export interface PatchResult {
  readonly shape: number[];
  readonly data: Float32Array;
}

/**
 * `interpolate_feature_patch(feat, y1, y2, x1, x2)` for each coordinate set, through one compiled
 * graph whose spans are inputs; each result is cut from the padded patch to the reference's shape.
 */
export async function interpolatePatches(feat: Float32Array, shape: readonly number[], coords: readonly (readonly number[])[]): Promise<PatchResult[]> {
  const [, channels, height, width] = shape as [number, number, number, number];
  const spans = coords.map(([y1, y2, x1, x2]) => ({ rows: interpolationSpan(y1!, y2!, height), cols: interpolationSpan(x1!, x2!, width) }));
  const side = Math.max(...spans.flatMap((s) => [s.rows.count, s.cols.count]));
  const g = new Graph('interpolate-feature-patch');
  const features = g.input('feat', 'float32', shape);
  const int = (name: string) => g.input(name, 'int64', [1]);
  const float = (name: string) => g.input(name, 'float32', [1]);
  const patch = sampleInterpolated(
    featureGrid(features, [height, width]),
    {
      rowStart: int('row_start'),
      rowCount: int('row_count'),
      rowWeight0: float('row_weight0'),
      rowWeight1: float('row_weight1'),
      colStart: int('col_start'),
      colCount: int('col_count'),
      colWeight0: float('col_weight0'),
      colWeight1: float('col_weight1'),
    },
    side,
  );
  g.output('patch', patch);
  const axisFeeds = (prefix: string, s: AxisSpan) => ({
    [`${prefix}_start`]: BigInt64Array.of(BigInt(s.start)),
    [`${prefix}_count`]: BigInt64Array.of(BigInt(s.count)),
    [`${prefix}_weight0`]: Float32Array.of(s.weight0),
    [`${prefix}_weight1`]: Float32Array.of(s.weight1),
  });
  const session = await GraphSession.create(g);
  try {
    const results: PatchResult[] = [];
    for (const { rows, cols } of spans) {
      const out = (await session.run({ feat, ...axisFeeds('row', rows), ...axisFeeds('col', cols) })).patch as Float32Array;
      const data = new Float32Array(channels * rows.count * cols.count);
      for (let c = 0; c < channels; c++) {
        for (let i = 0; i < rows.count; i++) {
          for (let j = 0; j < cols.count; j++) data[(c * rows.count + i) * cols.count + j] = out[(c * side + i) * side + j]!;
        }
      }
      results.push({ shape: [1, channels, rows.count, cols.count], data });
    }
    return results;
  } finally {
    await session.release();
  }
}

export interface MaskTermResult {
  readonly interpMask: Float32Array;
  readonly loss: number;
  readonly gradXPrev: Float32Array;
}

/** The background term: mask resized in JS, then the term and its gradient w.r.t. x_prev in a graph. */
export async function runMaskTerm(mask: Float32Array, maskShape: readonly number[], xPrev: Float32Array, xPrev0: Float32Array, latentShape: readonly number[], lam: number): Promise<MaskTermResult> {
  const [h, w] = [latentShape[2]!, latentShape[3]!];
  const interpMask = resizeMaskNearest(mask, [maskShape[2]!, maskShape[3]!], [h, w]);
  const g = new Graph('mask-term');
  const x = g.input('x_prev', 'float32', latentShape);
  const inputs = maskInputs(g, latentShape, 'float32');
  const maskLoss = maskTerm(x, inputs.xPrev0, inputs.backgroundWeights);
  const [gradX] = grad(maskLoss, [x]);
  g.output('loss', maskLoss);
  g.output('grad', gradX!);
  const session = await GraphSession.create(g);
  try {
    const out = await session.run({
      x_prev: xPrev,
      [STEP_INPUT.xPrev0]: xPrev0,
      [STEP_INPUT.backgroundWeights]: backgroundWeights(interpMask, lam),
    });
    return { interpMask, loss: (out.loss as Float32Array)[0]!, gradXPrev: out.grad as Float32Array };
  } finally {
    await session.release();
  }
}

/** Upsampled features and the adjoint applied to a cotangent R, through the engine's VJP. */
export async function runFeatureUpsample(feat: Float32Array, shape: readonly number[], cotangent: Float32Array, supervision: readonly [number, number]): Promise<{ upsampled: Float32Array; gradFeat: Float32Array }> {
  const g = new Graph('feature-upsample');
  const x = g.input('feat', 'float32', shape);
  const up = upsampleFeatures(x, supervision);
  const r = g.input('R', 'float32', up.shape);
  const [gradFeat] = vjp(g, [{ value: up, cotangent: r }], [x]);
  g.output('upsampled', up);
  g.output('grad_feat', gradFeat!);
  const session = await GraphSession.create(g);
  try {
    const out = await session.run({ feat, R: cotangent });
    return { upsampled: out.upsampled as Float32Array, gradFeat: out.grad_feat as Float32Array };
  } finally {
    await session.release();
  }
}

export interface FreeDragMotionResult {
  readonly pairLosses: Float32Array;
  readonly maskLoss: number;
  readonly loss: number;
  readonly gradFeature: Float32Array;
  readonly gradXPrev: Float32Array;
}

/**
 * FreeDrag's loss as the step graph builds it: the latent-resolution feature through the folded upsampling, the
 * per-pair template L1 at the given positions, plus λ·mean of the background term; gradients w.r.t. the feature
 * and x_prev by the engine's autodiff.
 */
export async function runFreeDragMotion(
  feature: Float32Array,
  featureShape: readonly number[],
  supervision: readonly [number, number],
  radius: number,
  positions: readonly Point[],
  templates: readonly Float32Array[],
  mask: { readonly xPrev: Float32Array; readonly xPrev0: Float32Array; readonly latentShape: readonly number[]; readonly interpMask: Float32Array; readonly lam: number },
): Promise<FreeDragMotionResult> {
  const config: FreeDragGraphConfig = { pairs: positions.length, channels: featureShape[1]!, radius, supervision };
  const g = new Graph('freedrag-motion');
  const f = g.input('feature', 'float32', featureShape);
  const x = g.input('x_prev', 'float32', mask.latentShape);
  const loss = buildFreeDragLoss(featureGrid(f, supervision), config);
  const inputs = maskInputs(g, mask.latentShape, 'float32');
  const maskLoss = maskTerm(x, inputs.xPrev0, inputs.backgroundWeights);
  const total = add(loss.motionLoss, maskLoss);
  const [gradFeature, gradX] = grad(total, [f, x]);
  g.output('pair_losses', loss.pairLosses);
  g.output('mask_loss', maskLoss);
  g.output('loss', total);
  g.output('grad_feature', gradFeature!);
  g.output('grad_x_prev', gradX!);
  const session = await GraphSession.create(g);
  try {
    const channels = mask.latentShape[1]!;
    const out = await session.run({
      feature,
      x_prev: mask.xPrev,
      ...freeDragPositionFeeds(config, positions),
      ...freeDragTemplateFeed(config, templates),
      [STEP_INPUT.xPrev0]: mask.xPrev0,
      [STEP_INPUT.backgroundWeights]: meanTermWeights(backgroundWeights(mask.interpMask, mask.lam), channels),
    });
    const scalar = (name: string) => (out[name] as Float32Array)[0]!;
    return {
      pairLosses: out.pair_losses as Float32Array,
      maskLoss: scalar('mask_loss'),
      loss: scalar('loss'),
      gradFeature: out.grad_feature as Float32Array,
      gradXPrev: out.grad_x_prev as Float32Array,
    };
  } finally {
    await session.release();
  }
}
