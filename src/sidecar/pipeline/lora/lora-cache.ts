/**
 * A trained LoRA is kept on disk, so a second edit of the same image with the same prompt, model and
 * LoRA settings skips training: `<cacheDir>/lora/<key>.safetensors`, the key a hash of everything the
 * training result depends on. Files appear complete or not at all (written, then renamed); an
 * unreadable cached file is trained again and replaced.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readLoraFile, writeLoraFile, type LoraWeights } from './lora-weights';

/** Bumped when the training procedure changes in a way that changes its results. */
const LORA_CACHE_FORMAT = 1;

export interface LoraCacheKeyParts {
  /** sha256 of the training image's pixels (after resizing to the working size). */
  readonly imageSha256: string;
  readonly prompt: string;
  /** The Stable Diffusion model: its id, revision, commit and the hashes of its files. */
  readonly model: unknown;
  /** Every training setting that changes the result (rank, steps, rate, batch, seed, crop, decay). */
  readonly settings: unknown;
}

export function loraCacheKey(parts: LoraCacheKeyParts): string {
  const text = JSON.stringify({ format: LORA_CACHE_FORMAT, ...parts });
  return createHash('sha256').update(text).digest('hex');
}

export function loraCacheFile(cacheDir: string, key: string): string {
  return path.join(cacheDir, 'lora', `${key}.safetensors`);
}

export interface CachedLora {
  readonly lora: LoraWeights;
  readonly fromCache: boolean;
  readonly file: string;
}

/** The cached LoRA for `key`, or the result of `train` (then stored under `key`). */
export async function cachedLora(cacheDir: string, key: string, train: () => Promise<LoraWeights>, onNote?: (message: string) => void): Promise<CachedLora> {
  const file = loraCacheFile(cacheDir, key);
  try {
    return { lora: await readLoraFile(file), fromCache: true, file };
  } catch (error) {
    // Not cached yet is the normal first run, not a problem worth a note; a damaged file is.
    if (!isMissingFile(error)) onNote?.(`the cached LoRA ${file} cannot be read (${error instanceof Error ? error.message : String(error)}); training it again`);
  }
  const lora = await train();
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeLoraFile(file, lora, { format: String(LORA_CACHE_FORMAT), key });
  } catch (error) {
    // A cache that cannot be written costs time next run, not this edit.
    onNote?.(`the trained LoRA could not be cached in ${path.dirname(file)}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { lora, fromCache: false, file };
}

function isMissingFile(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
  }
  return false;
}
