/**
 * The models one edit uses, opened from folders (a diffusers Stable Diffusion 1.x folder and a
 * transformers CLIPModel folder): configs parsed, checkpoint headers read, tokenizer loaded. No weight
 * data is read here; graphs reference the checkpoint files in place.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { loadClipModel, loadStableDiffusionModel, weightSourceFiles, type StableDiffusionModel } from '../../models/checkpoint/layout';
import type { LdmMapping } from '../../models/checkpoint/ldm-layout';
import { isSingleFileCheckpoint, loadSingleFileStableDiffusion } from '../../models/checkpoint/single-file';
import type { ClipModelWeights } from '../../models/clip';
import type { ClipTextConfig } from '../../models/config';
import { ClipTokenizer, readPadToken } from '../../models/tokenizer';
import { planUNet } from '../../models/unet/plan';
import type { UNetModel } from '../../models/unet/unet';
import type { VaeModel } from '../../models/vae';
import type { Precision } from '../../../shared/protocol';
import { halfPrecisionCopy } from '../../models/checkpoint/half-precision-copy';
import { CheckpointWeights } from '../../models/weights';
import { computeDtype, weightsVariantFor } from '../runtime/precision';

export interface TextEncoderModel {
  readonly config: ClipTextConfig;
  readonly weights: CheckpointWeights;
}

export interface PipelineModels {
  readonly stableDiffusion: StableDiffusionModel;
  readonly unet: UNetModel;
  readonly vae: VaeModel;
  readonly textEncoder: TextEncoderModel;
  /** CLIP ViT-B/16 for the guidance term; null when the edit does not use it (drag mode). */
  readonly clip: ClipModelWeights | null;
  /** CLIP's BPE tokenizer (Stable Diffusion and CLIP share the vocabulary). */
  readonly tokenizer: ClipTokenizer;
  /** Where the tokenizer files came from, for messages. */
  readonly tokenizerSource: string;
  /**
   * The checkpoint files the weights come from (the folders' own files, not float16 copies of them): each
   * component's safetensors files and, for a sharded one, its index.
   */
  readonly weightFiles: { readonly stableDiffusion: readonly string[]; readonly clip: readonly string[] };
  /** For a single-file checkpoint: where its configs came from (one sentence, for the recipe's notes). */
  readonly configSource?: string;
}

export interface OpenModelsRequest {
  /** A diffusers folder, or a single-file SD-1.5 checkpoint in the original layout (`.safetensors`). */
  readonly stableDiffusionFolder: string;
  /**
   * For a single-file checkpoint: a diffusers folder whose configs to use (diffusers' `config=`); default the folder
   * named like the checkpoint next to it, if there is one, else inferred.
   */
  readonly stableDiffusionConfigFolder?: string;
  /** Needed for CLIPDrag's guidance term; may be omitted in drag mode. */
  readonly clipFolder?: string;
  /**
   * A folder with CLIP's `vocab.json` and `merges.txt`, used when neither model folder ships them
   * (checked in that order: the SD folder's `tokenizer/`, the CLIP folder, this folder).
   */
  readonly tokenizerFolder?: string;
  /**
   * Default fp32. Also picks the weight files: fp16 and fp16-weights prefer the folders' `*.fp16.safetensors`
   * variants, fp32 the full-precision files (either falls back to the other). Half-precision weights need `cacheDir`.
   */
  readonly precision?: Precision;
  /** The pipeline cache folder; half-precision weights keep float16 copies of fp32 checkpoints under it. */
  readonly cacheDir?: string;
  /** Called before an fp32 checkpoint is converted (once per file and version). */
  readonly onConvert?: (file: string) => void;
}

async function hasBpeFiles(dir: string): Promise<boolean> {
  try {
    await Promise.all([fs.access(path.join(dir, 'vocab.json')), fs.access(path.join(dir, 'merges.txt'))]);
    return true;
  } catch {
    return false;
  }
}

type TensorMapping = Parameters<typeof CheckpointWeights.openMapped>[1];

/**
 * Opens a checkpoint for the precision: fp16 and fp16-weights bind float16 weights, from a cached F16 copy of F32
 * files (fp16 computes with them as they are, fp16-weights casts each to float32 where it is used). With a
 * mapping, the one file is a single-file checkpoint and the mapping names this component's tensors in it.
 */
async function openWeights(files: string | readonly string[], request: OpenModelsRequest, mapping?: TensorMapping): Promise<CheckpointWeights> {
  const list = typeof files === 'string' ? [files] : files;
  const open = (paths: readonly string[], options: { dtype?: ReturnType<typeof computeDtype> } = {}) => (mapping ? CheckpointWeights.openMapped(paths[0]!, mapping, options) : CheckpointWeights.open(paths, options));
  if ((request.precision ?? 'fp32') === 'fp32') return open(list);
  if (request.cacheDir === undefined) throw new Error('half-precision weights need a cache folder for the float16 copies of fp32 checkpoints');
  const dir = halfPrecisionCacheDir(request.cacheDir);
  const converted = await Promise.all(list.map((file) => halfPrecisionCopy(file, dir, request.onConvert)));
  return open(converted, { dtype: computeDtype(request.precision!) });
}

async function openStableDiffusion(request: OpenModelsRequest): Promise<{ stableDiffusion: StableDiffusionModel; mapping?: LdmMapping; configSource?: string }> {
  if (isSingleFileCheckpoint(request.stableDiffusionFolder)) {
    const { model, mapping, configSource } = await loadSingleFileStableDiffusion(request.stableDiffusionFolder, request.stableDiffusionConfigFolder !== undefined ? { configFolder: request.stableDiffusionConfigFolder } : {});
    return { stableDiffusion: model, mapping, configSource };
  }
  return { stableDiffusion: await loadStableDiffusionModel(request.stableDiffusionFolder, { variant: weightsVariantFor(request.precision ?? 'fp32') }) };
}

/** Where the float16 copies of fp32 checkpoints are kept. */
export function halfPrecisionCacheDir(cacheDir: string): string {
  return path.join(cacheDir, 'fp16-weights');
}

export async function openPipelineModels(request: OpenModelsRequest): Promise<PipelineModels> {
  const variant = weightsVariantFor(request.precision ?? 'fp32');
  const { stableDiffusion, mapping, configSource } = await openStableDiffusion(request);
  const { layout } = stableDiffusion;
  const unet: UNetModel = { plan: planUNet(stableDiffusion.unet), weights: await openWeights(layout.unet.weightsPaths, request, mapping?.unet) };
  const vae: VaeModel = { config: stableDiffusion.vae, weights: await openWeights(layout.vae.weightsPaths, request, mapping?.vae) };
  const textEncoder: TextEncoderModel = { config: stableDiffusion.textEncoder, weights: await openWeights(layout.textEncoder.weightsPaths, request, mapping?.text_encoder) };

  let clip: ClipModelWeights | null = null;
  const clipWeightFiles: string[] = [];
  if (request.clipFolder !== undefined) {
    const loaded = await loadClipModel(request.clipFolder, { variant });
    clip = { config: loaded.config, weights: await openWeights(loaded.layout.weightsPaths, request) };
    clipWeightFiles.push(...weightSourceFiles(loaded.layout));
  }

  const candidates = [layout.tokenizer?.dir, request.clipFolder, request.tokenizerFolder].filter((d): d is string => d !== undefined);
  let tokenizerSource: string | undefined;
  for (const dir of candidates) {
    if (await hasBpeFiles(dir)) {
      tokenizerSource = dir;
      break;
    }
  }
  if (!tokenizerSource) {
    throw new Error(
      `No CLIP tokenizer found: ${layout.root} has no tokenizer/ folder${request.clipFolder ? ` and ${request.clipFolder} has no vocab.json + merges.txt` : ''}. ` +
        'Use a Stable Diffusion folder that includes its tokenizer, or give a folder with CLIP\'s vocab.json and merges.txt.',
    );
  }
  const bpe = await ClipTokenizer.fromDirectory(tokenizerSource);
  // The SD folder's own tokenizer says what its prompts are padded with (SD-2.x: "!").
  const padToken = layout.tokenizer ? await readPadToken(layout.tokenizer.dir) : null;
  const tokenizer = padToken ? bpe.withSdPadding(padToken) : bpe;
  // A single file serves all three components: record it once.
  const weightFiles = { stableDiffusion: [...new Set([layout.unet, layout.vae, layout.textEncoder].flatMap(weightSourceFiles))], clip: clipWeightFiles };
  return { stableDiffusion, unet, vae, textEncoder, clip, tokenizer, tokenizerSource, weightFiles, ...(configSource ? { configSource } : {}) };
}
