/**
 * The UNet's architecture as data: channels, heads and layer counts of every block, derived from a
 * diffusers UNet2DConditionModel config the way diffusers derives them. Building code walks this plan;
 * callers use it to size things without building a graph (transformer-block count for mutual
 * self-attention, the list of LoRA adapters, feature shapes).
 */
import { ModelConfigError, type UNet2DConditionConfig } from '../config';

const DOWN_BLOCKS = ['CrossAttnDownBlock2D', 'DownBlock2D'] as const;
const UP_BLOCKS = ['CrossAttnUpBlock2D', 'UpBlock2D'] as const;
const MID_BLOCK = 'UNetMidBlock2DCrossAttn';

export interface TransformerPlan {
  readonly heads: number;
  readonly headDim: number;
  /** Transformer2DModel in/out channels (= the block's channels). */
  readonly channels: number;
  /** BasicTransformerBlocks per Transformer2DModel. */
  readonly depth: number;
  readonly crossAttentionDim: number;
  readonly useLinearProjection: boolean;
}

export interface DownBlockPlan {
  readonly type: (typeof DOWN_BLOCKS)[number];
  readonly inChannels: number;
  readonly outChannels: number;
  readonly layers: number;
  /** Null for blocks without attention (DownBlock2D). */
  readonly transformer: TransformerPlan | null;
  readonly downsample: boolean;
}

export interface MidBlockPlan {
  readonly channels: number;
  readonly transformer: TransformerPlan;
  readonly outputScale: number;
}

export interface UpBlockPlan {
  readonly type: (typeof UP_BLOCKS)[number];
  /** Channels coming from the block below (the previous up block or the mid block). */
  readonly prevOutputChannels: number;
  readonly outChannels: number;
  /** Channels of the skip connection each resnet concatenates, in execution order. */
  readonly skipChannels: readonly number[];
  readonly layers: number;
  readonly transformer: TransformerPlan | null;
  readonly upsample: boolean;
}

export interface UNetPlan {
  readonly config: UNet2DConditionConfig;
  readonly timeChannels: number;
  readonly timeEmbedDim: number;
  readonly down: readonly DownBlockPlan[];
  readonly mid: MidBlockPlan;
  readonly up: readonly UpBlockPlan[];
  /** BasicTransformerBlocks in one forward (16 for SD-1.5), numbered in execution order. */
  readonly transformerBlocks: number;
  /** Spatial down-scaling from latent to the innermost block (8 for SD-1.5). */
  readonly downscale: number;
}

function unsupported(config: UNet2DConditionConfig, what: string): never {
  throw new ModelConfigError(
    typeof config.raw._name_or_path === 'string' ? config.raw._name_or_path : 'unet/config.json',
    `${what} is not supported by this UNet (Stable Diffusion 1.x architecture)`,
  );
}

/** Rejects config features outside the SD-1.x family, so an unsupported model fails before building. */
function checkSupported(c: UNet2DConditionConfig): void {
  const needNull: [string, unknown][] = [
    ['class_embed_type', c.classEmbedType],
    ['addition_embed_type', c.additionEmbedType],
    ['encoder_hid_dim_type', c.encoderHidDimType],
    ['time_cond_proj_dim', c.timeCondProjDim],
    ['timestep_post_act', c.timestepPostAct],
    ['time_embedding_act_fn', c.timeEmbeddingActFn],
    ['cross_attention_norm', c.crossAttentionNorm],
  ];
  for (const [key, value] of needNull) if (value !== null) unsupported(c, `${key} = ${JSON.stringify(value)}`);
  if (c.actFn !== 'silu') unsupported(c, `act_fn "${c.actFn}"`);
  if (c.timeEmbeddingType !== 'positional') unsupported(c, `time_embedding_type "${c.timeEmbeddingType}"`);
  if (c.resnetTimeScaleShift !== 'default') unsupported(c, `resnet_time_scale_shift "${c.resnetTimeScaleShift}"`);
  if (c.resnetSkipTimeAct) unsupported(c, 'resnet_skip_time_act');
  if (c.attentionType !== 'default') unsupported(c, `attention_type "${c.attentionType}"`);
  if (c.dualCrossAttention) unsupported(c, 'dual_cross_attention');
  if (c.onlyCrossAttention.some(Boolean) || c.midBlockOnlyCrossAttention) unsupported(c, 'only_cross_attention');
  if (c.normNumGroups === null) unsupported(c, 'norm_num_groups = null');
  if (c.midBlockType !== MID_BLOCK) unsupported(c, `mid_block_type ${JSON.stringify(c.midBlockType)}`);
  if (c.convInKernel % 2 === 0 || c.convOutKernel % 2 === 0) unsupported(c, 'an even conv_in/conv_out kernel');
  for (const t of c.downBlockTypes) if (!(DOWN_BLOCKS as readonly string[]).includes(t)) unsupported(c, `down block type ${t}`);
  for (const t of c.upBlockTypes) if (!(UP_BLOCKS as readonly string[]).includes(t)) unsupported(c, `up block type ${t}`);
  if (typeof c.raw.reverse_transformer_layers_per_block === 'object' && c.raw.reverse_transformer_layers_per_block !== null) {
    unsupported(c, 'reverse_transformer_layers_per_block');
  }
}

export function planUNet(config: UNet2DConditionConfig): UNetPlan {
  checkSupported(config);
  const channels = config.blockOutChannels;
  const n = channels.length;
  const transformer = (c: number, heads: number, depth: number, crossDim: number): TransformerPlan => {
    if (c % heads !== 0) unsupported(config, `${c} channels split into ${heads} heads`);
    return { heads, headDim: c / heads, channels: c, depth, crossAttentionDim: crossDim, useLinearProjection: config.useLinearProjection };
  };

  const down: DownBlockPlan[] = [];
  let blocks = 0;
  for (let i = 0; i < n; i++) {
    const type = config.downBlockTypes[i] as DownBlockPlan['type'];
    const outChannels = channels[i]!;
    const layers = config.layersPerBlock[i]!;
    const t =
      type === 'CrossAttnDownBlock2D'
        ? transformer(outChannels, config.attentionHeads[i]!, config.transformerLayersPerBlock[i]!, config.crossAttentionDim[i]!)
        : null;
    if (t) blocks += layers * t.depth;
    down.push({ type, inChannels: i === 0 ? channels[0]! : channels[i - 1]!, outChannels, layers, transformer: t, downsample: i < n - 1 });
  }

  const last = n - 1;
  const midChannels = channels[last]!;
  const mid: MidBlockPlan = {
    channels: midChannels,
    transformer: transformer(midChannels, config.attentionHeads[last]!, config.transformerLayersPerBlock[last]!, config.crossAttentionDim[last]!),
    outputScale: config.midBlockScaleFactor,
  };
  blocks += mid.transformer.depth;

  // The skip connections, in the order the up path consumes them (last pushed first).
  const skips: number[] = [channels[0]!];
  for (const d of down) {
    for (let l = 0; l < d.layers; l++) skips.push(d.outChannels);
    if (d.downsample) skips.push(d.outChannels);
  }

  const up: UpBlockPlan[] = [];
  let prevOutputChannels = midChannels;
  for (let i = 0; i < n; i++) {
    const r = last - i; // the mirrored down block
    const type = config.upBlockTypes[i] as UpBlockPlan['type'];
    const outChannels = channels[r]!;
    const layers = config.layersPerBlock[r]! + 1;
    const skipChannels: number[] = [];
    for (let l = 0; l < layers; l++) {
      const skip = skips.pop();
      if (skip === undefined) unsupported(config, 'an up path that consumes more skip connections than the down path makes');
      skipChannels.push(skip);
    }
    const t =
      type === 'CrossAttnUpBlock2D'
        ? transformer(outChannels, config.attentionHeads[r]!, config.transformerLayersPerBlock[r]!, config.crossAttentionDim[r]!)
        : null;
    if (t) blocks += layers * t.depth;
    up.push({ type, prevOutputChannels, outChannels, skipChannels, layers, transformer: t, upsample: i < n - 1 });
    prevOutputChannels = outChannels;
  }
  if (skips.length !== 0) unsupported(config, 'an up path that leaves skip connections unused');

  return {
    config,
    timeChannels: channels[0]!,
    timeEmbedDim: config.timeEmbeddingDim,
    down,
    mid,
    up,
    transformerBlocks: blocks,
    downscale: 2 ** down.filter((d) => d.downsample).length,
  };
}

/** Output names of the DragDiffusion feature taps: mid block, then every up block's output. */
export function featureNames(plan: UNetPlan): string[] {
  return ['feat_0_mid', ...plan.up.map((_, i) => `feat_${i + 1}_up${i}`)];
}

export interface TransformerBlockSite {
  /** Module path of the BasicTransformerBlock, e.g. `up_blocks.2.attentions.0.transformer_blocks.0`. */
  readonly path: string;
  /** Position in execution order (the index mutual self-attention's `start_layer` counts). */
  readonly index: number;
  readonly transformer: TransformerPlan;
}

/** Every BasicTransformerBlock of the UNet, in execution order: down blocks, mid block, up blocks. */
export function transformerBlockSites(plan: UNetPlan): TransformerBlockSite[] {
  const sites: TransformerBlockSite[] = [];
  const addAll = (prefix: string, layers: number, t: TransformerPlan | null): void => {
    if (!t) return;
    for (let l = 0; l < layers; l++) {
      for (let d = 0; d < t.depth; d++) {
        sites.push({ path: `${prefix}.attentions.${l}.transformer_blocks.${d}`, index: sites.length, transformer: t });
      }
    }
  };
  plan.down.forEach((b, i) => addAll(`down_blocks.${i}`, b.layers, b.transformer));
  addAll('mid_block', 1, plan.mid.transformer);
  plan.up.forEach((b, i) => addAll(`up_blocks.${i}`, b.layers, b.transformer));
  return sites;
}

/** A linear layer that takes a LoRA adapter: its module path and its weight's [out, in] size. */
export interface LoraTarget {
  readonly module: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** The projections of every attention that get LoRA adapters (to_q, to_k, to_v, to_out.0 of attn1 and attn2). */
export function loraTargets(plan: UNetPlan): LoraTarget[] {
  const out: LoraTarget[] = [];
  for (const { path, transformer: t } of transformerBlockSites(plan)) {
    const inner = t.heads * t.headDim;
    for (const [attn, contextDim] of [['attn1', t.channels], ['attn2', t.crossAttentionDim]] as const) {
      const m = `${path}.${attn}`;
      out.push({ module: `${m}.to_q`, inFeatures: t.channels, outFeatures: inner });
      out.push({ module: `${m}.to_k`, inFeatures: contextDim, outFeatures: inner });
      out.push({ module: `${m}.to_v`, inFeatures: contextDim, outFeatures: inner });
      out.push({ module: `${m}.to_out.0`, inFeatures: inner, outFeatures: t.channels });
    }
  }
  return out;
}

/** The feature tap shapes for a latent size, without building a graph: name → [B, C, h, w]. */
export function featureShapes(plan: UNetPlan, batch: number, height: number, width: number): Record<string, number[]> {
  const sizes: [number, number][] = [[height, width]];
  for (const d of plan.down) {
    const [h, w] = sizes[sizes.length - 1]!;
    if (d.downsample) sizes.push([Math.ceil(h / 2), Math.ceil(w / 2)]);
  }
  const names = featureNames(plan);
  const out: Record<string, number[]> = {};
  let level = sizes.length - 1;
  out[names[0]!] = [batch, plan.mid.channels, ...sizes[level]!];
  plan.up.forEach((u, i) => {
    if (u.upsample) level--;
    out[names[i + 1]!] = [batch, u.outChannels, ...sizes[level]!];
  });
  return out;
}
