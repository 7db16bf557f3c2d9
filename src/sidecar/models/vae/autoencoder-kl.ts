/**
 * diffusers' AutoencoderKL (the Stable Diffusion VAE) as engine graphs, built from its config.json and
 * bound to its checkpoint by the checkpoint's own key names.
 *
 * - `vaeEncode(image)` → the posterior's mean and log-variance (`latent_dist.mean` / `.logvar`), raw:
 *   the pipelines multiply the mean by `scaling_factor` themselves.
 * - `vaeDecode(z)` → the decoder's raw output (`decode(z).sample`, not clamped); pipelines pass
 *   `z / scaling_factor`.
 * - `vaeEncodeLatents` / `vaeDecodeImage` wrap both the way Stable Diffusion pipelines use them.
 */
import type { Graph, Value } from '../../engine/graph';
import { add, cast, clip, div, mul, slice, sub } from '../../engine/ops';
import type { AutoencoderKLConfig } from '../config';
import type { CheckpointWeights } from '../weights';
import { spatialSelfAttention, type VaeAttentionContext } from './attention';
import { conv, downsample, norm, resnetBlock, upsample, vaeActivation } from './layers';

export interface VaeModel {
  readonly config: AutoencoderKLConfig;
  readonly weights: CheckpointWeights;
}

export interface VaePosterior {
  /** `latent_dist.mean` [B, latent_channels, H/f, W/f]. */
  readonly mean: Value;
  /** `latent_dist.logvar`, clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution does. */
  readonly logvar: Value;
}

/** The spatial factor between image and latent: 2^(number of blocks − 1). */
export function vaeScaleFactor(config: AutoencoderKLConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

function requireBlockTypes(config: AutoencoderKLConfig): void {
  const bad = [
    ...config.downBlockTypes.filter((t) => t !== 'DownEncoderBlock2D').map((t) => `down block ${t}`),
    ...config.upBlockTypes.filter((t) => t !== 'UpDecoderBlock2D').map((t) => `up block ${t}`),
  ];
  if (bad.length > 0) {
    throw new Error(`AutoencoderKL: unsupported ${bad.join(', ')} (only DownEncoderBlock2D / UpDecoderBlock2D VAEs are supported)`);
  }
}

function context(graph: Graph, model: VaeModel): VaeAttentionContext {
  requireBlockTypes(model.config);
  return {
    w: model.weights.scoped(graph),
    groups: model.config.normNumGroups,
    act: vaeActivation(model.config.actFn),
    checkpoint: model.weights,
  };
}

/** UNetMidBlock2D without time embedding: resnet, then (attention, resnet) — attention optional. */
function midBlock(ctx: VaeAttentionContext, x: Value, addAttention: boolean): Value {
  const graph = x.graph;
  const c = x.shape[1]!;
  return graph.scope('mid_block', () => {
    let h = graph.scope('resnets', () => graph.scope(0, () => resnetBlock(ctx, x, c)));
    // diffusers sets the mid attention's head size to the block width: a single head.
    if (addAttention) h = graph.scope('attentions', () => graph.scope(0, () => spatialSelfAttention(ctx, h, 1)));
    return graph.scope('resnets', () => graph.scope(1, () => resnetBlock(ctx, h, c)));
  });
}

/**
 * Encoder + quant_conv: image [B, in_channels, H, W] (in [-1, 1]) → posterior. H and W must be
 * multiples of the scale factor.
 */
export function vaeEncode(model: VaeModel, image: Value): VaePosterior {
  const graph = image.graph;
  const { config } = model;
  const ctx = context(graph, model);
  const [, inChannels, height, width] = image.shape as [number, number, number, number];
  const factor = vaeScaleFactor(config);
  if (image.rank !== 4 || inChannels !== config.inChannels || height % factor !== 0 || width % factor !== 0) {
    throw new Error(
      `VAE encode: expected an image [B, ${config.inChannels}, H, W] with H and W multiples of ${factor}, got [${image.shape.join(', ')}]`,
    );
  }
  const channels = config.blockOutChannels;
  const moments = graph.scope('encoder', () => {
    let h = conv(ctx, 'conv_in', cast(image, model.weights.dtype), channels[0]!, 3);
    graph.scope('down_blocks', () => {
      channels.forEach((out, i) =>
        graph.scope(i, () => {
          graph.scope('resnets', () => {
            for (let j = 0; j < config.layersPerBlock; j++) h = graph.scope(j, () => resnetBlock(ctx, h, out));
          });
          if (i < channels.length - 1) h = graph.scope('downsamplers', () => graph.scope(0, () => downsample(ctx, h)));
        }),
      );
    });
    h = midBlock(ctx, h, config.midBlockAddAttention);
    h = ctx.act(norm(ctx, 'conv_norm_out', h));
    return conv(ctx, 'conv_out', h, 2 * config.latentChannels, 3);
  });
  // The posterior leaves in float32 whatever the weights' dtype (as the decoder's output does).
  const stats = cast(config.useQuantConv ? conv(ctx, 'quant_conv', moments, 2 * config.latentChannels, 1) : moments, 'float32');
  const l = config.latentChannels;
  return graph.scope('latent_dist', () => ({
    mean: slice(stats, [0], [l], [1]),
    logvar: clip(slice(stats, [l], [2 * l], [1]), -30, 20),
  }));
}

/** post_quant_conv + Decoder: latent [B, latent_channels, h, w] → image [B, out_channels, h·f, w·f]. */
export function vaeDecode(model: VaeModel, z: Value): Value {
  const graph = z.graph;
  const { config } = model;
  const ctx = context(graph, model);
  if (z.rank !== 4 || z.shape[1] !== config.latentChannels) {
    throw new Error(`VAE decode: expected a latent [B, ${config.latentChannels}, h, w], got [${z.shape.join(', ')}]`);
  }
  const zIn = cast(z, model.weights.dtype);
  const latent = config.usePostQuantConv ? conv(ctx, 'post_quant_conv', zIn, config.latentChannels, 1) : zIn;
  const reversed = [...config.blockOutChannels].reverse();
  return graph.scope('decoder', () => {
    let h = conv(ctx, 'conv_in', latent, reversed[0]!, 3);
    h = midBlock(ctx, h, config.midBlockAddAttention);
    graph.scope('up_blocks', () => {
      reversed.forEach((out, i) =>
        graph.scope(i, () => {
          graph.scope('resnets', () => {
            for (let j = 0; j < config.layersPerBlock + 1; j++) h = graph.scope(j, () => resnetBlock(ctx, h, out));
          });
          if (i < reversed.length - 1) h = graph.scope('upsamplers', () => graph.scope(0, () => upsample(ctx, h)));
        }),
      );
    });
    h = ctx.act(norm(ctx, 'conv_norm_out', h));
    return cast(conv(ctx, 'conv_out', h, config.outChannels, 3), 'float32');
  });
}

/**
 * Stable Diffusion's latents of an image in [-1, 1]: `latent_dist.mean · scaling_factor` (after
 * subtracting `shift_factor` for VAEs that define one).
 */
export function vaeEncodeLatents(model: VaeModel, image: Value): Value {
  const { mean } = vaeEncode(model, image);
  const { scalingFactor, shiftFactor } = model.config;
  return image.graph.scope('latents', () => mul(shiftFactor === null ? mean : sub(mean, shiftFactor), scalingFactor));
}

/**
 * The image of Stable Diffusion latents, as the pipelines turn it into pixels:
 * `clamp(decode(latents / scaling_factor (+ shift_factor)) / 2 + 0.5, 0, 1)` → [B, C, H, W] in [0, 1].
 */
export function vaeDecodeImage(model: VaeModel, latents: Value): Value {
  const { scalingFactor, shiftFactor } = model.config;
  const graph = latents.graph;
  const z = graph.scope('latents', () => {
    const unscaled = div(latents, scalingFactor);
    return shiftFactor === null ? unscaled : add(unscaled, shiftFactor);
  });
  const decoded = vaeDecode(model, z);
  return graph.scope('to_unit_range', () => clip(add(mul(decoded, 0.5), 0.5), 0, 1));
}

/**
 * Module paths of the decoder's blocks (each resnet, the mid attention, each upsampler): recompute
 * segments for the engine's `vjp` (`{ recompute: { scopes } }`), so a backward pass through the
 * decoder keeps only block boundaries instead of every full-resolution activation.
 */
export function vaeDecoderBlockScopes(config: AutoencoderKLConfig): string[] {
  const blocks = config.blockOutChannels.length;
  const scopes = ['decoder.mid_block.resnets.0', 'decoder.mid_block.resnets.1'];
  if (config.midBlockAddAttention) scopes.push('decoder.mid_block.attentions.0');
  for (let i = 0; i < blocks; i++) {
    for (let j = 0; j < config.layersPerBlock + 1; j++) scopes.push(`decoder.up_blocks.${i}.resnets.${j}`);
    if (i < blocks - 1) scopes.push(`decoder.up_blocks.${i}.upsamplers.0`);
  }
  return scopes;
}

/** Checkpoint key prefixes each half of the VAE reads, for the "unused tensor" check of a built graph. */
export const VAE_ENCODER_PREFIXES = ['encoder.', 'quant_conv.'] as const;
export const VAE_DECODER_PREFIXES = ['decoder.', 'post_quant_conv.'] as const;

/**
 * Throws naming the checkpoint tensors under `prefixes` that the graph did not bind: a checkpoint
 * whose architecture differs from its config.
 */
export function assertVaePartBound(model: VaeModel, graph: Graph, prefixes: readonly string[]): void {
  model.weights.assertAllBound(graph, (key) => !prefixes.some((p) => key.startsWith(p)));
}
