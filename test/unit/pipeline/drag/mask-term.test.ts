import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { backgroundWeights, resizeMaskNearest } from '../../../../src/sidecar/pipeline/drag/mask-term';
import { runMaskTerm } from '../../../support/drag-cases';
import { GoldenCase } from '../../../support/golden-case';
import { rng } from '../../../support/reference';

test('nearest mask resize takes source cell floor(dst·in/out)', () => {
  // 5 -> 3: scale 5/3, sources floor(0), floor(1.67), floor(3.33) = 0, 1, 3.
  const column = Float32Array.from([10, 11, 12, 13, 14]);
  assert.deepEqual(Array.from(resizeMaskNearest(column, [5, 1], [3, 1])), [10, 11, 13]);
  // 4x4 -> 2x2 keeps the top-left cell of each 2x2 block.
  const m = Float32Array.from({ length: 16 }, (_, i) => i);
  assert.deepEqual(Array.from(resizeMaskNearest(m, [4, 4], [2, 2])), [0, 2, 8, 10]);
  assert.throws(() => resizeMaskNearest(m, [4, 5], [2, 2]), /mask of 16 values is not 4x5/);
});

test('background weights: λ·(1 − mask), or nothing at all for an empty mask', () => {
  assert.deepEqual(Array.from(backgroundWeights(Float32Array.from([1, 0, 0, 1]), 0.5)), [0, 0.5, 0.5, 0]);
  assert.deepEqual(Array.from(backgroundWeights(new Float32Array(4), 0.5)), [0, 0, 0, 0]);
});

test('mask_term golden case, and the term against its formula on random data', async () => {
  const golden = await GoldenCase.open('mask_term');
  try {
    const lam = golden.entry.settings.lam as number;
    const [maskShape, latentShape] = [golden.entry.inputs.mask!.shape, golden.entry.inputs.x_prev!.shape];
    const result = await runMaskTerm(await golden.float32('mask'), maskShape, await golden.float32('x_prev'), await golden.float32('x_prev_0'), latentShape, lam);
    await golden.assertOutput('interp_mask', result.interpMask);
    await golden.assertOutput('loss', [result.loss]);
    await golden.assertOutput('grad_x_prev', result.gradXPrev);
  } finally {
    await golden.close();
  }
  const next = rng(3);
  const shape = [1, 4, 3, 5];
  const x = Float32Array.from({ length: 60 }, () => next() - 0.5);
  const x0 = Float32Array.from({ length: 60 }, () => next() - 0.5);
  const mask = Float32Array.from({ length: 15 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const { loss, gradXPrev } = await runMaskTerm(mask, [1, 1, 3, 5], x, x0, shape, 0.1);
  let expected = 0;
  x.forEach((v, k) => (expected += 0.1 * Math.abs(v - x0[k]!) * (1 - mask[k % 15]!)));
  assert.ok(Math.abs(loss - expected) < 1e-6 * expected, `${loss} vs ${expected}`);
  gradXPrev.forEach((g, k) => assert.equal(g, Math.fround(0.1 * Math.sign(x[k]! - x0[k]!) * (1 - mask[k % 15]!)), `entry ${k}`));
  const empty = await runMaskTerm(new Float32Array(15), [1, 1, 3, 5], x, x0, shape, 0.1);
  assert.equal(empty.loss, 0);
  assert.ok(empty.gradXPrev.every((g) => g === 0));
});
