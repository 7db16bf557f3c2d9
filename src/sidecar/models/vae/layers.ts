/**
 * The VAE's building blocks (diffusers' ResnetBlock2D without a time embedding, Downsample2D,
 * Upsample2D, GroupNorm + activation), each binding its weights under the current module path.
 */
import type { Value } from '../../engine/graph';
import { add, conv2d, gelu, groupNorm, relu, resizeNearest, silu, type Conv2dOptions } from '../../engine/ops';
import type { ScopedWeights } from '../weights';

/** diffusers' VAE blocks all use GroupNorm with eps 1e-6 (a constant in its Encoder/Decoder). */
export const VAE_NORM_EPS = 1e-6;

export type Activation = (x: Value) => Value;

/** The activations diffusers' `get_activation` maps `act_fn` to. */
export function vaeActivation(actFn: string): Activation {
  switch (actFn) {
    case 'silu':
    case 'swish':
      return silu;
    case 'gelu':
      return (x) => gelu(x);
    case 'relu':
      return relu;
    default:
      throw new Error(`AutoencoderKL act_fn "${actFn}" is not supported (expected silu, swish, gelu or relu)`);
  }
}

export interface VaeBlockContext {
  readonly w: ScopedWeights;
  readonly groups: number;
  readonly act: Activation;
}

function channels(x: Value): number {
  return x.shape[1]!;
}

/** A k×k convolution named `name` (stride 1, "same" padding unless told otherwise). */
export function conv(
  ctx: VaeBlockContext,
  name: string,
  x: Value,
  outChannels: number,
  kernel: number,
  options: { stride?: number; padding?: Conv2dOptions['padding'] } = {},
): Value {
  const graph = x.graph;
  return graph.scope(name, () =>
    conv2d(x, ctx.w('weight', [outChannels, channels(x), kernel, kernel]), ctx.w('bias', [outChannels]), {
      stride: options.stride ?? 1,
      padding: options.padding ?? (kernel - 1) / 2,
    }),
  );
}

export function norm(ctx: VaeBlockContext, name: string, x: Value): Value {
  const c = channels(x);
  return x.graph.scope(name, () => groupNorm(x, ctx.groups, ctx.w('weight', [c]), ctx.w('bias', [c]), VAE_NORM_EPS));
}

/** ResnetBlock2D with no time embedding: the skip path gets a 1×1 `conv_shortcut` when widths differ. */
export function resnetBlock(ctx: VaeBlockContext, x: Value, outChannels: number): Value {
  let h = ctx.act(norm(ctx, 'norm1', x));
  h = conv(ctx, 'conv1', h, outChannels, 3);
  h = ctx.act(norm(ctx, 'norm2', h));
  h = conv(ctx, 'conv2', h, outChannels, 3);
  const skip = channels(x) === outChannels ? x : conv(ctx, 'conv_shortcut', x, outChannels, 1);
  return add(skip, h);
}

/**
 * Downsample2D as the VAE encoder builds it (`padding=0`): one zero row at the bottom and one zero
 * column at the right, then a stride-2 3×3 convolution — as a single Conv with asymmetric pads.
 */
export function downsample(ctx: VaeBlockContext, x: Value): Value {
  return conv(ctx, 'conv', x, channels(x), 3, { stride: 2, padding: [0, 0, 1, 1] });
}

/** Upsample2D: nearest-neighbour 2× then a 3×3 convolution. */
export function upsample(ctx: VaeBlockContext, x: Value): Value {
  const [, , h, w] = x.shape as [number, number, number, number];
  return conv(ctx, 'conv', resizeNearest(x, [h * 2, w * 2]), channels(x), 3);
}
