/**
 * A folder for batch tests: images with saved specs (one with a PNG mask, one in drag mode), a DragBench sample,
 * an image that is not an image at all and one that is cut off, two specs whose masks lie outside the folder (by `../`
 * and by absolute path), an image without a spec (not an item). Images are
 * 64 × 64 with a bright blob to drag, and the specs ask for few LoRA and drag steps, so the tiny fixture models
 * run the whole folder in seconds.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { serializeEditSpec, type EditParameters, type EditSpec } from '../../src/shared/edit-spec';
import { encodeMaskPng, encodePng } from '../../src/sidecar/io/image';
import { crc32 } from '../../src/sidecar/io/png-chunks';
import { blobImage } from './tiny-pipeline';

export const BATCH_TEST_PARAMETERS: Partial<EditParameters> = { loraSteps: 1, loraBatchSize: 1, loraRank: 4, dragSteps: 3, inferenceSteps: 10, previewInterval: 0 };
/** The same as `--param` flags, for DragBench samples. */
export const BATCH_TEST_PARAM_FLAGS = Object.entries(BATCH_TEST_PARAMETERS).flatMap(([name, value]) => ['--param', `${name}=${value}`]);

export const DRAGBENCH_SAMPLE_PICKLE = path.resolve(__dirname, '..', 'fixtures', 'batch', 'pickles', 'dragbench-sample-64.pkl');

/** The items the folder holds, by image path, with what a run does with them. */
export const BATCH_FOLDER_ITEMS = {
  'bench/animals/sample_1/original_image.png': 'runs',
  'broken.png': 'invalid',
  'cats/blob-a.png': 'runs',
  'cats/blob-b.png': 'runs',
  'cut.png': 'fails',
  'escape-absolute.png': 'invalid',
  'escape-up.png': 'invalid',
} as const;

export function batchSpec(points: EditSpec['points'], extra: Partial<EditSpec> = {}): EditSpec {
  return { version: 1, mode: 'clipdrag', prompt: 'a bright blob on a dark background', points, parameters: { ...BATCH_TEST_PARAMETERS }, ...extra };
}

async function write(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, data);
}

export async function makeBatchFolder(folder: string): Promise<string> {
  const blob = await encodePng(blobImage(64, 64, 20, 32, 8));
  const right = await encodePng(blobImage(64, 64, 44, 32, 8));

  await write(path.join(folder, 'cats', 'blob-a.png'), blob);
  await write(path.join(folder, 'cats', 'blob-a.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }])));

  const mask = new Uint8Array(64 * 64);
  for (let y = 16; y < 48; y++) for (let x = 8; x < 60; x++) mask[y * 64 + x] = 1;
  await write(path.join(folder, 'cats', 'masks', 'blob-b.png'), await encodeMaskPng({ width: 64, height: 64, data: mask }));
  await write(path.join(folder, 'cats', 'blob-b.png'), right);
  await write(
    path.join(folder, 'cats', 'blob-b.png.clipdrag-edit.json'),
    serializeEditSpec(batchSpec([{ handle: [44, 32], target: [24, 32] }], { mode: 'drag', mask: 'masks/blob-b.png' })),
  );
  // Not an item: no spec.
  await write(path.join(folder, 'cats', 'plain.png'), blob);

  const sample = path.join(folder, 'bench', 'animals', 'sample_1');
  await write(path.join(sample, 'original_image.png'), blob);
  await write(path.join(sample, 'user_drag.png'), blob);
  await write(path.join(sample, 'meta_data.pkl'), await fs.readFile(DRAGBENCH_SAMPLE_PICKLE));

  // Not an image: refused while planning.
  await write(path.join(folder, 'broken.png'), 'this is not a PNG file');
  await write(path.join(folder, 'broken.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }])));
  // A PNG whose chunks are intact (so planning, which checks the header and chunk checksums, accepts it) but whose
  // pixel data is not a zlib stream: it fails when it runs.
  await write(path.join(folder, 'cut.png'), withUndecodablePixels(blob));
  await write(path.join(folder, 'cut.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }])));
  // Masks outside the folder (a real file, next to it): refused while planning, however the spec names them.
  const outsideMask = path.join(path.dirname(folder), 'outside-mask.png');
  await fs.writeFile(outsideMask, await encodeMaskPng({ width: 64, height: 64, data: mask }));
  await write(path.join(folder, 'escape-absolute.png'), blob);
  await write(path.join(folder, 'escape-absolute.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }], { mask: outsideMask })));
  await write(path.join(folder, 'escape-up.png'), blob);
  await write(path.join(folder, 'escape-up.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }], { mask: '../outside-mask.png' })));
  return folder;
}

/**
 * A folder of `count` runnable items for workers sharing a batch: `blob-<i>.png` with a drag-mode spec each (drag
 * mode needs no CLIP model, so each edit is a few seconds with the tiny models).
 */
export async function makeWorkerFolder(folder: string, count: number, first = 0): Promise<string[]> {
  const images: string[] = [];
  for (let i = first; i < first + count; i++) {
    const cx = 16 + (i % 8) * 2;
    const image = `blob-${i}.png`;
    await write(path.join(folder, image), await encodePng(blobImage(64, 64, cx, 32, 8)));
    await write(path.join(folder, `${image}.clipdrag-edit.json`), serializeEditSpec(batchSpec([{ handle: [cx, 32], target: [cx + 16, 32] }], { mode: 'drag' })));
    images.push(image);
  }
  return images;
}

/** The PNG with its first IDAT's zlib header zeroed and the chunk's CRC made right again. */
function withUndecodablePixels(png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const view = new DataView(out.buffer);
  for (let at = 8; at + 12 <= out.length; ) {
    const length = view.getUint32(at);
    if (String.fromCharCode(...out.subarray(at + 4, at + 8)) === 'IDAT') {
      out[at + 8] = 0;
      out[at + 9] = 0;
      view.setUint32(at + 8 + length, crc32(out.subarray(at + 4, at + 8 + length)));
      return out;
    }
    at += 12 + length;
  }
  throw new Error('no IDAT chunk');
}
