/**
 * Opens a single-file Stable Diffusion 1.5 checkpoint (original LDM layout, `.safetensors`) as diffusers'
 * single-file loading does: tensors mapped to the diffusers names (`ldm-layout.ts`), configs from a diffusers
 * config folder when one is given (diffusers' `config=`), else inferred: every size the tensors determine is read
 * from their shapes, and what they cannot tell (attention heads, group-norm groups, the VAE scaling factor) takes
 * SD-1.5's values, the configs diffusers fetches for an SD-1.x checkpoint. The scheduler is SD-1.5's; the tokenizer
 * comes from the CLIP model's folder (a single file has none). Pickle checkpoints are refused, never opened.
 */
import * as path from 'node:path';
import {
  parseAutoencoderKLConfig,
  parseClipTextConfig,
  parseDdimSchedulerConfig,
  parseModelIndex,
  parseUNet2DConditionConfig,
} from '../config';
import { isLdmCheckpoint, mapLdmCheckpoint, type LdmComponent, type LdmMapping } from './ldm-layout';
import { ModelLayoutError } from './layout-error';
import { loadStableDiffusionModel, type ComponentFiles, type StableDiffusionModel } from './layout';
import { withSafetensorsFile } from './safetensors';

/** File endings of checkpoints that are Python pickles: loading one can run any code it carries. */
const PICKLE_ENDINGS = ['.ckpt', '.pt', '.pth', '.bin', '.pkl', '.pickle'];

/** Is this path a single checkpoint file (rather than a model folder)? */
export function isSingleFileCheckpoint(file: string): boolean {
  const lower = file.toLowerCase();
  return lower.endsWith('.safetensors') || PICKLE_ENDINGS.some((ending) => lower.endsWith(ending));
}

/** Throws, with why and what to do, for a checkpoint that is a pickle. */
export function refusePickleCheckpoint(file: string): void {
  const lower = file.toLowerCase();
  if (!PICKLE_ENDINGS.some((ending) => lower.endsWith(ending))) return;
  throw new ModelLayoutError(
    file,
    'is a PyTorch pickle checkpoint, which CLIPDrag never loads: unpickling can run any code the file carries. ' +
      'Use the .safetensors version of this model (model sites usually offer one), or convert it once with a tool you trust ' +
      '(e.g. diffusers\' convert_original_stable_diffusion_to_diffusers.py, then save with safetensors).',
  );
}

export interface SingleFileModel {
  readonly model: StableDiffusionModel;
  /** Which tensor of the file each diffusers weight is, per component. */
  readonly mapping: LdmMapping;
}

/** SD-1.5's DDIM-readable scheduler config (what the SD-1.5 pipeline folder ships, read as DDIM). */
const SD15_SCHEDULER = { _class_name: 'PNDMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', set_alpha_to_one: false, steps_offset: 1, clip_sample: false };

export async function loadSingleFileStableDiffusion(file: string, options: { configFolder?: string } = {}): Promise<SingleFileModel> {
  const abs = path.resolve(file);
  refusePickleCheckpoint(abs);
  const shapes = await withSafetensorsFile(abs, async (opened) => new Map(opened.tensors().map((t) => [t.name, t.shape] as const)));
  if (!isLdmCheckpoint(shapes.keys())) {
    throw new ModelLayoutError(abs, 'is not a Stable Diffusion checkpoint in the original layout (no model.diffusion_model.* tensors); give a diffusers model folder or a single-file SD-1.5 checkpoint');
  }
  const mapping = mapLdmCheckpoint(abs, shapes);
  const component = (configPath: string): ComponentFiles => ({ dir: path.dirname(abs), configPath, weightsPaths: [abs], weightsIndexPath: null, variant: 'default' });

  if (options.configFolder !== undefined) {
    const configs = await loadStableDiffusionModel(options.configFolder);
    const { layout } = configs;
    return {
      model: { ...configs, layout: { ...layout, unet: component(layout.unet.configPath), vae: component(layout.vae.configPath), textEncoder: component(layout.textEncoder.configPath) } },
      mapping,
    };
  }
  const label = (name: string) => `${path.basename(abs)} (${name} inferred from the tensors)`;
  const inferred = inferConfigs(mapping, abs);
  const unet = parseUNet2DConditionConfig(inferred.unet, label('UNet config'));
  const vae = parseAutoencoderKLConfig(inferred.vae, label('VAE config'));
  const textEncoder = parseClipTextConfig(inferred.text_encoder, label('text encoder config'));
  return {
    model: {
    layout: { root: abs, modelIndexPath: abs, unet: component(abs), vae: component(abs), textEncoder: component(abs), tokenizer: null, schedulerConfigPath: abs },
    modelIndex: parseModelIndex({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'], text_encoder: ['transformers', 'CLIPTextModel'] }, label('model index')),
    unet,
    vae,
    textEncoder,
    scheduler: parseDdimSchedulerConfig(SD15_SCHEDULER, 'SD-1.5 scheduler config'),
    },
    mapping,
  };
}

function shapeOf(tensors: ReadonlyMap<string, { shape: readonly number[] }>, name: string, file: string): readonly number[] {
  const tensor = tensors.get(name);
  if (!tensor) throw new ModelLayoutError(file, `has no ${name}, which every SD-1.5 checkpoint has`);
  return tensor.shape;
}

function countIndexed(keys: Iterable<string>, pattern: RegExp): number {
  const seen = new Set<string>();
  for (const key of keys) {
    const match = pattern.exec(key);
    if (match) seen.add(match[1]!);
  }
  return seen.size;
}

/**
 * The diffusers configs (as config.json values) of a mapped checkpoint: the sizes its tensors determine; every other
 * field is left to the config parsers, whose defaults are SD-1.5's.
 */
export function inferConfigs(mapping: LdmMapping, file: string): Record<LdmComponent, Record<string, unknown>> {
  return { unet: inferUNetConfig(mapping, file), vae: inferVaeConfig(mapping, file), text_encoder: inferTextConfig(mapping, file) };
}

function inferUNetConfig(mapping: LdmMapping, label: string): Record<string, unknown> {
  const t = mapping.unet;
  const keys = [...t.keys()];
  const blocks = countIndexed(keys, /^down_blocks\.(\d+)\./);
  const layers = countIndexed(keys, /^down_blocks\.0\.resnets\.(\d+)\./);
  const channels = Array.from({ length: blocks }, (_, b) => shapeOf(t, `down_blocks.${b}.resnets.0.conv1.weight`, label)[0]!);
  const hasAttention = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  const down = channels.map((_, b) => (hasAttention(`down_blocks.${b}.attentions.`) ? 'CrossAttnDownBlock2D' : 'DownBlock2D'));
  const up = channels.map((_, b) => (hasAttention(`up_blocks.${b}.attentions.`) ? 'CrossAttnUpBlock2D' : 'UpBlock2D'));
  const crossAttention = shapeOf(t, 'mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight', label)[1]!;
  return {
    _class_name: 'UNet2DConditionModel',
    in_channels: shapeOf(t, 'conv_in.weight', label)[1],
    out_channels: shapeOf(t, 'conv_out.weight', label)[0],
    block_out_channels: channels,
    down_block_types: down,
    up_block_types: up,
    layers_per_block: layers,
    cross_attention_dim: crossAttention,
    use_linear_projection: shapeOf(t, 'mid_block.attentions.0.proj_in.weight', label).length === 2,
  };
}

function inferVaeConfig(mapping: LdmMapping, label: string): Record<string, unknown> {
  const t = mapping.vae;
  const keys = [...t.keys()];
  const blocks = countIndexed(keys, /^encoder\.down_blocks\.(\d+)\./);
  return {
    _class_name: 'AutoencoderKL',
    in_channels: shapeOf(t, 'encoder.conv_in.weight', label)[1],
    out_channels: shapeOf(t, 'decoder.conv_out.weight', label)[0],
    block_out_channels: Array.from({ length: blocks }, (_, b) => shapeOf(t, `encoder.down_blocks.${b}.resnets.0.conv1.weight`, label)[0]!),
    down_block_types: Array.from({ length: blocks }, () => 'DownEncoderBlock2D'),
    up_block_types: Array.from({ length: blocks }, () => 'UpDecoderBlock2D'),
    layers_per_block: countIndexed(keys, /^encoder\.down_blocks\.0\.resnets\.(\d+)\./),
    latent_channels: shapeOf(t, 'quant_conv.weight', label)[0]! / 2,
    sample_size: 512,
  };
}

function inferTextConfig(mapping: LdmMapping, label: string): Record<string, unknown> {
  const t = mapping.text_encoder;
  const [vocab, hidden] = shapeOf(t, 'text_model.embeddings.token_embedding.weight', label);
  return {
    model_type: 'clip_text_model',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: shapeOf(t, 'text_model.encoder.layers.0.mlp.fc1.weight', label)[0],
    num_hidden_layers: countIndexed(t.keys(), /^text_model\.encoder\.layers\.(\d+)\./),
    max_position_embeddings: shapeOf(t, 'text_model.embeddings.position_embedding.weight', label)[0],
    // OpenAI CLIP text transformers use 64-wide heads (SD-1.5: 768 / 64 = 12).
    num_attention_heads: hidden! % 64 === 0 ? hidden! / 64 : 12,
  };
}
