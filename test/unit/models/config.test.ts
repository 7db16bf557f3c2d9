import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  ModelConfigError,
  parseAutoencoderKLConfig,
  parseClipModelConfig,
  parseClipTextConfig,
  parseDdimSchedulerConfig,
  parseModelIndex,
  parseUNet2DConditionConfig,
  SD15_DRAG_SCHEDULER_CONFIG,
} from '../../../src/sidecar/models/config';

/** The keys the original SD-1.5 unet/config.json has (written by an early diffusers). */
const SD15_UNET_MINIMAL = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.6.0',
  act_fn: 'silu',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};

function expectConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ModelConfigError, `expected ModelConfigError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a minimal SD-1.5 UNet config takes the diffusers defaults', () => {
  const c = parseUNet2DConditionConfig(SD15_UNET_MINIMAL);
  assert.deepEqual(c.attentionHeads, [8, 8, 8, 8]);
  assert.deepEqual(c.crossAttentionDim, [768, 768, 768, 768]);
  assert.deepEqual(c.transformerLayersPerBlock, [1, 1, 1, 1]);
  assert.deepEqual(c.onlyCrossAttention, [false, false, false, false]);
  assert.equal(c.midBlockType, 'UNetMidBlock2DCrossAttn');
  assert.equal(c.useLinearProjection, false);
  assert.equal(c.upcastAttention, false);
  assert.equal(c.resnetTimeScaleShift, 'default');
  assert.equal(c.timeEmbeddingType, 'positional');
  assert.equal(c.timeEmbeddingDim, 1280);
  assert.equal(c.convInKernel, 3);
  assert.equal(c.classEmbedType, null);
  assert.equal(c.sampleSize, 64);
});

test('per-block UNet settings accept lists, and num_attention_heads overrides attention_head_dim', () => {
  const sd2Like = { ...SD15_UNET_MINIMAL, attention_head_dim: [5, 10, 20, 20], use_linear_projection: true, cross_attention_dim: 1024 };
  const c = parseUNet2DConditionConfig(sd2Like);
  assert.deepEqual(c.attentionHeads, [5, 10, 20, 20]);
  assert.equal(c.useLinearProjection, true);
  const withHeads = parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, num_attention_heads: 16, attention_head_dim: 8 });
  assert.deepEqual(withHeads.attentionHeads, [16, 16, 16, 16]);
  const nulls = parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, num_attention_heads: null, time_embedding_dim: null, mid_block_type: null });
  assert.deepEqual(nulls.attentionHeads, [8, 8, 8, 8]);
  assert.equal(nulls.timeEmbeddingDim, 1280);
  assert.equal(nulls.midBlockType, null);
});

test('inconsistent UNet configs are rejected with the key named', () => {
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, block_out_channels: [320, 640] }), /"block_out_channels" has 2 entries but "down_block_types" has 4/);
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, attention_head_dim: [8, 8] }), /"attention_head_dim" must be an integer or a list of 4 integers/);
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, attention_head_dim: 7 }), /320 channels cannot be split into 7 attention heads/);
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, norm_num_groups: 24 }), /not divisible by norm_num_groups 24/);
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, layers_per_block: '2' }), /"layers_per_block" must be a non-empty list of positive integers, got "2"/);
  expectConfigError(() => parseUNet2DConditionConfig({ ...SD15_UNET_MINIMAL, _class_name: 'UNet2DModel' }, 'x/config.json'), /^x\/config\.json: is a UNet2DModel config/);
  expectConfigError(() => parseUNet2DConditionConfig([1, 2]), /expected a JSON object/);
});

test('AutoencoderKL defaults and validation', () => {
  const c = parseAutoencoderKLConfig({ _class_name: 'AutoencoderKL', block_out_channels: [128, 256, 512, 512], down_block_types: Array(4).fill('DownEncoderBlock2D'), up_block_types: Array(4).fill('UpDecoderBlock2D'), layers_per_block: 2, sample_size: 512 });
  assert.equal(c.latentChannels, 4);
  assert.equal(c.scalingFactor, 0.18215);
  assert.equal(c.normNumGroups, 32);
  assert.equal(c.useQuantConv, true);
  assert.equal(c.shiftFactor, null);
  expectConfigError(() => parseAutoencoderKLConfig({ block_out_channels: [128, 256] }), /"down_block_types" has 1 entries but "block_out_channels" has 2/);
});

test('CLIP text config: defaults, model type check, head split', () => {
  const c = parseClipTextConfig({ hidden_size: 768, num_attention_heads: 12, intermediate_size: 3072 });
  assert.equal(c.vocabSize, 49408);
  assert.equal(c.maxPositionEmbeddings, 77);
  assert.equal(c.numHiddenLayers, 12);
  assert.equal(c.hiddenAct, 'quick_gelu');
  assert.equal(c.layerNormEps, 1e-5);
  assert.equal(c.eosTokenId, 49407);
  expectConfigError(() => parseClipTextConfig({ model_type: 'clip_vision_model' }), /expected "clip_text_model"/);
  expectConfigError(() => parseClipTextConfig({ hidden_size: 10, num_attention_heads: 3 }), /hidden_size 10 is not divisible by num_attention_heads 3/);
});

test('CLIPModel config: sections default, legacy *_config_dict replaces the section', () => {
  const empty = parseClipModelConfig({ model_type: 'clip' });
  assert.equal(empty.textConfig.hiddenSize, 512);
  assert.equal(empty.visionConfig.patchSize, 32);
  assert.equal(empty.projectionDim, 512);

  const legacy = parseClipModelConfig({
    model_type: 'clip',
    projection_dim: 512,
    text_config: { hidden_size: 999, num_attention_heads: 1, max_position_embeddings: 20 },
    text_config_dict: { hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 12, projection_dim: 512 },
    vision_config: { patch_size: 32 },
    vision_config_dict: { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12, patch_size: 16, projection_dim: 512 },
  });
  assert.equal(legacy.textConfig.hiddenSize, 512);
  assert.equal(legacy.textConfig.maxPositionEmbeddings, 77);
  assert.equal(legacy.visionConfig.patchSize, 16);
  expectConfigError(() => parseClipModelConfig({ model_type: 'clip', vision_config: { image_size: 225, patch_size: 16 } }), /vision_config\.image_size 225 is not a multiple of patch_size 16/);
  expectConfigError(() => parseClipModelConfig({ model_type: 'siglip' }), /expected "clip"/);
});

test('scheduler configs read as DDIM with DDIMScheduler defaults', () => {
  const pndm = parseDdimSchedulerConfig({
    _class_name: 'PNDMScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085,
    num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, trained_betas: null, clip_sample: false,
  });
  assert.deepEqual({ ...pndm, className: 'DDIMScheduler' }, SD15_DRAG_SCHEDULER_CONFIG);
  const bare = parseDdimSchedulerConfig({});
  assert.equal(bare.betaSchedule, 'linear');
  assert.equal(bare.setAlphaToOne, true);
  assert.equal(bare.clipSample, true);
  assert.equal(bare.stepsOffset, 0);
  expectConfigError(() => parseDdimSchedulerConfig({ beta_schedule: 'cosine' }), /"beta_schedule" must be one of "linear", "scaled_linear", "squaredcos_cap_v2"/);
  expectConfigError(() => parseDdimSchedulerConfig({ num_train_timesteps: 3, trained_betas: [0.1, 0.2] }), /trained_betas has 2 entries/);
});

test('model_index.json lists components', () => {
  const index = parseModelIndex({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], safety_checker: [null, null], requires_safety_checker: false });
  assert.deepEqual(index.components.unet, ['diffusers', 'UNet2DConditionModel']);
  assert.deepEqual(index.components.safety_checker, [null, null]);
  assert.equal(index.components.requires_safety_checker, undefined);
  expectConfigError(() => parseModelIndex({ unet: ['diffusers', 'UNet2DConditionModel'] }), /no "_class_name"/);
});
