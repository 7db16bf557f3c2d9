/**
 * A complete seeded random-weight model set with SD-1.5's and CLIP ViT-B/16's real architectures, for
 * benchmarking the whole edit pipeline without downloading weights:
 *
 *  - `<out>/sd15`: a diffusers Stable Diffusion folder (model_index.json, unet/, vae/, text_encoder/,
 *    scheduler/, tokenizer/ with a small BPE vocabulary of our own — never CLIP's real one);
 *  - `<out>/clip-vit-b16`: a transformers CLIPModel folder.
 *
 * The UNet comes from the UNet generator (PyTorch-default uniform init); the VAE and CLIP checkpoints use
 * the tensor lists and seeded normal init the unit tests use (weights N(0, 1/fan_in), norms ≈ 1, biases
 * ≈ 0.1), which keep activations finite through the full-size networks.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseAutoencoderKLConfig, parseClipModelConfig, parseClipTextConfig } from '../src/sidecar/models/config';
import { SD15_UNET_CONFIG, writeRandomUNet } from '../src/sidecar/models/unet/random-weights';
import { buildTinyBpeVocabulary, DEFAULT_CORPUS, writeBpeFiles } from '../test/helpers/tiny-bpe';
import { writeRandomCheckpoint } from '../test/support/random-checkpoint';
import { clipModelSpecs, clipTextSpecs } from '../test/unit/models/clip/random-clip';
import { vaeCheckpointSpecs } from '../test/unit/models/vae/random-vae';

/** SD-1.5's VAE (diffusers AutoencoderKL config). */
export const SD15_VAE_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'AutoencoderKL',
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  scaling_factor: 0.18215,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
});

/** SD-1.5's text encoder (CLIP ViT-L/14's text tower). */
export const SD15_TEXT_ENCODER_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  architectures: ['CLIPTextModel'],
  bos_token_id: 49406,
  eos_token_id: 49407,
  hidden_act: 'quick_gelu',
  hidden_size: 768,
  intermediate_size: 3072,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 77,
  model_type: 'clip_text_model',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 1,
  projection_dim: 768,
  vocab_size: 49408,
});

/** SD-1.5's DDIM-compatible scheduler config. */
export const SD15_SCHEDULER_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  timestep_spacing: 'leading',
  trained_betas: null,
});

export const SD15_MODEL_INDEX: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'StableDiffusionPipeline',
  feature_extractor: [null, null],
  requires_safety_checker: false,
  safety_checker: [null, null],
  scheduler: ['diffusers', 'PNDMScheduler'],
  text_encoder: ['transformers', 'CLIPTextModel'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  unet: ['diffusers', 'UNet2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
});

/** CLIP ViT-B/16 (transformers CLIPModel config). */
export const CLIP_VIT_B16_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  architectures: ['CLIPModel'],
  logit_scale_init_value: 2.6592,
  model_type: 'clip',
  projection_dim: 512,
  text_config: {
    bos_token_id: 49406,
    eos_token_id: 49407,
    hidden_act: 'quick_gelu',
    hidden_size: 512,
    intermediate_size: 2048,
    layer_norm_eps: 1e-5,
    max_position_embeddings: 77,
    model_type: 'clip_text_model',
    num_attention_heads: 8,
    num_hidden_layers: 12,
    pad_token_id: 1,
    vocab_size: 49408,
  },
  vision_config: {
    hidden_act: 'quick_gelu',
    hidden_size: 768,
    image_size: 224,
    intermediate_size: 3072,
    layer_norm_eps: 1e-5,
    model_type: 'clip_vision_model',
    num_attention_heads: 12,
    num_channels: 3,
    num_hidden_layers: 12,
    patch_size: 16,
  },
});

export interface RandomPipelineFolders {
  readonly stableDiffusion: string;
  readonly clip: string;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes the SD-1.5 and CLIP ViT-B/16 folders under `out`. Each part gets its own seed derived from
 * `seed`, so the same seed always gives the same bytes.
 */
export async function writeRandomPipelineFolders(out: string, seed: number): Promise<RandomPipelineFolders> {
  const sd = path.join(out, 'sd15');
  const clip = path.join(out, 'clip-vit-b16');
  await writeJson(path.join(sd, 'model_index.json'), SD15_MODEL_INDEX);
  await writeJson(path.join(sd, 'scheduler', 'scheduler_config.json'), SD15_SCHEDULER_CONFIG);
  await writeRandomUNet(path.join(sd, 'unet'), SD15_UNET_CONFIG, { seed });

  await writeJson(path.join(sd, 'vae', 'config.json'), SD15_VAE_CONFIG);
  const vaeSpecs = vaeCheckpointSpecs(parseAutoencoderKLConfig(SD15_VAE_CONFIG));
  await writeRandomCheckpoint(path.join(sd, 'vae', 'diffusion_pytorch_model.safetensors'), vaeSpecs, seed + 1);

  await writeJson(path.join(sd, 'text_encoder', 'config.json'), SD15_TEXT_ENCODER_CONFIG);
  const textSpecs = clipTextSpecs(parseClipTextConfig(SD15_TEXT_ENCODER_CONFIG));
  await writeRandomCheckpoint(path.join(sd, 'text_encoder', 'model.safetensors'), textSpecs, seed + 2);

  await writeBpeFiles(path.join(sd, 'tokenizer'), buildTinyBpeVocabulary(DEFAULT_CORPUS));

  await writeJson(path.join(clip, 'config.json'), CLIP_VIT_B16_CONFIG);
  const clipSpecs = clipModelSpecs(parseClipModelConfig(CLIP_VIT_B16_CONFIG));
  await writeRandomCheckpoint(path.join(clip, 'model.safetensors'), clipSpecs, seed + 3);
  return { stableDiffusion: sd, clip };
}
