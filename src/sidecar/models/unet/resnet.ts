/** ResnetBlock2D with time conditioning, and the down/up samplers between UNet levels. */
import type { Value } from '../../engine/graph';
import { add, conv2d, div, groupNorm, linear, pad, reshape, resizeNearest, silu } from '../../engine/ops';
import type { UNetBuildContext } from './context';

/** GroupNorm + SiLU under `name`, with the context's groups and epsilon. */
function normAct(ctx: UNetBuildContext, name: string, x: Value): Value {
  const c = x.shape[1]!;
  return silu(ctx.graph.scope(name, () => groupNorm(x, ctx.groups, ctx.w('weight', [c]), ctx.w('bias', [c]), ctx.normEps)));
}

/** A k×k convolution with "same" padding under `name`. */
export function conv(ctx: UNetBuildContext, name: string, x: Value, outChannels: number, kernel: number, stride = 1, padding = (kernel - 1) / 2): Value {
  const inChannels = x.shape[1]!;
  return ctx.graph.scope(name, () =>
    conv2d(x, ctx.w('weight', [outChannels, inChannels, kernel, kernel]), ctx.w('bias', [outChannels]), { stride, padding }),
  );
}

/**
 * ResnetBlock2D under the current module path: x [B, Cin, H, W] → [B, outChannels, H, W]. The sum is
 * divided by `outputScale` (the mid block's mid_block_scale_factor; 1 in the SD down and up blocks).
 */
export function resnetBlock(ctx: UNetBuildContext, x: Value, outChannels: number, outputScale = 1): Value {
  const { graph, w } = ctx;
  const inChannels = x.shape[1]!;
  let h = conv(ctx, 'conv1', normAct(ctx, 'norm1', x), outChannels, 3);
  const timeDim = ctx.timeAct.shape[1]!;
  const t = graph.scope('time_emb_proj', () => linear(ctx.timeAct, w('weight', [outChannels, timeDim]), w('bias', [outChannels])));
  h = add(h, reshape(t, [t.shape[0]!, outChannels, 1, 1]));
  h = conv(ctx, 'conv2', normAct(ctx, 'norm2', h), outChannels, 3);
  const shortcut = inChannels === outChannels ? x : conv(ctx, 'conv_shortcut', x, outChannels, 1);
  const sum = add(shortcut, h);
  return outputScale === 1 ? sum : div(sum, outputScale);
}

/** Downsample2D under `downsamplers.0`: a stride-2 3×3 conv (asymmetric zero pad when padding is 0). */
export function downsample(ctx: UNetBuildContext, x: Value): Value {
  const padding = ctx.plan.config.downsamplePadding;
  const { graph } = ctx;
  return graph.scope('downsamplers', () =>
    graph.scope(0, () => {
      // diffusers pads right and bottom by one when the conv itself has no padding.
      const input = padding === 0 ? pad(x, [0, 0, 0, 0, 0, 0, 1, 1], 0) : x;
      return conv(ctx, 'conv', input, x.shape[1]!, 3, 2, padding);
    }),
  );
}

/** Upsample2D under `upsamplers.0`: nearest resize to `size` (2× or the skip's size), then a 3×3 conv. */
export function upsample(ctx: UNetBuildContext, x: Value, size: readonly [number, number]): Value {
  const { graph } = ctx;
  return graph.scope('upsamplers', () => graph.scope(0, () => conv(ctx, 'conv', resizeNearest(x, size), x.shape[1]!, 3)));
}
