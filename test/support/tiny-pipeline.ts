/**
 * Shared by the pipeline tests: the tiny fixture models with a generated BPE vocabulary (the fixtures
 * ship no tokenizer), synthetic images, and an engine whose session cache persists between runs.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RgbImage } from '../../src/sidecar/io/image';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../helpers/tiny-bpe';

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures');
export const TINY_SD = path.join(FIXTURES, 'tiny-sd15');
export const TINY_CLIP = path.join(FIXTURES, 'tiny-clip-vit-b16');

/** A fresh temporary folder (removed by the caller's `after`). */
export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `clipdrag-${prefix}-`));
}

/** Writes a small CLIP-format BPE vocabulary (learned from a few sentences) into `dir`. */
export async function writeTinyTokenizer(dir: string, extraCorpus: readonly string[] = []): Promise<string> {
  await writeBpeFiles(dir, buildTinyBpeVocabulary(['a photo of a cat', 'a bright blob on a dark background', 'move the blob to the right', ...extraCorpus]));
  return dir;
}

/**
 * A dark image with a bright, soft-edged disc centred at (cx, cy): an object that drag edits can move
 * and feature tracking can follow.
 */
export function blobImage(width: number, height: number, cx: number, cy: number, radius: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x - cx, y - cy);
      const inside = Math.max(0, Math.min(1, radius + 0.5 - d));
      const i = (y * width + x) * 3;
      data[i] = Math.round(20 + 225 * inside);
      data[i + 1] = Math.round(30 + 190 * inside);
      data[i + 2] = Math.round(60 + 40 * inside);
    }
  }
  return { width, height, channels: 3, data };
}

/**
 * A copy of the tiny Stable Diffusion folder (weights hard-linked where possible) with a generated
 * `tokenizer/` folder, so that it loads like a real model folder (the CLI and the RPC server take no
 * separate tokenizer).
 */
export async function tinySdWithTokenizer(dir: string): Promise<string> {
  const target = path.join(dir, 'tiny-sd15-with-tokenizer');
  await fs.cp(TINY_SD, target, { recursive: true });
  await writeTinyTokenizer(path.join(target, 'tokenizer'));
  return target;
}
