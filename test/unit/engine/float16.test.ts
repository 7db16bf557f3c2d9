import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bit,
  float32ToFloat16Bits,
} from '../../../src/sidecar/engine/float16';

function isHalfNaN(bits: number): boolean {
  return (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
}

test('every non-NaN F16 pattern decodes exactly and encodes back to itself', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const decoded = float16BitsToFloat32(all);
  for (let i = 0; i < 65536; i++) {
    if (isHalfNaN(i)) {
      assert.ok(Number.isNaN(decoded[i]), `pattern ${i.toString(16)} should be NaN`);
      assert.ok(isHalfNaN(float32ToFloat16Bit(decoded[i]!)));
      continue;
    }
    assert.equal(float32ToFloat16Bit(decoded[i]!), i, `pattern 0x${i.toString(16)} -> ${decoded[i]}`);
  }
  assert.equal(decoded[0x3c00], 1);
  assert.equal(decoded[0x7bff], 65504);
  assert.equal(decoded[0x0001], 2 ** -24);
  assert.equal(decoded[0x7c00], Infinity);
  assert.equal(decoded[0xfc00], -Infinity);
  assert.ok(Object.is(decoded[0x8000], -0));
});

test('F16 encoding rounds to nearest, ties to even, with overflow and underflow', () => {
  assert.equal(float32ToFloat16Bit(1 + 2 ** -11), 0x3c00); // tie -> even (down)
  assert.equal(float32ToFloat16Bit(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
  assert.equal(float32ToFloat16Bit(1 + 2 ** -11 + 2 ** -20), 0x3c01); // above the tie
  assert.equal(float32ToFloat16Bit(65519), 0x7bff);
  assert.equal(float32ToFloat16Bit(65520), 0x7c00); // rounds up to Inf
  assert.equal(float32ToFloat16Bit(1e6), 0x7c00);
  assert.equal(float32ToFloat16Bit(-1e6), 0xfc00);
  assert.equal(float32ToFloat16Bit(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal -> 0
  assert.equal(float32ToFloat16Bit(3 * 2 ** -25), 0x0002); // tie between 1 and 2 units -> 2
  assert.equal(float32ToFloat16Bit(2 ** -25 * 1.0001), 0x0001);
  assert.equal(float32ToFloat16Bit(2 ** -14 - 2 ** -25), 0x0400); // largest subnormal rounds up into the normals
  assert.equal(float32ToFloat16Bit(1e-30), 0);
  assert.equal(float32ToFloat16Bit(-1e-30), 0x8000);
  assert.deepEqual([...float32ToFloat16Bits(new Float32Array([0.1, -2]))], [0x2e66, 0xc000]);
});

test('BF16 keeps the upper half of float32 with round-to-nearest-even', () => {
  const values = new Float32Array([1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, NaN, Infinity]);
  const bits = float32ToBfloat16Bits(values);
  assert.deepEqual([...bits.slice(0, 5)], [0x3f80, 0xc000, 0x3f80, 0x3f82, 0x7f80]);
  assert.ok(Number.isNaN(bfloat16BitsToFloat32(bits)[5]));
  assert.equal(bfloat16BitsToFloat32(bits)[6], Infinity);
  const all = new Uint16Array(65536).map((_, i) => i);
  const decoded = bfloat16BitsToFloat32(all);
  const reencoded = float32ToBfloat16Bits(decoded);
  for (let i = 0; i < 65536; i++) {
    if ((i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0) continue; // NaN payloads may be quieted
    assert.equal(reencoded[i], i);
  }
});
