/**
 * On-disk layouts of the model folders we load:
 * - diffusers pipelines (`model_index.json`, `unet/`, `vae/`, `text_encoder/`,
 *   `tokenizer/`, `scheduler/`), with optional `fp16` weight variants;
 * - single diffusers components (e.g. a stand-alone VAE: `config.json` +
 *   `diffusion_pytorch_model.safetensors`);
 * - transformers `CLIPModel` folders (`config.json`, `model.safetensors`).
 * A component's weights are one safetensors file or, for large checkpoints, an index plus its shards
 * (see `shard-index.ts`).
 * Resolution checks that every needed file exists and parses the configs, so
 * a wrong or incomplete folder fails early with the missing file named.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  parseAutoencoderKLConfig,
  parseClipModelConfig,
  parseClipTextConfig,
  parseDdimSchedulerConfig,
  parseModelIndex,
  parseUNet2DConditionConfig,
  type AutoencoderKLConfig,
  type ClipModelConfig,
  type ClipTextConfig,
  type DdimSchedulerConfig,
  type ModelIndex,
  type UNet2DConditionConfig,
} from '../config';
import { ModelLayoutError } from './layout-error';
import { readShardIndex, shardIndexName } from './shard-index';

export { ModelLayoutError };

/**
 * Which weight file to use: the full-precision one, the `fp16` variant, or whichever exists — full precision
 * first (`auto`) or the fp16 variant first (`auto-fp16`, what an fp16 edit loads).
 */
export type WeightsVariant = 'default' | 'fp16' | 'auto' | 'auto-fp16';

export type ComponentKind = 'unet' | 'vae' | 'text_encoder';

/** Weight file base names per library, as the reference loaders look for them. */
const WEIGHT_BASENAME: Record<ComponentKind, string> = {
  unet: 'diffusion_pytorch_model',
  vae: 'diffusion_pytorch_model',
  text_encoder: 'model',
};

const EXPECTED_CLASS: Record<ComponentKind, string> = {
  unet: 'UNet2DConditionModel',
  vae: 'AutoencoderKL',
  text_encoder: 'CLIPTextModel',
};

/** The weights of one model: a single safetensors file, or the shards an index lists. */
export interface WeightFiles {
  /** The safetensors files to open: one, or every shard in order. */
  readonly weightsPaths: readonly string[];
  /** The index that lists the shards; null for a single file. */
  readonly weightsIndexPath: string | null;
  readonly variant: 'default' | 'fp16';
}

export interface ComponentFiles extends WeightFiles {
  readonly dir: string;
  readonly configPath: string;
}

export interface TokenizerFiles {
  readonly dir: string;
  readonly vocabPath: string;
  readonly mergesPath: string;
}

export interface DiffusersLayout {
  readonly root: string;
  readonly modelIndexPath: string;
  readonly unet: ComponentFiles;
  readonly vae: ComponentFiles;
  readonly textEncoder: ComponentFiles;
  /** Null when the folder ships no tokenizer (then the caller supplies the CLIP BPE files). */
  readonly tokenizer: TokenizerFiles | null;
  readonly schedulerConfigPath: string;
}

export interface StableDiffusionModel {
  readonly layout: DiffusersLayout;
  readonly modelIndex: ModelIndex;
  readonly unet: UNet2DConditionConfig;
  readonly vae: AutoencoderKLConfig;
  readonly textEncoder: ClipTextConfig;
  /** The folder's scheduler config read as DDIM (the drag pipeline uses SD15_DRAG_SCHEDULER_CONFIG). */
  readonly scheduler: DdimSchedulerConfig;
}

export interface ClipModelLayout extends WeightFiles {
  readonly root: string;
  readonly configPath: string;
}

/** Every file a model's weights were read from: the safetensors files and, when sharded, the index. */
export function weightSourceFiles(weights: WeightFiles): string[] {
  return weights.weightsIndexPath === null ? [...weights.weightsPaths] : [weights.weightsIndexPath, ...weights.weightsPaths];
}

export interface ClipModel {
  readonly layout: ClipModelLayout;
  readonly config: ClipModelConfig;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function readJson(file: string, folder: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLayoutError(folder, code === 'ENOENT' ? `${rel(folder, file)} is missing` : `cannot read ${rel(folder, file)}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ModelLayoutError(folder, `${rel(folder, file)} is not valid JSON: ${(err as Error).message}`);
  }
}

function rel(folder: string, file: string): string {
  return path.relative(folder, file) || path.basename(file);
}

async function requireFolder(root: string, what: string): Promise<string> {
  const abs = path.resolve(root);
  if (!(await isDirectory(abs))) throw new ModelLayoutError(abs, `is not a folder (expected ${what})`);
  return abs;
}

/** The weight variants each request tries, in order. */
const VARIANT_ORDER: Record<WeightsVariant, readonly ('default' | 'fp16')[]> = {
  default: ['default'],
  fp16: ['fp16'],
  auto: ['default', 'fp16'],
  'auto-fp16': ['fp16', 'default'],
};

/**
 * Picks the weights of one component folder: for each variant in the requested order, the single file, else
 * an index with its shards (validated, see `shard-index.ts`). Only safetensors can be read; a folder with
 * PyTorch pickles alone gets an actionable message.
 */
async function pickWeights(dir: string, base: string, variant: WeightsVariant, root: string): Promise<WeightFiles> {
  const order = VARIANT_ORDER[variant];
  const single = (v: 'default' | 'fp16') => path.join(dir, `${base}${v === 'fp16' ? '.fp16' : ''}.safetensors`);
  const index = (v: 'default' | 'fp16') => path.join(dir, shardIndexName(base, v));
  for (const candidate of order) {
    if (await isFile(single(candidate))) return { weightsPaths: [single(candidate)], weightsIndexPath: null, variant: candidate };
    if (await isFile(index(candidate))) {
      const sharded = await readShardIndex(index(candidate), root);
      return { weightsPaths: sharded.shards, weightsIndexPath: sharded.indexPath, variant: candidate };
    }
  }
  const wanted = single(order[0]!);
  const alternatives = order.length > 1 ? ` (nor ${rel(root, single(order[1]!))})` : '';
  const pickle = [`${base}.bin`, `${base}.fp16.bin`, 'pytorch_model.bin'];
  const present = (await Promise.all(pickle.map(async (n) => ((await isFile(path.join(dir, n))) ? n : null)))).filter((n): n is string => n !== null);
  const hint = present.length > 0 ? `; found ${present.join(', ')} (PyTorch pickle), which cannot be loaded: use the .safetensors weights of this model` : '';
  const found = async (v: 'default' | 'fp16') => ((await isFile(single(v))) ? single(v) : (await isFile(index(v))) ? index(v) : null);
  const other = variant === 'fp16' ? 'default' : variant === 'default' ? 'fp16' : null;
  const otherFile = other === null ? null : await found(other);
  const otherVariant = otherFile === null ? '' : `; ${rel(root, otherFile)} exists (use the ${other} variant)`;
  throw new ModelLayoutError(root, `${rel(root, wanted)} is missing${alternatives}${otherVariant}${hint}`);
}

/**
 * Resolves one diffusers/transformers component folder (a pipeline sub-folder
 * or a stand-alone component such as a separately downloaded VAE).
 */
export async function resolveComponentFolder(dir: string, kind: ComponentKind, options: { variant?: WeightsVariant; root?: string } = {}): Promise<ComponentFiles> {
  const abs = path.resolve(dir);
  const root = options.root ?? abs;
  if (!(await isDirectory(abs))) throw new ModelLayoutError(root, `${rel(root, abs)}/ is missing (expected the ${EXPECTED_CLASS[kind]} folder)`);
  const configPath = path.join(abs, 'config.json');
  if (!(await isFile(configPath))) throw new ModelLayoutError(root, `${rel(root, configPath)} is missing`);
  const weights = await pickWeights(abs, WEIGHT_BASENAME[kind], options.variant ?? 'auto', root);
  return { dir: abs, configPath, ...weights };
}

function checkComponentClass(index: ModelIndex, name: string, expected: string, root: string): void {
  const entry = index.components[name];
  if (!entry || entry[1] === null) throw new ModelLayoutError(root, `model_index.json lists no "${name}" component (expected ${expected})`);
  if (entry[1] !== expected) throw new ModelLayoutError(root, `model_index.json: "${name}" is ${entry[1]}, expected ${expected}`);
}

/** Finds the files of a diffusers Stable Diffusion folder without parsing the component configs. */
export async function resolveDiffusersLayout(root: string, options: { variant?: WeightsVariant } = {}): Promise<{ layout: DiffusersLayout; modelIndex: ModelIndex }> {
  const abs = await requireFolder(root, 'a diffusers Stable Diffusion folder');
  const modelIndexPath = path.join(abs, 'model_index.json');
  if (!(await isFile(modelIndexPath))) {
    const looksLikeTransformers = await isFile(path.join(abs, 'config.json'));
    throw new ModelLayoutError(
      abs,
      `model_index.json is missing: not a diffusers pipeline folder${looksLikeTransformers ? ' (it has a config.json: a single model, not a Stable Diffusion pipeline)' : ''}`,
    );
  }
  let modelIndex: ModelIndex;
  try {
    modelIndex = parseModelIndex(await readJson(modelIndexPath, abs), 'model_index.json');
  } catch (err) {
    if (err instanceof ModelLayoutError) throw err;
    throw new ModelLayoutError(abs, (err as Error).message);
  }
  checkComponentClass(modelIndex, 'unet', EXPECTED_CLASS.unet, abs);
  checkComponentClass(modelIndex, 'vae', EXPECTED_CLASS.vae, abs);
  checkComponentClass(modelIndex, 'text_encoder', EXPECTED_CLASS.text_encoder, abs);

  const variant = options.variant ?? 'auto';
  const unet = await resolveComponentFolder(path.join(abs, 'unet'), 'unet', { variant, root: abs });
  const vae = await resolveComponentFolder(path.join(abs, 'vae'), 'vae', { variant, root: abs });
  const textEncoder = await resolveComponentFolder(path.join(abs, 'text_encoder'), 'text_encoder', { variant, root: abs });

  const schedulerConfigPath = path.join(abs, 'scheduler', 'scheduler_config.json');
  if (!(await isFile(schedulerConfigPath))) throw new ModelLayoutError(abs, `${rel(abs, schedulerConfigPath)} is missing`);

  let tokenizer: TokenizerFiles | null = null;
  const tokenizerDir = path.join(abs, 'tokenizer');
  if (await isDirectory(tokenizerDir)) {
    const vocabPath = path.join(tokenizerDir, 'vocab.json');
    const mergesPath = path.join(tokenizerDir, 'merges.txt');
    for (const f of [vocabPath, mergesPath]) {
      if (!(await isFile(f))) throw new ModelLayoutError(abs, `${rel(abs, f)} is missing (the tokenizer folder needs vocab.json and merges.txt)`);
    }
    tokenizer = { dir: tokenizerDir, vocabPath, mergesPath };
  }
  return { layout: { root: abs, modelIndexPath, unet, vae, textEncoder, tokenizer, schedulerConfigPath }, modelIndex };
}

async function parseIn<T>(root: string, file: string, parse: (json: unknown, label: string) => T): Promise<T> {
  const json = await readJson(file, root);
  try {
    return parse(json, rel(root, file));
  } catch (err) {
    throw new ModelLayoutError(root, (err as Error).message);
  }
}

/** Resolves a diffusers Stable Diffusion folder and parses every component config. */
export async function loadStableDiffusionModel(root: string, options: { variant?: WeightsVariant } = {}): Promise<StableDiffusionModel> {
  const { layout, modelIndex } = await resolveDiffusersLayout(root, options);
  const r = layout.root;
  return {
    layout,
    modelIndex,
    unet: await parseIn(r, layout.unet.configPath, parseUNet2DConditionConfig),
    vae: await parseIn(r, layout.vae.configPath, parseAutoencoderKLConfig),
    textEncoder: await parseIn(r, layout.textEncoder.configPath, parseClipTextConfig),
    scheduler: await parseIn(r, layout.schedulerConfigPath, parseDdimSchedulerConfig),
  };
}

/** Loads a stand-alone AutoencoderKL folder (e.g. an alternative SD-1.5 VAE). */
export async function loadAutoencoderKLFolder(dir: string, options: { variant?: WeightsVariant } = {}): Promise<{ files: ComponentFiles; config: AutoencoderKLConfig }> {
  const root = await requireFolder(dir, 'an AutoencoderKL folder');
  const files = await resolveComponentFolder(root, 'vae', { variant: options.variant ?? 'auto', root });
  return { files, config: await parseIn(root, files.configPath, parseAutoencoderKLConfig) };
}

/** Resolves and parses a transformers CLIPModel folder (`config.json` + `model.safetensors` or its fp16 variant). */
export async function loadClipModel(root: string, options: { variant?: WeightsVariant } = {}): Promise<ClipModel> {
  const abs = await requireFolder(root, 'a transformers CLIPModel folder');
  const configPath = path.join(abs, 'config.json');
  if (!(await isFile(configPath))) {
    const hint = (await isFile(path.join(abs, 'model_index.json'))) ? ' (this is a diffusers pipeline folder, not a CLIPModel)' : '';
    throw new ModelLayoutError(abs, `config.json is missing: not a transformers CLIPModel folder${hint}`);
  }
  const json = await readJson(configPath, abs);
  const architectures = (json as { architectures?: unknown }).architectures;
  if (Array.isArray(architectures) && !architectures.includes('CLIPModel')) {
    throw new ModelLayoutError(abs, `config.json describes ${architectures.join(', ')}, expected CLIPModel`);
  }
  let config: ClipModelConfig;
  try {
    config = parseClipModelConfig(json, 'config.json');
  } catch (err) {
    throw new ModelLayoutError(abs, (err as Error).message);
  }
  const weights = await pickWeights(abs, 'model', options.variant ?? 'auto', abs);
  return { layout: { root: abs, configPath, ...weights }, config };
}
