/**
 * UNet2DConditionModel (Stable Diffusion 1.x) on the graph engine, driven by the diffusers config.
 *
 * Besides the noise prediction `eps`, the forward exposes DragDiffusion's feature taps: the mid block's
 * output and every up block's output (after its upsampler). Options add LoRA adapters as graph inputs
 * and switch transformer blocks from a given execution index on to mutual self-attention.
 */
import { Graph, type Value } from '../../engine/graph';
import { cast, groupNorm, mul, reshape, silu, sub } from '../../engine/ops';
import { formatShape } from '../../engine/shape';
import type { WeightBinder } from '../weights';
import { DEFAULT_ATTENTION_CHUNK_BYTES } from './attention';
import { downBlock, midBlock, upBlock } from './blocks';
import type { UNetBuildContext } from './context';
import { sinusoidalTimestepEmbedding, timestepEmbeddingMlp } from './embeddings';
import { LoraInputs, type LoraAdapter, type LoraOptions } from './lora';
import { featureNames, type UNetPlan } from './plan';
import { conv } from './resnet';

/** A UNet ready to be built: its architecture and where its weights come from. */
export interface UNetModel {
  readonly plan: UNetPlan;
  readonly weights: WeightBinder;
}

export interface UNetInputs {
  /** Noisy latent [B, in_channels, h, w]. */
  readonly sample: Value;
  /** float32 [B], or a scalar (or [1]) shared by every row, so one graph serves every timestep. */
  readonly timestep: Value;
  /** Text embedding [B, tokens, cross_attention_dim]. */
  readonly encoderHiddenStates: Value;
}

export interface MutualSelfAttentionOptions {
  /**
   * First transformer block (execution order: down, mid, up; 10 for SD-1.5's up_blocks[2]) whose
   * self-attention lets each [source, edited] row pair attend to the source row's keys and values.
   */
  readonly startLayer: number;
}

export interface UNetForwardOptions {
  readonly lora?: LoraOptions;
  readonly mutualSelfAttention?: MutualSelfAttentionOptions;
  /**
   * Attention computes at most this many bytes of scores at once, running longer query sequences in
   * chunks (faster on CPU, less transient memory). Default 4 MiB; 0 computes every attention whole.
   */
  readonly attentionChunkBytes?: number;
}

export interface UNetForward {
  /** float32, whatever the weights' dtype (so are the features). */
  readonly eps: Value;
  /** Feature taps by name: feat_0_mid, feat_1_up0, … (see `featureNames`). */
  readonly features: Readonly<Record<string, Value>>;
  /** LoRA adapter inputs in execution order (empty without `lora`). */
  readonly lora: readonly LoraAdapter[];
}

function checkInputs(plan: UNetPlan, { sample, timestep, encoderHiddenStates }: UNetInputs): void {
  const c = plan.config;
  const bad = (what: string, v: Value, expected: string): never => {
    throw new Error(`UNet input ${what} has shape ${formatShape(v.shape)}, expected ${expected}`);
  };
  if (sample.rank !== 4 || sample.shape[1] !== c.inChannels) bad('sample', sample, `[batch, ${c.inChannels}, height, width]`);
  const batch = sample.shape[0]!;
  const [eb, , ed] = encoderHiddenStates.shape;
  if (encoderHiddenStates.rank !== 3 || eb !== batch || ed !== c.crossAttentionDim[0]) {
    bad('encoder_hidden_states', encoderHiddenStates, `[${batch}, tokens, ${c.crossAttentionDim[0]}]`);
  }
  const rows = timestep.rank === 0 ? 1 : timestep.shape[0]!;
  if (timestep.rank > 1 || (rows !== 1 && rows !== batch)) bad('timestep', timestep, `[${batch}], [1] or a scalar`);
  for (const v of [sample, timestep, encoderHiddenStates]) {
    if (v.dtype !== 'float32') throw new Error(`UNet input ${v.name} must be float32, got ${v.dtype}`);
  }
}

/** Builds the UNet forward into `graph` on the given input values. */
export function unetForward(graph: Graph, model: UNetModel, inputs: UNetInputs, options: UNetForwardOptions = {}): UNetForward {
  const { plan } = model;
  const config = plan.config;
  checkInputs(plan, inputs);
  const start = options.mutualSelfAttention?.startLayer ?? null;
  if (start !== null && (!Number.isInteger(start) || start < 0 || start >= plan.transformerBlocks)) {
    throw new Error(`mutual self-attention start layer ${start} is outside 0..${plan.transformerBlocks - 1}`);
  }
  if (start !== null && inputs.sample.shape[0]! % 2 !== 0) {
    throw new Error(`mutual self-attention needs a batch of [source, edited] pairs, got batch ${inputs.sample.shape[0]}`);
  }
  const w = model.weights.scoped(graph);
  // The model computes in its weights' dtype; inputs and outputs stay float32 at its boundary.
  const dtype = model.weights.dtype;

  const timeAct = graph.scope('time_embedding', () => {
    // Sinusoids of timesteps up to 1000 need float32 arguments; the MLP runs in the model's dtype.
    const t = sinusoidalTimestepEmbedding(inputs.timestep, plan.timeChannels, config.flipSinToCos, config.freqShift);
    return silu(timestepEmbeddingMlp(cast(t, dtype), w, plan.timeEmbedDim));
  });
  const context = cast(inputs.encoderHiddenStates, dtype);
  const ctx: UNetBuildContext = {
    graph,
    w,
    plan,
    groups: config.normNumGroups!,
    normEps: config.normEps,
    timeAct,
    encoderHiddenStates: {
      value: reshape(context, [-1, context.shape[2]!]),
      batch: inputs.encoderHiddenStates.shape[0]!,
      tokens: inputs.encoderHiddenStates.shape[1]!,
    },
    lora: options.lora ? new LoraInputs(graph, options.lora) : null,
    mutualFromBlock: start,
    attentionChunkBytes: options.attentionChunkBytes ?? DEFAULT_ATTENTION_CHUNK_BYTES,
    counter: { next: 0 },
  };

  const sample = cast(inputs.sample, dtype);
  let h = config.centerInputSample ? sub(mul(sample, 2), 1) : sample;
  h = conv(ctx, 'conv_in', h, config.blockOutChannels[0]!, config.convInKernel);
  const skips: Value[] = [h];
  plan.down.forEach((block, i) => (h = downBlock(ctx, h, block, i, skips)));
  h = midBlock(ctx, h);
  const names = featureNames(plan);
  const features: Record<string, Value> = { [names[0]!]: cast(h, 'float32') };
  plan.up.forEach((block, i) => {
    h = upBlock(ctx, h, block, i, skips);
    features[names[i + 1]!] = cast(h, 'float32');
  });

  const c0 = config.blockOutChannels[0]!;
  const normed = graph.scope('conv_norm_out', () => groupNorm(h, ctx.groups, w('weight', [c0]), w('bias', [c0]), config.normEps));
  const eps = conv(ctx, 'conv_out', silu(normed), config.outChannels, config.convOutKernel);
  if (ctx.counter.next !== plan.transformerBlocks) {
    throw new Error(`built ${ctx.counter.next} transformer blocks, the plan has ${plan.transformerBlocks}`);
  }
  return { eps: cast(eps, 'float32'), features, lora: ctx.lora?.adapters ?? [] };
}

export interface UNetGraphSpec {
  readonly batch: number;
  /** Latent size (image size / 8 for SD). */
  readonly height: number;
  readonly width: number;
  /** 'batch': input `timestep` is float32 [batch]; 'scalar': float32 [] shared by all rows (default). */
  readonly timestep?: 'batch' | 'scalar';
  /** Text tokens of encoder_hidden_states (77 for CLIP). */
  readonly tokens?: number;
  /** Graph outputs: 'eps' and/or feature names (default ['eps']). */
  readonly outputs?: readonly string[];
  readonly lora?: LoraOptions;
  readonly mutualSelfAttention?: MutualSelfAttentionOptions;
  readonly attentionChunkBytes?: number;
}

export interface UNetGraph {
  readonly graph: Graph;
  readonly inputs: UNetInputs;
  readonly forward: UNetForward;
}

/**
 * A graph with inputs `sample`, `timestep`, `encoder_hidden_states` (and `<module>.lora_{A,B}.weight`
 * with LoRA) and the requested outputs. Checks that the model used every weight of its checkpoint.
 */
export function buildUNetGraph(model: UNetModel, spec: UNetGraphSpec, graph = new Graph('unet')): UNetGraph {
  const config = model.plan.config;
  const inputs: UNetInputs = {
    sample: graph.input('sample', 'float32', [spec.batch, config.inChannels, spec.height, spec.width]),
    timestep: graph.input('timestep', 'float32', spec.timestep === 'batch' ? [spec.batch] : []),
    encoderHiddenStates: graph.input('encoder_hidden_states', 'float32', [spec.batch, spec.tokens ?? 77, config.crossAttentionDim[0]!]),
  };
  const forward = unetForward(graph, model, inputs, spec);
  model.weights.assertAllBound(graph);
  const available: Record<string, Value> = { eps: forward.eps, ...forward.features };
  for (const name of spec.outputs ?? ['eps']) {
    const value = available[name];
    if (!value) throw new Error(`unknown UNet output ${name}; choose from ${Object.keys(available).join(', ')}`);
    graph.output(name, value);
  }
  return { graph, inputs, forward };
}

// Kept here too for callers that import it with the graph builders.
export { featureShapes } from './plan';
