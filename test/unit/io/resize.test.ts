import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { resizeBilinearLikePil, resizeNearestLikeOpenCv, sizeForWidth, type Pixels8 } from '../../../src/sidecar/io/resize';

const GOLDEN_DIR = path.join(__dirname, '..', '..', 'fixtures', 'io', 'resize');

interface GoldenCase {
  name: string;
  channels: number;
  width: number;
  height: number;
}

async function readPixels(file: string, channels: number): Promise<Pixels8> {
  const decoder = channels === 1 ? sharp(file).toColourspace('b-w') : sharp(file);
  const { data, info } = await decoder.raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, channels, `${file} has ${info.channels} channels`);
  return { width: info.width, height: info.height, channels, data: new Uint8Array(data) };
}

describe('Pillow BILINEAR resize', () => {
  const manifest = JSON.parse(readFileSync(path.join(GOLDEN_DIR, 'manifest.json'), 'utf8')) as { pillow: string; cases: GoldenCase[] };

  for (const golden of manifest.cases) {
    it(`matches Pillow ${manifest.pillow} exactly: ${golden.name}`, async () => {
      const input = await readPixels(path.join(GOLDEN_DIR, `${golden.name}.input.png`), golden.channels);
      const expected = await readPixels(path.join(GOLDEN_DIR, `${golden.name}.expected.png`), golden.channels);
      const actual = resizeBilinearLikePil(input, golden.width, golden.height);
      assert.equal(actual.width, expected.width);
      assert.equal(actual.height, expected.height);
      let mismatches = 0;
      for (let i = 0; i < expected.data.length; i++) if (actual.data[i] !== expected.data[i]) mismatches++;
      assert.equal(mismatches, 0, `${mismatches} of ${expected.data.length} bytes differ`);
    });
  }

  it('returns a copy when the size does not change', () => {
    const image: Pixels8 = { width: 2, height: 1, channels: 1, data: Uint8Array.from([3, 250]) };
    const same = resizeBilinearLikePil(image, 2, 1);
    assert.deepEqual([...same.data], [3, 250]);
    assert.notEqual(same.data, image.data);
  });

  it('keeps a constant image constant at any scale', () => {
    const image: Pixels8 = { width: 37, height: 23, channels: 3, data: new Uint8Array(37 * 23 * 3).fill(201) };
    for (const [width, height] of [[5, 3], [512, 318], [1, 1]] as const) {
      const out = resizeBilinearLikePil(image, width, height);
      assert.ok(out.data.every((value) => value === 201), `${width} × ${height}`);
    }
  });

  it('rejects bad sizes and buffers', () => {
    const image: Pixels8 = { width: 2, height: 2, channels: 3, data: new Uint8Array(12) };
    assert.throws(() => resizeBilinearLikePil(image, 0, 2), /must be positive integers/);
    assert.throws(() => resizeBilinearLikePil({ ...image, data: new Uint8Array(5) }, 1, 1), /5 bytes does not match 2 × 2 × 3/);
  });
});

describe('OpenCV INTER_NEAREST resize', () => {
  it('takes source index floor(x · src / dst) when shrinking', () => {
    const row: Pixels8 = { width: 5, height: 1, channels: 1, data: Uint8Array.from([10, 11, 12, 13, 14]) };
    // 5 → 3: inverse scale 5/3, source columns 0, 1, 3.
    assert.deepEqual([...resizeNearestLikeOpenCv(row, 3, 1).data], [10, 11, 13]);
  });

  it('repeats pixels when enlarging, rows and columns independently', () => {
    const image: Pixels8 = { width: 2, height: 2, channels: 1, data: Uint8Array.from([1, 2, 3, 4]) };
    const out = resizeNearestLikeOpenCv(image, 4, 3);
    // columns 0,0,1,1 ; rows floor(y · 2/3) = 0, 0, 1
    assert.deepEqual([...out.data], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it('keeps channels together', () => {
    const image: Pixels8 = { width: 2, height: 1, channels: 2, data: Uint8Array.from([1, 2, 3, 4]) };
    assert.deepEqual([...resizeNearestLikeOpenCv(image, 3, 1).data], [1, 2, 1, 2, 3, 4]);
  });

  it('never invents values: a binary mask stays binary', () => {
    const data = new Uint8Array(31 * 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 3 === 0 ? 1 : 0;
    const out = resizeNearestLikeOpenCv({ width: 31, height: 17, channels: 1, data }, 512, 280);
    assert.ok(out.data.every((value) => value === 0 || value === 1));
    assert.equal(out.data[0], data[0]);
    assert.equal(out.data[out.data.length - 1], data[data.length - 1]);
  });
});

describe('reference input size', () => {
  it('is width 512 and int(512 · H / W)', () => {
    assert.deepEqual(sizeForWidth({ width: 512, height: 512 }), { width: 512, height: 512 });
    assert.deepEqual(sizeForWidth({ width: 300, height: 200 }), { width: 512, height: 341 });
    assert.deepEqual(sizeForWidth({ width: 4032, height: 3024 }), { width: 512, height: 384 });
    assert.deepEqual(sizeForWidth({ width: 5000, height: 3 }), { width: 512, height: 1 });
  });
});
