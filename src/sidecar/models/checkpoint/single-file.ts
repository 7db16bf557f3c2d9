/**
 * Opens a single-file Stable Diffusion 1.5 checkpoint (original LDM layout, `.safetensors`) as diffusers'
 * single-file loading does: tensors mapped to the diffusers names (`ldm-layout.ts`) and configs inferred from the
 * tensors: every size their shapes determine (channel widths, blocks with attention, layers per block, in/out and
 * latent channels, cross-attention width, linear or 1×1-conv projections, the text encoder's sizes). What shapes
 * cannot tell (the UNet's attention heads, group-norm groups, the VAE scaling factor, the scheduler) takes SD-1.5's
 * values, the configs diffusers fetches for an SD-1.x checkpoint. Like diffusers' `config=`, a folder in the
 * diffusers layout overrides them: its `unet/`, `vae/`, `text_encoder/` `config.json` and
 * `scheduler/scheduler_config.json`, each where present, given by the caller or found next to the checkpoint (the
 * checkpoint's name without `.safetensors`). Given values that contradict the tensors are refused. Checkpoints of
 * other families (SD-2.x, SDXL) are refused by name; pickle checkpoints are refused, never opened. The tokenizer
 * comes from the CLIP model's folder (a single file has none).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  parseAutoencoderKLConfig,
  parseClipTextConfig,
  parseDdimSchedulerConfig,
  parseModelIndex,
  parseUNet2DConditionConfig,
} from '../config';
import { isLdmCheckpoint, LDM_PREFIX, mapLdmCheckpoint, type LdmComponent, type LdmMapping } from './ldm-layout';
import { ModelLayoutError } from './layout-error';
import type { ComponentFiles, StableDiffusionModel } from './layout';
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
  /** Where the configs came from, one sentence (for logs and the recipe's notes). */
  readonly configSource: string;
}

/** SD-1.5's DDIM-readable scheduler config (what the SD-1.5 pipeline folder ships, read as DDIM). */
const SD15_SCHEDULER = { _class_name: 'PNDMScheduler', num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', set_alpha_to_one: false, steps_offset: 1, clip_sample: false };

/** The config files of a diffusers folder that override inferred ones, by component. */
const CONFIG_FILES: Readonly<Record<LdmComponent | 'scheduler', string>> = {
  unet: path.join('unet', 'config.json'),
  vae: path.join('vae', 'config.json'),
  text_encoder: path.join('text_encoder', 'config.json'),
  scheduler: path.join('scheduler', 'scheduler_config.json'),
};

/** The config folder looked for next to a checkpoint when none is given: `model.safetensors` → `model/`. */
export function siblingConfigFolder(file: string): string {
  return path.join(path.dirname(file), path.basename(file).replace(/\.safetensors$/i, ''));
}

async function isFile(file: string): Promise<boolean> {
  return (await fs.stat(file).catch(() => undefined))?.isFile() ?? false;
}

/** The override files present in `folder`, or undefined when it has none. */
async function configFilesIn(folder: string): Promise<Partial<Record<keyof typeof CONFIG_FILES, string>> | undefined> {
  const found: Partial<Record<keyof typeof CONFIG_FILES, string>> = {};
  for (const [component, relative] of Object.entries(CONFIG_FILES) as [keyof typeof CONFIG_FILES, string][]) {
    const file = path.join(folder, relative);
    if (await isFile(file)) found[component] = file;
  }
  return Object.keys(found).length > 0 ? found : undefined;
}

async function readConfig(file: string): Promise<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (error) {
    throw new ModelLayoutError(file, `is not readable JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelLayoutError(file, 'is not a JSON object');
  return json as Record<string, unknown>;
}

/** Keys the tensors determine: a given config must agree with them. */
const SHAPE_KEYS: Readonly<Record<LdmComponent, readonly string[]>> = {
  unet: ['in_channels', 'out_channels', 'block_out_channels', 'down_block_types', 'up_block_types', 'layers_per_block', 'transformer_layers_per_block', 'cross_attention_dim', 'use_linear_projection'],
  vae: ['in_channels', 'out_channels', 'block_out_channels', 'layers_per_block', 'latent_channels'],
  text_encoder: ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'max_position_embeddings'],
};

/** Equal config values; a number stands for the same number in every block (`1` ≡ `[1, 1, 1, 1]`). */
function sameSetting(a: unknown, b: unknown): boolean {
  const spread = (value: unknown, like: unknown) => (typeof value === 'number' && Array.isArray(like) ? like.map(() => value) : value);
  return JSON.stringify(spread(a, b)) === JSON.stringify(spread(b, a));
}

/** The inferred config with a given one on top, refusing given sizes the tensors contradict. */
function overrideConfig(component: LdmComponent, inferred: Record<string, unknown>, given: Record<string, unknown>, givenFile: string, checkpoint: string): Record<string, unknown> {
  for (const key of SHAPE_KEYS[component]) {
    if (given[key] === undefined || given[key] === null) continue;
    if (!sameSetting(given[key], inferred[key])) {
      throw new ModelLayoutError(givenFile, `says ${key} ${JSON.stringify(given[key])}, but the tensors of ${path.basename(checkpoint)} have ${JSON.stringify(inferred[key])}: not the config of this checkpoint`);
    }
  }
  return { ...inferred, ...given };
}

/** Names the family of a checkpoint CLIPDrag cannot run, from tensors every such checkpoint has; undefined for SD-1.x. */
export function unsupportedFamily(names: ReadonlySet<string>, crossAttentionWidth: number | undefined): string | undefined {
  const has = (prefix: string) => [...names].some((n) => n.startsWith(prefix));
  if (has('conditioner.embedders.')) {
    return 'is a Stable Diffusion XL checkpoint (conditioner.embedders.*: two text encoders), which CLIPDrag cannot run: it runs SD-1.x models (one CLIP ViT-L text encoder, 768-wide cross-attention)';
  }
  if (has('cond_stage_model.model.')) {
    return 'is a Stable Diffusion 2.x checkpoint (an OpenCLIP ViT-H text encoder, cond_stage_model.model.*, with linear attention projections), which CLIPDrag cannot run: it runs SD-1.x models, whose text encoder is CLIP ViT-L (cond_stage_model.transformer.*)';
  }
  if (crossAttentionWidth === 1024 && !has(LDM_PREFIX.text_encoder)) {
    return 'has an SD-2-style UNet (1024-wide cross-attention) and no CLIP ViT-L text encoder, which CLIPDrag cannot run: it runs SD-1.x models';
  }
  return undefined;
}

export async function loadSingleFileStableDiffusion(file: string, options: { configFolder?: string } = {}): Promise<SingleFileModel> {
  const abs = path.resolve(file);
  refusePickleCheckpoint(abs);
  const shapes = await withSafetensorsFile(abs, async (opened) => new Map(opened.tensors().map((t) => [t.name, t.shape] as const)));
  const names = new Set(shapes.keys());
  const family = unsupportedFamily(names, shapes.get(`${LDM_PREFIX.unet}middle_block.1.transformer_blocks.0.attn2.to_k.weight`)?.[1]);
  if (family) throw new ModelLayoutError(abs, family);
  if (!isLdmCheckpoint(names)) {
    throw new ModelLayoutError(abs, 'is not a Stable Diffusion checkpoint in the original layout (no model.diffusion_model.* tensors); give a diffusers model folder or a single-file SD-1.5 checkpoint');
  }
  const mapping = mapLdmCheckpoint(abs, shapes);
  const inferred = inferConfigs(mapping, abs);
  const textWidth = inferred.text_encoder.hidden_size;
  if (inferred.unet.cross_attention_dim !== textWidth) {
    throw new ModelLayoutError(abs, `has a UNet whose cross-attention reads ${String(inferred.unet.cross_attention_dim)}-wide text features, but its text encoder makes ${String(textWidth)}-wide ones: not an SD-1.x checkpoint CLIPDrag can run`);
  }

  // The override folder: the one given (which must hold configs), else the one next to the checkpoint if it has any.
  let folder: string | undefined;
  let files: Partial<Record<keyof typeof CONFIG_FILES, string>> | undefined;
  if (options.configFolder !== undefined) {
    folder = path.resolve(options.configFolder);
    files = await configFilesIn(folder);
    if (!files) throw new ModelLayoutError(folder, `has none of ${Object.values(CONFIG_FILES).join(', ')}: not a diffusers config folder for ${path.basename(abs)}`);
  } else {
    files = await configFilesIn(siblingConfigFolder(abs));
    if (files) folder = siblingConfigFolder(abs);
  }

  const component = (configPath: string): ComponentFiles => ({ dir: path.dirname(abs), configPath, weightsPaths: [abs], weightsIndexPath: null, variant: 'default' });
  const configs = {} as Record<LdmComponent, Record<string, unknown>>;
  for (const name of Object.keys(inferred) as LdmComponent[]) {
    const given = files?.[name];
    configs[name] = given ? overrideConfig(name, inferred[name], await readConfig(given), given, abs) : inferred[name];
  }
  const label = (name: LdmComponent | 'scheduler') => files?.[name] ?? `${path.basename(abs)} (${name} config inferred from the tensors)`;
  const overridden = Object.keys(files ?? {}).join(', ');
  const configSource = folder
    ? `Configs of ${path.basename(abs)}: ${overridden} from ${folder}${Object.keys(files ?? {}).length < 4 ? ', the rest inferred from its tensors' : ''}.`
    : `Configs of ${path.basename(abs)} inferred from its tensors, with SD-1.5's attention heads, norm groups, VAE scaling factor and scheduler.`;
  let unet, vae, textEncoder;
  try {
    unet = parseUNet2DConditionConfig(configs.unet, label('unet'));
    vae = parseAutoencoderKLConfig(configs.vae, label('vae'));
    textEncoder = parseClipTextConfig(configs.text_encoder, label('text_encoder'));
  } catch (error) {
    if (!(error instanceof Error) || (files?.unet && files.vae && files.text_encoder)) throw error;
    // What the tensors cannot tell was SD-1.5's and does not fit this model: say how to give it.
    throw new ModelLayoutError(
      abs,
      `${error.message}. The configs inferred from the tensors take SD-1.5's attention heads and norm groups for what the tensors cannot tell; ` +
        `give this checkpoint's diffusers configs (unet/, vae/, text_encoder/ config.json) as a folder: --model-config <folder> on the command line, ` +
        `the clipdrag.modelConfig setting, or a folder named ${path.basename(siblingConfigFolder(abs))} next to the checkpoint`,
    );
  }
  const schedulerJson = files?.scheduler ? await readConfig(files.scheduler) : SD15_SCHEDULER;
  return {
    model: {
      layout: {
        root: abs,
        modelIndexPath: abs,
        unet: component(files?.unet ?? abs),
        vae: component(files?.vae ?? abs),
        textEncoder: component(files?.text_encoder ?? abs),
        tokenizer: null,
        schedulerConfigPath: files?.scheduler ?? abs,
      },
      modelIndex: parseModelIndex({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'], text_encoder: ['transformers', 'CLIPTextModel'] }, `${path.basename(abs)} (model index)`),
      unet,
      vae,
      textEncoder,
      scheduler: parseDdimSchedulerConfig(schedulerJson, files?.scheduler ?? 'SD-1.5 scheduler config'),
    },
    mapping,
    configSource,
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
  // Transformer depth per block (SD-1.5: 1 everywhere); blocks without attention count as 1, as diffusers' configs do.
  const depths = channels.map((_, b) => Math.max(1, countIndexed(keys, new RegExp(`^down_blocks\\.${b}\\.attentions\\.0\\.transformer_blocks\\.(\\d+)\\.`))));
  return {
    _class_name: 'UNet2DConditionModel',
    in_channels: shapeOf(t, 'conv_in.weight', label)[1],
    out_channels: shapeOf(t, 'conv_out.weight', label)[0],
    block_out_channels: channels,
    down_block_types: down,
    up_block_types: up,
    layers_per_block: layers,
    transformer_layers_per_block: depths.every((d) => d === depths[0]) ? depths[0] : depths,
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
