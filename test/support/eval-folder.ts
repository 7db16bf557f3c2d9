/** A DragBench-layout folder for evaluation tests, and the tiny evaluation models. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { encodePng } from '../../src/sidecar/io/image';
import { DRAGBENCH_SAMPLE_PICKLE } from './batch-folder';
import { blobImage } from './tiny-pipeline';

const EVAL = path.resolve(__dirname, '..', 'fixtures', 'eval');
export const EVAL_TEST_MODELS = { dift: path.join(EVAL, 'tiny-sd21'), clip: path.join(EVAL, 'clip-vit-b32'), lpips: path.join(EVAL, 'lpips-alex') };

/** Two DragBench samples (the blob at x 20, to be dragged to x 40); results in both layouts. */
export async function makeEvalFolder(root: string): Promise<{ samples: string; reference: string }> {
  const samples = path.join(root, 'bench');
  const reference = path.join(root, 'reference-results');
  const source = await encodePng(blobImage(64, 64, 20, 32, 8));
  const moved = await encodePng(blobImage(64, 64, 40, 32, 8));
  for (const key of ['animals/sample_1', 'art_work/sample_2']) {
    const dir = path.join(samples, ...key.split('/'));
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'original_image.png'), source);
    await fs.copyFile(DRAGBENCH_SAMPLE_PICKLE, path.join(dir, 'meta_data.pkl'));
    await fs.mkdir(path.join(reference, ...key.split('/')), { recursive: true });
    // The reference set: sample_1 unchanged (a result identical to its source), sample_2 dragged.
    await fs.writeFile(path.join(reference, ...key.split('/'), 'dragged_image.png'), key.endsWith('1') ? source : moved);
  }
  // Ours: next to sample_1 only.
  await fs.writeFile(path.join(samples, 'animals', 'sample_1', 'original_image.clipdrag.png'), moved);
  return { samples, reference };
}

