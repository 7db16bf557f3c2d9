/**
 * Seeded random-weight models in the layouts `clipdrag eval` reads, for benchmarks and tests of the evaluation
 * without downloading weights:
 *
 *  - `<out>/sd21`: a diffusers Stable Diffusion 2.1 folder (UNet with linear projections, per-block head counts and
 *    upcast attention; VAE; GELU text encoder; tokenizer padding with "!" and a small BPE vocabulary of our own;
 *    v-prediction DDIM scheduler config);
 *  - `<out>/clip-vit-b32`: a transformers CLIPModel folder with ViT-B/32's vision tower;
 *  - `<out>/lpips-alex`: `lpips-alex.safetensors` with the AlexNet trunk and LPIPS v0.1 linear layers.
 *
 * Full size by default; `tiny` keeps every structure at small widths (seconds to score a sample on a CPU).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseAutoencoderKLConfig, parseClipModelConfig, parseClipTextConfig } from '../src/sidecar/models/config';
import { writeRandomUNet } from '../src/sidecar/models/unet/random-weights';
import { buildTinyBpeVocabulary, DEFAULT_CORPUS, writeBpeFiles } from '../test/helpers/tiny-bpe';
import { writeRandomCheckpoint, type TensorSpec } from '../test/support/random-checkpoint';
import { clipModelSpecs, clipTextSpecs } from '../test/unit/models/clip/random-clip';
import { vaeCheckpointSpecs } from '../test/unit/models/vae/random-vae';
import { SD15_VAE_CONFIG } from './bench-pipeline-models';

interface Widths {
  readonly unet: readonly number[];
  readonly heads: readonly number[];
  readonly groups: number;
  readonly text: { hidden: number; layers: number; heads: number; intermediate: number };
  readonly vae: readonly number[];
  readonly vision: { hidden: number; layers: number; heads: number };
}

const FULL: Widths = {
  unet: [320, 640, 1280, 1280],
  heads: [5, 10, 20, 20],
  groups: 32,
  text: { hidden: 1024, layers: 23, heads: 16, intermediate: 4096 },
  vae: [128, 256, 512, 512],
  vision: { hidden: 768, layers: 12, heads: 12 },
};

const TINY: Widths = {
  unet: [32, 64, 64, 64],
  heads: [2, 4, 4, 4],
  groups: 8,
  text: { hidden: 64, layers: 2, heads: 4, intermediate: 128 },
  vae: [16, 32, 32, 32],
  vision: { hidden: 64, layers: 2, heads: 2 },
};

/** Stable Diffusion 2.1's UNet config at the given widths. */
function sd21UNetConfig(w: Widths): Record<string, unknown> {
  return {
    _class_name: 'UNet2DConditionModel',
    act_fn: 'silu',
    attention_head_dim: [...w.heads],
    block_out_channels: [...w.unet],
    center_input_sample: false,
    cross_attention_dim: w.text.hidden,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    downsample_padding: 1,
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: 4,
    layers_per_block: 2,
    mid_block_scale_factor: 1,
    norm_eps: 1e-5,
    norm_num_groups: w.groups,
    out_channels: 4,
    sample_size: 96,
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    upcast_attention: true,
    use_linear_projection: true,
  };
}

function sd21TextConfig(w: Widths): Record<string, unknown> {
  return {
    architectures: ['CLIPTextModel'],
    bos_token_id: 0,
    eos_token_id: 2,
    hidden_act: 'gelu',
    hidden_size: w.text.hidden,
    intermediate_size: w.text.intermediate,
    layer_norm_eps: 1e-5,
    max_position_embeddings: 77,
    model_type: 'clip_text_model',
    num_attention_heads: w.text.heads,
    num_hidden_layers: w.text.layers,
    pad_token_id: 1,
    projection_dim: 512,
    vocab_size: 49408,
  };
}

function clipB32Config(w: Widths): Record<string, unknown> {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: 512,
    text_config: { hidden_act: 'quick_gelu', hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 12, max_position_embeddings: 77, vocab_size: 49408, layer_norm_eps: 1e-5, bos_token_id: 49406, eos_token_id: 49407, pad_token_id: 1 },
    vision_config: { hidden_act: 'quick_gelu', hidden_size: w.vision.hidden, intermediate_size: 4 * w.vision.hidden, num_attention_heads: w.vision.heads, num_hidden_layers: w.vision.layers, image_size: 224, patch_size: 32, num_channels: 3, layer_norm_eps: 1e-5 },
  };
}

/** The tensors of `lpips-alex.safetensors`: torchvision's AlexNet `features` and LPIPS's five linear layers. */
function lpipsSpecs(): TensorSpec[] {
  const convs: [number, number, number, number][] = [
    [0, 64, 3, 11],
    [3, 192, 64, 5],
    [6, 384, 192, 3],
    [8, 256, 384, 3],
    [10, 256, 256, 3],
  ];
  return [
    ...convs.flatMap(([i, out, inp, k]): TensorSpec[] => [
      { name: `features.${i}.weight`, shape: [out, inp, k, k], init: 'weight' },
      { name: `features.${i}.bias`, shape: [out], init: 'bias' },
    ]),
    // LPIPS's learned weights are non-negative; 'norm' (≈ 1) keeps them so.
    ...convs.map(([, out], k): TensorSpec => ({ name: `lin${k}.model.1.weight`, shape: [1, out, 1, 1], init: 'norm' })),
  ];
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

export interface RandomEvalFolders {
  readonly dift: string;
  readonly clip: string;
  readonly lpips: string;
}

export async function writeRandomEvalFolders(out: string, seed: number, tiny: boolean): Promise<RandomEvalFolders> {
  const w = tiny ? TINY : FULL;
  const sd = path.join(out, 'sd21');
  await writeJson(path.join(sd, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline',
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ['diffusers', 'DDIMScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  await writeJson(path.join(sd, 'scheduler', 'scheduler_config.json'), {
    _class_name: 'DDIMScheduler',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: 'v_prediction',
    set_alpha_to_one: false,
    steps_offset: 1,
    timestep_spacing: 'leading',
  });
  await writeRandomUNet(path.join(sd, 'unet'), sd21UNetConfig(w), { seed });
  const vaeConfig = { ...SD15_VAE_CONFIG, block_out_channels: [...w.vae], norm_num_groups: tiny ? 8 : 32 };
  await writeJson(path.join(sd, 'vae', 'config.json'), vaeConfig);
  await writeRandomCheckpoint(path.join(sd, 'vae', 'diffusion_pytorch_model.safetensors'), vaeCheckpointSpecs(parseAutoencoderKLConfig(vaeConfig)), seed + 1);
  const textConfig = sd21TextConfig(w);
  await writeJson(path.join(sd, 'text_encoder', 'config.json'), textConfig);
  await writeRandomCheckpoint(path.join(sd, 'text_encoder', 'model.safetensors'), clipTextSpecs(parseClipTextConfig(textConfig)), seed + 2);
  await writeBpeFiles(path.join(sd, 'tokenizer'), buildTinyBpeVocabulary(DEFAULT_CORPUS));
  // SD-2.1's tokenizer pads with "!".
  await writeJson(path.join(sd, 'tokenizer', 'special_tokens_map.json'), { bos_token: '<|startoftext|>', eos_token: '<|endoftext|>', pad_token: '!', unk_token: '<|endoftext|>' });

  const clip = path.join(out, 'clip-vit-b32');
  const clipConfig = clipB32Config(w);
  await writeJson(path.join(clip, 'config.json'), clipConfig);
  await writeRandomCheckpoint(path.join(clip, 'model.safetensors'), clipModelSpecs(parseClipModelConfig(clipConfig)), seed + 3);

  const lpips = path.join(out, 'lpips-alex');
  await fs.mkdir(lpips, { recursive: true });
  await writeRandomCheckpoint(path.join(lpips, 'lpips-alex.safetensors'), lpipsSpecs(), seed + 4);
  return { dift: sd, clip, lpips };
}
