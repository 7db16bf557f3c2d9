/**
 * Typed, validated model configs parsed from the `config.json` files of
 * diffusers (UNet2DConditionModel, AutoencoderKL, DDIMScheduler) and
 * transformers (CLIPTextModel, CLIPModel) folders. Missing keys take the
 * defaults those libraries apply, so older or minimal hub configs parse to
 * the same values the reference code would use. Per-block settings that may
 * be written as one value or a list are normalised to one entry per down block.
 */
import { ConfigReader, ModelConfigError, type JsonObject } from './config-reader';

export { ModelConfigError } from './config-reader';

function expectClass(reader: ConfigReader, key: string, expected: readonly string[]): string {
  const actual = reader.optionalString(key);
  if (actual !== null && !expected.includes(actual)) {
    throw new ModelConfigError(reader.file, `is a ${actual} config, expected ${expected.join(' or ')}`);
  }
  return actual ?? expected[0]!;
}

function requireSameLength(file: string, what: Record<string, readonly unknown[]>): void {
  const entries = Object.entries(what);
  const [firstKey, first] = entries[0]!;
  for (const [key, list] of entries.slice(1)) {
    if (list.length !== first.length) {
      throw new ModelConfigError(file, `"${key}" has ${list.length} entries but "${firstKey}" has ${first.length}`);
    }
  }
}

// ---------------------------------------------------------------------------
// UNet2DConditionModel

export interface UNet2DConditionConfig {
  readonly className: string;
  readonly sampleSize: number | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly centerInputSample: boolean;
  readonly flipSinToCos: boolean;
  readonly freqShift: number;
  readonly downBlockTypes: readonly string[];
  readonly midBlockType: string | null;
  readonly upBlockTypes: readonly string[];
  readonly blockOutChannels: readonly number[];
  /** Resnet layers per down block (up blocks use reversed order plus one). */
  readonly layersPerBlock: readonly number[];
  readonly downsamplePadding: number;
  readonly midBlockScaleFactor: number;
  readonly actFn: string;
  /** Null means no output GroupNorm (diffusers allows it). */
  readonly normNumGroups: number | null;
  readonly normEps: number;
  /** Cross-attention context width per down block. */
  readonly crossAttentionDim: readonly number[];
  readonly transformerLayersPerBlock: readonly number[];
  /**
   * Number of attention heads per down block. SD-1.x stores this in the
   * misnamed `attention_head_dim` key; `num_attention_heads` wins when set.
   * Head size = block channels / heads. The mid block uses the last entry,
   * up blocks the reversed list.
   */
  readonly attentionHeads: readonly number[];
  readonly onlyCrossAttention: readonly boolean[];
  readonly midBlockOnlyCrossAttention: boolean;
  readonly dualCrossAttention: boolean;
  readonly useLinearProjection: boolean;
  readonly upcastAttention: boolean;
  readonly resnetTimeScaleShift: 'default' | 'scale_shift';
  readonly resnetSkipTimeAct: boolean;
  readonly resnetOutScaleFactor: number;
  readonly timeEmbeddingType: 'positional' | 'fourier';
  /** Width of the time embedding MLP output (time_embedding_dim, else 4 x block_out_channels[0]). */
  readonly timeEmbeddingDim: number;
  readonly timeEmbeddingActFn: string | null;
  readonly timestepPostAct: string | null;
  readonly timeCondProjDim: number | null;
  readonly convInKernel: number;
  readonly convOutKernel: number;
  readonly attentionType: string;
  readonly crossAttentionNorm: string | null;
  /** Conditioning extras SD-1.5 does not use; non-null values need architecture support. */
  readonly classEmbedType: string | null;
  readonly numClassEmbeds: number | null;
  readonly additionEmbedType: string | null;
  readonly encoderHidDim: number | null;
  readonly encoderHidDimType: string | null;
  readonly raw: JsonObject;
}

const SD_DOWN_BLOCKS = ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'];
const SD_UP_BLOCKS = ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'];

export function parseUNet2DConditionConfig(json: unknown, file = 'unet/config.json'): UNet2DConditionConfig {
  const r = ConfigReader.from(json, file);
  const className = expectClass(r, '_class_name', ['UNet2DConditionModel']);
  const downBlockTypes = r.stringList('down_block_types', SD_DOWN_BLOCKS);
  const upBlockTypes = r.stringList('up_block_types', SD_UP_BLOCKS);
  const blockOutChannels = r.positiveIntList('block_out_channels', [320, 640, 1280, 1280]);
  const blocks = downBlockTypes.length;
  requireSameLength(file, { down_block_types: downBlockTypes, up_block_types: upBlockTypes, block_out_channels: blockOutChannels });

  const headsKey = r.has('num_attention_heads') ? 'num_attention_heads' : 'attention_head_dim';
  const attentionHeads = r.positiveIntPerBlock(headsKey, 8, blocks);
  const onlyCrossAttention = r.boolPerBlock('only_cross_attention', false, blocks);
  const onlyCrossIsBool = typeof r.json.only_cross_attention === 'boolean' || r.json.only_cross_attention == null;
  const normNumGroups = r.json.norm_num_groups === null ? null : r.positiveInt('norm_num_groups', 32);
  if (normNumGroups !== null) {
    for (const c of blockOutChannels) {
      if (c % normNumGroups !== 0) {
        throw new ModelConfigError(file, `block_out_channels ${c} is not divisible by norm_num_groups ${normNumGroups}`);
      }
    }
  }
  for (const [i, heads] of attentionHeads.entries()) {
    if (blockOutChannels[i]! % heads !== 0) {
      throw new ModelConfigError(file, `block ${i}: ${blockOutChannels[i]} channels cannot be split into ${heads} attention heads`);
    }
  }
  return {
    className,
    sampleSize: r.optionalInt('sample_size', 1),
    inChannels: r.positiveInt('in_channels', 4),
    outChannels: r.positiveInt('out_channels', 4),
    centerInputSample: r.bool('center_input_sample', false),
    flipSinToCos: r.bool('flip_sin_to_cos', true),
    freqShift: r.number('freq_shift', 0),
    downBlockTypes,
    midBlockType: r.json.mid_block_type === null ? null : r.string('mid_block_type', 'UNetMidBlock2DCrossAttn'),
    upBlockTypes,
    blockOutChannels,
    layersPerBlock: r.positiveIntPerBlock('layers_per_block', 2, blocks),
    downsamplePadding: r.int('downsample_padding', 1),
    midBlockScaleFactor: r.number('mid_block_scale_factor', 1),
    actFn: r.string('act_fn', 'silu'),
    normNumGroups,
    normEps: r.number('norm_eps', 1e-5),
    crossAttentionDim: r.positiveIntPerBlock('cross_attention_dim', 1280, blocks),
    transformerLayersPerBlock: r.positiveIntPerBlock('transformer_layers_per_block', 1, blocks),
    attentionHeads,
    onlyCrossAttention,
    midBlockOnlyCrossAttention: r.has('mid_block_only_cross_attention')
      ? r.bool('mid_block_only_cross_attention', false)
      : onlyCrossIsBool && onlyCrossAttention[0] === true,
    dualCrossAttention: r.bool('dual_cross_attention', false),
    useLinearProjection: r.bool('use_linear_projection', false),
    upcastAttention: r.bool('upcast_attention', false),
    resnetTimeScaleShift: r.oneOf('resnet_time_scale_shift', ['default', 'scale_shift'], 'default'),
    resnetSkipTimeAct: r.bool('resnet_skip_time_act', false),
    resnetOutScaleFactor: r.number('resnet_out_scale_factor', 1),
    timeEmbeddingType: r.oneOf('time_embedding_type', ['positional', 'fourier'], 'positional'),
    timeEmbeddingDim: r.positiveInt('time_embedding_dim', blockOutChannels[0]! * 4),
    timeEmbeddingActFn: r.optionalString('time_embedding_act_fn'),
    timestepPostAct: r.optionalString('timestep_post_act'),
    timeCondProjDim: r.optionalInt('time_cond_proj_dim', 1),
    convInKernel: r.positiveInt('conv_in_kernel', 3),
    convOutKernel: r.positiveInt('conv_out_kernel', 3),
    attentionType: r.string('attention_type', 'default'),
    crossAttentionNorm: r.optionalString('cross_attention_norm'),
    classEmbedType: r.optionalString('class_embed_type'),
    numClassEmbeds: r.optionalInt('num_class_embeds', 1),
    additionEmbedType: r.optionalString('addition_embed_type'),
    encoderHidDim: r.optionalInt('encoder_hid_dim', 1),
    encoderHidDimType: r.optionalString('encoder_hid_dim_type'),
    raw: r.json,
  };
}

// ---------------------------------------------------------------------------
// AutoencoderKL

export interface AutoencoderKLConfig {
  readonly className: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly downBlockTypes: readonly string[];
  readonly upBlockTypes: readonly string[];
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: number;
  readonly actFn: string;
  readonly latentChannels: number;
  readonly normNumGroups: number;
  readonly sampleSize: number;
  /** Latents are multiplied by this after encoding (0.18215 for SD-1.x). */
  readonly scalingFactor: number;
  readonly shiftFactor: number | null;
  readonly forceUpcast: boolean;
  readonly useQuantConv: boolean;
  readonly usePostQuantConv: boolean;
  readonly midBlockAddAttention: boolean;
  readonly raw: JsonObject;
}

export function parseAutoencoderKLConfig(json: unknown, file = 'vae/config.json'): AutoencoderKLConfig {
  const r = ConfigReader.from(json, file);
  const className = expectClass(r, '_class_name', ['AutoencoderKL']);
  const downBlockTypes = r.stringList('down_block_types', ['DownEncoderBlock2D']);
  const upBlockTypes = r.stringList('up_block_types', ['UpDecoderBlock2D']);
  const blockOutChannels = r.positiveIntList('block_out_channels', [64]);
  requireSameLength(file, { block_out_channels: blockOutChannels, down_block_types: downBlockTypes, up_block_types: upBlockTypes });
  const normNumGroups = r.positiveInt('norm_num_groups', 32);
  for (const c of blockOutChannels) {
    if (c % normNumGroups !== 0) throw new ModelConfigError(file, `block_out_channels ${c} is not divisible by norm_num_groups ${normNumGroups}`);
  }
  return {
    className,
    inChannels: r.positiveInt('in_channels', 3),
    outChannels: r.positiveInt('out_channels', 3),
    downBlockTypes,
    upBlockTypes,
    blockOutChannels,
    layersPerBlock: r.positiveInt('layers_per_block', 1),
    actFn: r.string('act_fn', 'silu'),
    latentChannels: r.positiveInt('latent_channels', 4),
    normNumGroups,
    sampleSize: r.positiveInt('sample_size', 32),
    scalingFactor: r.number('scaling_factor', 0.18215),
    shiftFactor: r.has('shift_factor') ? r.number('shift_factor', 0) : null,
    forceUpcast: r.bool('force_upcast', true),
    useQuantConv: r.bool('use_quant_conv', true),
    usePostQuantConv: r.bool('use_post_quant_conv', true),
    midBlockAddAttention: r.bool('mid_block_add_attention', true),
    raw: r.json,
  };
}

// ---------------------------------------------------------------------------
// CLIP (transformers)

export interface ClipTextConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly projectionDim: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly maxPositionEmbeddings: number;
  readonly hiddenAct: string;
  readonly layerNormEps: number;
  readonly padTokenId: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly raw: JsonObject;
}

export interface ClipVisionConfig {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly projectionDim: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly numChannels: number;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly hiddenAct: string;
  readonly layerNormEps: number;
  readonly raw: JsonObject;
}

export interface ClipModelConfig {
  readonly textConfig: ClipTextConfig;
  readonly visionConfig: ClipVisionConfig;
  /** Width of the shared image/text embedding space. */
  readonly projectionDim: number;
  readonly logitScaleInitValue: number;
  readonly raw: JsonObject;
}

function requireHeadSplit(file: string, what: string, hidden: number, heads: number): void {
  if (hidden % heads !== 0) throw new ModelConfigError(file, `${what}hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`);
}

function readClipText(r: ConfigReader, prefix: string): ClipTextConfig {
  const hiddenSize = r.positiveInt('hidden_size', 512);
  const numAttentionHeads = r.positiveInt('num_attention_heads', 8);
  requireHeadSplit(r.file, prefix, hiddenSize, numAttentionHeads);
  return {
    vocabSize: r.positiveInt('vocab_size', 49408),
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size', 2048),
    projectionDim: r.positiveInt('projection_dim', 512),
    numHiddenLayers: r.positiveInt('num_hidden_layers', 12),
    numAttentionHeads,
    maxPositionEmbeddings: r.positiveInt('max_position_embeddings', 77),
    hiddenAct: r.string('hidden_act', 'quick_gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-5),
    padTokenId: r.int('pad_token_id', 1),
    bosTokenId: r.int('bos_token_id', 49406),
    eosTokenId: r.int('eos_token_id', 49407),
    raw: r.json,
  };
}

function readClipVision(r: ConfigReader, prefix: string): ClipVisionConfig {
  const hiddenSize = r.positiveInt('hidden_size', 768);
  const numAttentionHeads = r.positiveInt('num_attention_heads', 12);
  requireHeadSplit(r.file, prefix, hiddenSize, numAttentionHeads);
  const imageSize = r.positiveInt('image_size', 224);
  const patchSize = r.positiveInt('patch_size', 32);
  if (imageSize % patchSize !== 0) throw new ModelConfigError(r.file, `${prefix}image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  return {
    hiddenSize,
    intermediateSize: r.positiveInt('intermediate_size', 3072),
    projectionDim: r.positiveInt('projection_dim', 512),
    numHiddenLayers: r.positiveInt('num_hidden_layers', 12),
    numAttentionHeads,
    numChannels: r.positiveInt('num_channels', 3),
    imageSize,
    patchSize,
    hiddenAct: r.string('hidden_act', 'quick_gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-5),
    raw: r.json,
  };
}

/** Config of a stand-alone CLIPTextModel (e.g. SD's text_encoder/config.json). */
export function parseClipTextConfig(json: unknown, file = 'text_encoder/config.json'): ClipTextConfig {
  const r = ConfigReader.from(json, file);
  const modelType = r.optionalString('model_type');
  if (modelType !== null && modelType !== 'clip_text_model') {
    throw new ModelConfigError(file, `model_type is "${modelType}", expected "clip_text_model" (a CLIPTextModel config)`);
  }
  return readClipText(r, '');
}

/**
 * Config of a transformers CLIPModel. As in transformers, the legacy
 * `text_config_dict` / `vision_config_dict` keys replace `text_config` /
 * `vision_config` when present, and a missing section takes all defaults.
 */
export function parseClipModelConfig(json: unknown, file = 'config.json'): ClipModelConfig {
  const r = ConfigReader.from(json, file);
  const modelType = r.optionalString('model_type');
  if (modelType !== null && modelType !== 'clip') {
    throw new ModelConfigError(file, `model_type is "${modelType}", expected "clip" (a CLIPModel config)`);
  }
  const textSection = r.has('text_config_dict') ? 'text_config_dict' : 'text_config';
  const visionSection = r.has('vision_config_dict') ? 'vision_config_dict' : 'vision_config';
  const text = new ConfigReader(r.object(textSection), file);
  const vision = new ConfigReader(r.object(visionSection), file);
  return {
    textConfig: readClipText(text, `${textSection}.`),
    visionConfig: readClipVision(vision, `${visionSection}.`),
    projectionDim: r.positiveInt('projection_dim', 512),
    logitScaleInitValue: r.number('logit_scale_init_value', 2.6592),
    raw: r.json,
  };
}

// ---------------------------------------------------------------------------
// DDIM scheduler

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface DdimSchedulerConfig {
  /** Class the file was written for; DDIM reads any diffusers scheduler config, as from_config does. */
  readonly className: string;
  readonly numTrainTimesteps: number;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly betaSchedule: BetaSchedule;
  readonly trainedBetas: readonly number[] | null;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  readonly setAlphaToOne: boolean;
  readonly stepsOffset: number;
  readonly predictionType: 'epsilon' | 'v_prediction' | 'sample';
  readonly thresholding: boolean;
  readonly timestepSpacing: TimestepSpacing;
  readonly rescaleBetasZeroSnr: boolean;
}

/**
 * The scheduler DragDiffusion and CLIPDrag construct explicitly for SD-1.5,
 * whatever scheduler the model folder ships.
 */
export const SD15_DRAG_SCHEDULER_CONFIG: DdimSchedulerConfig = Object.freeze({
  className: 'DDIMScheduler',
  numTrainTimesteps: 1000,
  betaStart: 0.00085,
  betaEnd: 0.012,
  betaSchedule: 'scaled_linear',
  trainedBetas: null,
  clipSample: false,
  clipSampleRange: 1,
  setAlphaToOne: false,
  stepsOffset: 1,
  predictionType: 'epsilon',
  thresholding: false,
  timestepSpacing: 'leading',
  rescaleBetasZeroSnr: false,
});

export function parseDdimSchedulerConfig(json: unknown, file = 'scheduler/scheduler_config.json'): DdimSchedulerConfig {
  const r = ConfigReader.from(json, file);
  let trainedBetas: number[] | null = null;
  if (r.has('trained_betas')) {
    const v = r.json.trained_betas;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && x > 0 && x < 1)) {
      r.fail('trained_betas', 'a list of numbers in (0, 1)');
    }
    trainedBetas = [...(v as number[])];
  }
  const numTrainTimesteps = r.positiveInt('num_train_timesteps', 1000);
  if (trainedBetas !== null && trainedBetas.length !== numTrainTimesteps) {
    throw new ModelConfigError(file, `trained_betas has ${trainedBetas.length} entries, num_train_timesteps is ${numTrainTimesteps}`);
  }
  return {
    className: r.string('_class_name', 'DDIMScheduler'),
    numTrainTimesteps,
    betaStart: r.number('beta_start', 0.0001),
    betaEnd: r.number('beta_end', 0.02),
    betaSchedule: r.oneOf('beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2'], 'linear'),
    trainedBetas,
    clipSample: r.bool('clip_sample', true),
    clipSampleRange: r.number('clip_sample_range', 1),
    setAlphaToOne: r.bool('set_alpha_to_one', true),
    stepsOffset: r.int('steps_offset', 0),
    predictionType: r.oneOf('prediction_type', ['epsilon', 'v_prediction', 'sample'], 'epsilon'),
    thresholding: r.bool('thresholding', false),
    timestepSpacing: r.oneOf('timestep_spacing', ['leading', 'trailing', 'linspace'], 'leading'),
    rescaleBetasZeroSnr: r.bool('rescale_betas_zero_snr', false),
  };
}

// ---------------------------------------------------------------------------
// model_index.json

export interface ModelIndex {
  readonly className: string;
  /** Component name -> [library, class], e.g. unet -> ["diffusers", "UNet2DConditionModel"]; nulls for absent parts. */
  readonly components: Readonly<Record<string, readonly [string | null, string | null]>>;
}

export function parseModelIndex(json: unknown, file = 'model_index.json'): ModelIndex {
  const r = ConfigReader.from(json, file);
  const className = r.optionalString('_class_name');
  if (className === null) throw new ModelConfigError(file, 'has no "_class_name" (not a diffusers pipeline index)');
  const components: Record<string, readonly [string | null, string | null]> = {};
  for (const [key, value] of Object.entries(r.json)) {
    if (key.startsWith('_')) continue;
    if (Array.isArray(value) && value.length === 2 && value.every((v) => v === null || typeof v === 'string')) {
      components[key] = [value[0] as string | null, value[1] as string | null];
    }
  }
  return { className, components };
}
