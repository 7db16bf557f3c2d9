import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Graph } from '../../../../src/sidecar/engine/graph';
import { resizeBilinear } from '../../../../src/sidecar/engine/ops';
import { supervisionSize } from '../../../../src/sidecar/pipeline/drag/feature-upsample';
import { featureGrid, resamplingMatrix, samplePatches } from '../../../../src/sidecar/pipeline/drag/patch-sampler';
import { runFeatureUpsample } from '../../../support/drag-cases';
import { GoldenCase } from '../../../support/golden-case';
import { GraphSession } from '../../../support/graph-session';
import { rng } from '../../../support/reference';

test('supervision grid: half the image size, truncated', () => {
  assert.deepEqual(supervisionSize(512, 512), [256, 256]);
  assert.deepEqual(supervisionSize(683, 512), [341, 256]);
});

test('feature_upsample golden case: upsampled map and its adjoint through the engine VJP', async () => {
  const golden = await GoldenCase.open('feature_upsample');
  try {
    const supRes = golden.entry.settings.sup_res as [number, number];
    const result = await runFeatureUpsample(await golden.float32('feat'), golden.entry.inputs.feat!.shape, await golden.float32('R'), supRes);
    await golden.assertOutput('upsampled', result.upsampled);
    await golden.assertOutput('grad_feat', result.gradFeat);
  } finally {
    await golden.close();
  }
});

test('the resampling matrices of the sampler reproduce resizeBilinear (up, down, odd ratios) and the identity', async () => {
  assert.deepEqual(resamplingMatrix(2, 2), [1, 0, 0, 1]);
  const next = rng(9);
  for (const [h, w, oh, ow] of [
    [4, 6, 16, 24],
    [5, 7, 13, 9],
    [8, 8, 3, 5],
  ] as const) {
    const g = new Graph('resample');
    const x = g.input('x', 'float32', [1, 2, h, w]);
    // Sampling every cell of the supervision grid with unit taps is the upsampled map itself.
    const rows = g.constant(Array.from({ length: oh }, (_, i) => i), [1, oh], 'int64');
    const cols = g.constant(Array.from({ length: ow }, (_, i) => i), [1, ow], 'int64');
    g.output('sampled', samplePatches(featureGrid(x, [oh, ow]), { index0: rows }, { index0: cols }));
    g.output('resized', resizeBilinear(x, [oh, ow]));
    const session = await GraphSession.create(g);
    try {
      const out = await session.run({ x: Float32Array.from({ length: 2 * h * w }, () => next()) });
      const [a, b] = [out.sampled as Float32Array, out.resized as Float32Array];
      b.forEach((v, k) => assert.ok(Math.abs(a[k]! - v) <= 1e-6, `${h}x${w} -> ${oh}x${ow}, entry ${k}: ${a[k]} vs ${v}`));
    } finally {
      await session.release();
    }
  }
});
