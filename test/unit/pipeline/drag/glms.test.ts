import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { cosineSimilarity, fuseGradients } from '../../../../src/sidecar/pipeline/drag/glms';
import { compareTensors, GoldenTensors, readGoldenIndex, type TensorSpec } from '../../../conformance/golden';
import { float32Tensor, subcases } from '../../../conformance/case';

const FIXTURES = path.resolve(__dirname, '../../../fixtures');

test('glms_fusion: every golden sub-case within tolerance', async () => {
  const entry = (await readGoldenIndex(FIXTURES)).cases.find((c) => c.name === 'glms_fusion')!;
  const golden = await GoldenTensors.open(path.join(FIXTURES, entry.file));
  try {
    for (const sub of subcases(entry)) {
      const p = `${sub.index}.`;
      const fused = fuseGradients(await golden.float32(`${p}G_l`), await golden.float32(`${p}G_g`), sub.fuse_cof as number);
      assert.equal(Math.sign(fused.cosine), Math.sign(sub.cosine as number));
      for (const [name, mine] of [['cosine', float32Tensor([1], [fused.cosine])], ['G', float32Tensor(golden.shape(`${p}G`), fused.gradient)]] as const) {
        const { error } = compareTensors(mine, await golden.read(`${p}${name}`));
        const tolerance = (entry.outputs[`${p}${name}`] as TensorSpec).tolerance!;
        assert.ok(error <= tolerance, `sub-case ${sub.index} ${name}: ${error} > ${tolerance}`);
      }
    }
  } finally {
    await golden.close();
  }
});

test('fusion rule on constructed gradients', () => {
  const gl = new Float32Array([1, 0, 0, 0]);
  // Orthogonal: c = 0 counts as consistent, s = 1, the full global gradient is added.
  assert.deepEqual([...fuseGradients(gl, new Float32Array([0, 2, 0, 0]), 0.5).gradient], [1, 1, 0, 0]);
  // Parallel: c = 1, s = 0, nothing is added.
  assert.deepEqual([...fuseGradients(gl, new Float32Array([3, 0, 0, 0]), 0.5).gradient], [1, 0, 0, 0]);
  // Anti-parallel: c = -1 scales the global gradient by λ·c.
  const anti = fuseGradients(gl, new Float32Array([-2, 0, 0, 0]), 0.5);
  assert.equal(anti.cosine, -1);
  assert.deepEqual([...anti.gradient], [2, 0, 0, 0]);
  // 45 degrees, contradicting: c = -√½.
  const g = fuseGradients(gl, new Float32Array([-1, 1, 0, 0]), 1);
  assert.ok(Math.abs(g.cosine + Math.SQRT1_2) < 1e-7);
  assert.ok(Math.abs(g.gradient[0]! - (1 + Math.SQRT1_2)) < 1e-6 && Math.abs(g.gradient[1]! + Math.SQRT1_2) < 1e-6);
  assert.equal(cosineSimilarity(new Float32Array(3), new Float32Array([1, 2, 3])), 0);
  assert.throws(() => cosineSimilarity(new Float32Array(2), new Float32Array(3)), /2 and 3 values/);
});
