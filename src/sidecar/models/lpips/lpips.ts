/**
 * LPIPS with the AlexNet trunk (`lpips.LPIPS(net='alex', version='0.1')`), the perceptual distance drag-editing
 * papers report as image fidelity (IF = 1 − LPIPS):
 *
 *   x → (x − shift) / scale → AlexNet `features` cut after each ReLU that follows a conv (5 taps) →
 *   per tap: unit-normalise over channels, squared difference, 1×1 conv to one channel (`lin{k}`), mean over
 *   the image → the sum over the taps.
 *
 * Weight names: the trunk as torchvision's AlexNet (`features.{0,3,6,8,10}.{weight,bias}`), the linear layers as
 * LPIPS saves them (`lin{k}.model.1.weight`, no bias). Inputs are images in [−1, 1] (the reference's
 * `normalize=False`), NCHW; forward only.
 */
import type { Value } from '../../engine/graph';
import { add, concat, conv2d, div, maxPool2d, mul, reduceMean, reduceSum, relu, slice, sqrt, sub } from '../../engine/ops';
import type { WeightBinder } from '../weights';

/** LPIPS's ScalingLayer: ImageNet statistics expressed for inputs in [−1, 1]. */
const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];
/** normalize_tensor's epsilon, added to the channel norm. */
const NORM_EPS = 1e-10;

interface ConvSpec {
  readonly index: number;
  readonly out: number;
  readonly kernel: number;
  readonly stride: number;
  readonly padding: number;
  /** A 3×3 stride-2 max pool before this conv. */
  readonly poolBefore: boolean;
}

/** AlexNet's `features` convolutions; each is followed by a ReLU whose output LPIPS taps. */
const ALEXNET_CONVS: readonly ConvSpec[] = [
  { index: 0, out: 64, kernel: 11, stride: 4, padding: 2, poolBefore: false },
  { index: 3, out: 192, kernel: 5, stride: 1, padding: 2, poolBefore: true },
  { index: 6, out: 384, kernel: 3, stride: 1, padding: 1, poolBefore: true },
  { index: 8, out: 256, kernel: 3, stride: 1, padding: 1, poolBefore: false },
  { index: 10, out: 256, kernel: 3, stride: 1, padding: 1, poolBefore: false },
];

export interface LpipsOutputs {
  /** LPIPS per image pair, [N, 1, 1, 1] (the reference's output shape). */
  readonly distance: Value;
  /** Each tap's contribution, [N, 1, 1, 1] each, in tap order (`retPerLayer`). */
  readonly perLayer: readonly Value[];
}

/** AlexNet's five LPIPS taps of `x` (already scaled). */
function alexnetTaps(weights: WeightBinder, x: Value): Value[] {
  const graph = x.graph;
  const w = weights.scoped(graph);
  const taps: Value[] = [];
  let h = x;
  let channels = x.shape[1]!;
  for (const spec of ALEXNET_CONVS) {
    if (spec.poolBefore) h = maxPool2d(h, 3, 2);
    const { out, kernel } = spec;
    h = graph.scope(`features.${spec.index}`, () =>
      relu(conv2d(h, w('weight', [out, channels, kernel, kernel]), w('bias', [out]), { stride: spec.stride, padding: spec.padding })),
    );
    channels = out;
    taps.push(h);
  }
  return taps;
}

function unitNormalise(x: Value): Value {
  return div(x, add(sqrt(reduceSum(mul(x, x), [1])), NORM_EPS));
}

/** LPIPS(in0, in1) for batches of images in [−1, 1], [N, 3, H, W] each. */
export function lpipsAlex(weights: WeightBinder, in0: Value, in1: Value): LpipsOutputs {
  const graph = in0.graph;
  if (in0.rank !== 4 || in0.shape[1] !== 3 || in1.shape.join() !== in0.shape.join()) {
    throw new Error(`LPIPS needs two images [N, 3, H, W] of one shape, got [${in0.shape.join(', ')}] and [${in1.shape.join(', ')}]`);
  }
  const shift = graph.constant(SHIFT, [1, 3, 1, 1], in0.dtype);
  const scale = graph.constant(SCALE, [1, 3, 1, 1], in0.dtype);
  // Both images through one trunk, as a batch of 2N.
  const n = in0.shape[0]!;
  const both = div(sub(concat([in0, in1], 0), shift), scale);
  const taps = alexnetTaps(weights, both);
  const w = weights.scoped(graph);
  const perLayer = taps.map((tap, k) => {
    const c = tap.shape[1]!;
    const f0 = unitNormalise(slice(tap, [0], [n], [0]));
    const f1 = unitNormalise(slice(tap, [n], [2 * n], [0]));
    const diff = mul(sub(f0, f1), sub(f0, f1));
    const lin = graph.scope(`lin${k}.model.1`, () => conv2d(diff, w('weight', [1, c, 1, 1])));
    return reduceMean(lin, [2, 3]);
  });
  let distance = perLayer[0]!;
  for (const layer of perLayer.slice(1)) distance = add(distance, layer);
  return { distance, perLayer };
}
