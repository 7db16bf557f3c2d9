/**
 * Drag-loss sampling: the gradient of a motion-supervision-shaped loss w.r.t. the UNet feature at
 * latent resolution, with the patches sampled two ways, on onnxruntime's CPU provider:
 *
 *  - separable: what the drag graph does (`samplePatches`): the bilinear upsampling to the supervision
 *    grid is folded into per-patch row/column operators; forward and gradient are matrix products;
 *  - gather: upsample the map to the supervision grid ([C, Hs, Ws]) and Gather the four bilinear
 *    corners of every patch cell from the flattened map; the gradient is ScatterElements(add) into
 *    zeros of [C, Hs·Ws] followed by the upsampling's adjoint;
 *  - step: the whole drag step graph (fast point tracking + CLIPDrag motion supervision) and its VJP.
 *
 *     npm run bench -- drag-sampling [--only ...]
 */
import * as ort from 'onnxruntime-node';
import { grad } from '../src/sidecar/engine/autodiff';
import { Graph, type Value } from '../src/sidecar/engine/graph';
import { abs, add, concat, gather, mul, reduceSum, reshape, resizeBilinear, sub, transpose, unsqueeze } from '../src/sidecar/engine/ops';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import type { DragGraphConfig } from '../src/sidecar/pipeline/drag/drag-config';
import { buildDragStep, referenceFeatureInputs } from '../src/sidecar/pipeline/drag/drag-graph';
import { stepFeeds, type Feeds } from '../src/sidecar/pipeline/drag/drag-plan';
import { featureGrid, samplePatches } from '../src/sidecar/pipeline/drag/patch-sampler';
import { round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration } from './lib/types';

type Strategy = 'separable' | 'gather' | 'step';

interface Case {
  /** Feature channels. */
  readonly channels: number;
  /** Latent (feature) size; the supervision grid is 4× that. */
  readonly latent: number;
  readonly pairs: number;
  readonly motionRadius: number;
  readonly trackingRadius: number;
}

interface SamplingConfiguration extends Configuration, Case {
  readonly strategy: Strategy;
}

const SIZES: readonly (Case & { readonly label: string })[] = [
  { label: 'quarter-c160-32to128-rm1-rp3', channels: 160, latent: 32, pairs: 5, motionRadius: 1, trackingRadius: 3 },
  { label: 'quarter-c160-32to128-rm4-rp12', channels: 160, latent: 32, pairs: 5, motionRadius: 4, trackingRadius: 12 },
  { label: 'full-c640-64to256-rm1-rp3', channels: 640, latent: 64, pairs: 5, motionRadius: 1, trackingRadius: 3 },
  { label: 'full-c640-64to256-rm4-rp12', channels: 640, latent: 64, pairs: 5, motionRadius: 4, trackingRadius: 12 },
];
const STRATEGIES: readonly Strategy[] = ['separable', 'gather', 'step'];

/** Pseudo-random but fixed: pairs spread over the grid, targets 10 cells away. */
function pairsOf(c: Case): { handles: [number, number][]; targets: [number, number][] } {
  const size = c.latent * 4;
  const handles = Array.from({ length: c.pairs }, (_, i) => [Math.floor(((i + 1) * size) / (c.pairs + 2)), Math.floor(((c.pairs - i) * size) / (c.pairs + 2))] as [number, number]);
  return { handles, targets: handles.map(([r, col]) => [r + 6, col + 8] as [number, number]) };
}

/** Bilinear taps of each pair's shifted (2r_m+2)² patch as [N, K] index/weight arrays. */
function tapFeeds(c: Case): Record<string, Float32Array | BigInt64Array> {
  const k = 2 * c.motionRadius + 2;
  const size = c.latent * 4;
  const { handles } = pairsOf(c);
  const feeds: Record<string, Float32Array | BigInt64Array> = {};
  for (const axis of [0, 1]) {
    const i0 = new BigInt64Array(c.pairs * k);
    const i1 = new BigInt64Array(c.pairs * k);
    const w0 = new Float32Array(c.pairs * k);
    const w1 = new Float32Array(c.pairs * k);
    handles.forEach((p, n) => {
      const start = p[axis]! - c.motionRadius + 2.3;
      for (let i = 0; i < k; i++) {
        i0[n * k + i] = BigInt(Math.min(Math.floor(start) + i, size - 1));
        i1[n * k + i] = BigInt(Math.min(Math.floor(start) + i + 1, size - 1));
        w0[n * k + i] = 0.7;
        w1[n * k + i] = 0.3;
      }
    });
    Object.assign(feeds, { [`i0_${axis}`]: i0, [`i1_${axis}`]: i1, [`w0_${axis}`]: w0, [`w1_${axis}`]: w1 });
  }
  return feeds;
}

function buildGraph(c: Case, strategy: Strategy): { graph: Graph; feeds: Feeds } {
  const g = new Graph(`drag-${strategy}`);
  const size = c.latent * 4;
  const features = g.input('features', 'float32', [1, c.channels, c.latent, c.latent]);
  let loss: Value;
  let feeds: Feeds = {};
  if (strategy === 'step') {
    const config: DragGraphConfig = {
      variant: 'clipdrag',
      pairs: c.pairs,
      channels: c.channels,
      motionRadius: c.motionRadius,
      trackingRadius: c.trackingRadius,
      supervision: [size, size],
    };
    const { handles, targets } = pairsOf(c);
    const reference = referenceFeatureInputs(g, config, 'float32');
    loss = buildDragStep(featureGrid(features, config.supervision), reference, config).loss;
    feeds = stepFeeds(config, { handles, handlesInit: handles, targets }, 'fast');
  } else {
    const k = 2 * c.motionRadius + 2;
    const taps = [0, 1].map((axis) => ({
      index0: g.input(`i0_${axis}`, 'int64', [c.pairs, k]),
      index1: g.input(`i1_${axis}`, 'int64', [c.pairs, k]),
      weight0: g.input(`w0_${axis}`, 'float32', [c.pairs, k]),
      weight1: g.input(`w1_${axis}`, 'float32', [c.pairs, k]),
    }));
    const patches = strategy === 'separable' ? samplePatches(featureGrid(features, [size, size]), taps[0]!, taps[1]!) : gatherPatches(features, size, taps[0]!, taps[1]!);
    loss = reduceSum(abs(sub(patches, 0.1)), [0, 1, 2, 3], false);
    feeds = tapFeeds(c);
  }
  const [dFeatures] = grad(loss, [features]);
  g.output('loss', loss);
  g.output('d_features', dFeatures!);
  return { graph: g, feeds };
}

type Taps = { index0: Value; index1: Value; weight0: Value; weight1: Value };

/** The alternative: corners gathered from the materialised, flattened supervision-size map. */
function gatherPatches(features: Value, size: number, rows: Taps, cols: Taps): Value {
  const c = features.shape[1]!;
  const [n, k] = rows.index0.shape as [number, number];
  const flat = reshape(resizeBilinear(features, [size, size]), [c, size * size]);
  const corner = (r: Value, col: Value) => add(mul(unsqueeze(r, [2]), size), unsqueeze(col, [1]));
  const weight = (r: Value, col: Value) => mul(unsqueeze(r, [2]), unsqueeze(col, [1]));
  const indices = concat(
    [corner(rows.index0, cols.index0), corner(rows.index1, cols.index0), corner(rows.index0, cols.index1), corner(rows.index1, cols.index1)].map((v) => unsqueeze(v, [0])),
    0,
  );
  const weights = concat(
    [weight(rows.weight0, cols.weight0), weight(rows.weight1, cols.weight0), weight(rows.weight0, cols.weight1), weight(rows.weight1, cols.weight1)].map((v) => unsqueeze(v, [0])),
    0,
  );
  const picked = gather(flat, reshape(indices, [4 * n * k * k]), 1);
  const summed = reduceSum(mul(reshape(picked, [c, 4, n, k, k]), weights), [1], false);
  return transpose(summed, [1, 0, 2, 3]);
}

export const benchmark: Benchmark<SamplingConfiguration> = {
  description: 'drag loss gradient w.r.t. latent-resolution features (N = 5 pairs): folded separable sampling vs gather/scatter on the upsampled map, and the whole drag step',
  configurations: () =>
    SIZES.flatMap(({ label, ...size }) => STRATEGIES.map((strategy) => ({ name: `${label}-${strategy}`, strategy, ...size }))),
  async measure(config, context) {
    const { graph, feeds } = buildGraph(config, config.strategy);
    const model = serializeGraph(graph);
    const session = await ort.InferenceSession.create(model.bytes, { graphOptimizationLevel: 'all' });
    const inputs: Record<string, ort.Tensor> = {};
    let seed = 11;
    for (const value of graph.inputs) {
      const data = feeds[value.name] ?? Float32Array.from({ length: value.size }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
      inputs[value.name] = new ort.Tensor(value.dtype as 'float32', data as Float32Array, [...value.shape]);
    }
    const timing = await timeRepeated(() => session.run(inputs), context);
    await session.release();
    return { runMs: round(timing.medianMs, 1), minMs: round(timing.minMs, 1) };
  },
};
