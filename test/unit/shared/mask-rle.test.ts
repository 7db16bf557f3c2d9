import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countEditable, decodeMaskRle, encodeMaskRle, rleProblems, type MaskBitmap } from '../../../src/shared/mask-rle';

function bitmap(width: number, height: number, bits: number[]): MaskBitmap {
  return { width, height, data: Uint8Array.from(bits) };
}

describe('mask RLE', () => {
  it('encodes row-major runs starting with keep (0)', () => {
    const mask = bitmap(4, 2, [0, 0, 1, 1, 1, 0, 0, 0]);
    assert.deepEqual(encodeMaskRle(mask), { width: 4, height: 2, rle: [2, 3, 3] });
  });

  it('starts with an empty keep run when the first pixel is editable, and treats any non-zero byte as editable', () => {
    const mask = bitmap(3, 1, [255, 7, 0]);
    assert.deepEqual(encodeMaskRle(mask).rle, [0, 2, 1]);
  });

  it('encodes all-keep and all-editable masks', () => {
    assert.deepEqual(encodeMaskRle(bitmap(2, 2, [0, 0, 0, 0])).rle, [4]);
    assert.deepEqual(encodeMaskRle(bitmap(2, 2, [1, 1, 1, 1])).rle, [0, 4]);
  });

  it('round-trips random masks exactly', () => {
    let state = 12345;
    const random = (): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648;
    };
    for (let trial = 0; trial < 20; trial++) {
      const width = 1 + Math.floor(random() * 40);
      const height = 1 + Math.floor(random() * 30);
      const density = random();
      const data = new Uint8Array(width * height);
      for (let i = 0; i < data.length; i++) data[i] = random() < density ? 1 : 0;
      const encoded = encodeMaskRle({ width, height, data });
      assert.equal(rleProblems(encoded).length, 0);
      const decoded = decodeMaskRle(encoded);
      assert.deepEqual(decoded.data, data, `trial ${trial}`);
      assert.equal(countEditable(decoded), data.reduce((sum, bit) => sum + bit, 0));
    }
  });

  it('decodes non-canonical runs (zero-length runs in the middle)', () => {
    const decoded = decodeMaskRle({ width: 3, height: 1, rle: [1, 0, 1, 1] });
    assert.deepEqual([...decoded.data], [0, 0, 1]);
  });

  it('rejects runs that do not cover the mask exactly', () => {
    assert.throws(() => decodeMaskRle({ width: 2, height: 2, rle: [1, 2] }), /add up to 3 pixels, but width × height is 2 × 2 = 4/);
    assert.throws(() => decodeMaskRle({ width: 2, height: 2, rle: [5] }), /add up to 5 pixels/);
    assert.throws(() => decodeMaskRle({ width: 2, height: 1, rle: [1, -1, 2] }), /run 1 is -1/);
    assert.throws(() => decodeMaskRle({ width: 0, height: 2, rle: [] }), /not a pair of positive integers/);
  });

  it('refuses to encode a bitmap whose byte count does not match its size', () => {
    assert.throws(() => encodeMaskRle(bitmap(3, 3, [0, 1])), /2 bytes does not match its size 3 × 3/);
  });
});
