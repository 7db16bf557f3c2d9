/**
 * The UNet's levels: CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, and
 * CrossAttnUpBlock2D / UpBlock2D. Down blocks push their outputs onto the skip stack; up blocks pop
 * them (last pushed first) and concatenate them on the channel axis before each resnet.
 */
import type { Value } from '../../engine/graph';
import { concat } from '../../engine/ops';
import type { UNetBuildContext } from './context';
import type { DownBlockPlan, UpBlockPlan } from './plan';
import { downsample, resnetBlock, upsample } from './resnet';
import { transformer2d } from './transformer';

/** Runs down_blocks.<index>; pushes every resnet(+attention) output and the downsampled map onto `skips`. */
export function downBlock(ctx: UNetBuildContext, x: Value, plan: DownBlockPlan, index: number, skips: Value[]): Value {
  const { graph } = ctx;
  return graph.scope('down_blocks', () =>
    graph.scope(index, () => {
      let h = x;
      for (let l = 0; l < plan.layers; l++) {
        h = graph.scope('resnets', () => graph.scope(l, () => resnetBlock(ctx, h, plan.outChannels)));
        if (plan.transformer) {
          const t = plan.transformer;
          h = graph.scope('attentions', () => graph.scope(l, () => transformer2d(ctx, h, t)));
        }
        skips.push(h);
      }
      if (plan.downsample) {
        h = downsample(ctx, h);
        skips.push(h);
      }
      return h;
    }),
  );
}

/** mid_block: resnet, then (attention, resnet) per transformer layer. */
export function midBlock(ctx: UNetBuildContext, x: Value): Value {
  const { graph, plan } = ctx;
  const mid = plan.mid;
  return graph.scope('mid_block', () => {
    const resnet = (i: number, v: Value): Value =>
      graph.scope('resnets', () => graph.scope(i, () => resnetBlock(ctx, v, mid.channels, mid.outputScale)));
    let h = resnet(0, x);
    h = graph.scope('attentions', () => graph.scope(0, () => transformer2d(ctx, h, mid.transformer)));
    return resnet(1, h);
  });
}

/**
 * Runs up_blocks.<index>, consuming its skip connections from `skips`. The upsampler resizes to the
 * spatial size of the next skip connection (2× unless a down level had an odd size), as diffusers does.
 */
export function upBlock(ctx: UNetBuildContext, x: Value, plan: UpBlockPlan, index: number, skips: Value[]): Value {
  const { graph } = ctx;
  return graph.scope('up_blocks', () =>
    graph.scope(index, () => {
      let h = x;
      for (let l = 0; l < plan.layers; l++) {
        const skip = skips.pop();
        if (!skip) throw new Error(`up_blocks.${index}: no skip connection left for resnet ${l}`);
        h = graph.scope('resnets', () => graph.scope(l, () => resnetBlock(ctx, concat([h, skip], 1), plan.outChannels)));
        if (plan.transformer) {
          const t = plan.transformer;
          h = graph.scope('attentions', () => graph.scope(l, () => transformer2d(ctx, h, t)));
        }
      }
      if (plan.upsample) {
        const next = skips[skips.length - 1];
        if (!next) throw new Error(`up_blocks.${index}: no skip connection to size the upsampler`);
        h = upsample(ctx, h, [next.shape[2]!, next.shape[3]!]);
      }
      return h;
    }),
  );
}
