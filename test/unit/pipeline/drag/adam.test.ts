import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { adamStep, initialAdamState } from '../../../../src/sidecar/pipeline/drag/adam';
import { compareTensors, GoldenTensors, readGoldenIndex, type TensorSpec } from '../../../conformance/golden';
import { float32Tensor } from '../../../conformance/case';

const FIXTURES = path.resolve(__dirname, '../../../fixtures');

test('adam: three torch.optim.Adam steps within tolerance', async () => {
  const entry = (await readGoldenIndex(FIXTURES)).cases.find((c) => c.name === 'adam')!;
  const golden = await GoldenTensors.open(path.join(FIXTURES, entry.file));
  try {
    let param = await golden.float32('z0');
    let state = initialAdamState(param.length);
    for (let k = 1; k <= 3; k++) {
      ({ param, state } = adamStep(param, await golden.float32(`grad_${k}`), state, { lr: entry.settings.lr as number }));
      assert.equal(state.step, k);
      const { error } = compareTensors(float32Tensor(golden.shape('z0'), param), await golden.read(`z_${k}`));
      assert.ok(error <= (entry.outputs[`z_${k}`] as TensorSpec).tolerance!, `step ${k}: ${error}`);
    }
  } finally {
    await golden.close();
  }
});

test('the first step moves each element by about lr against its gradient sign; inputs are not modified', () => {
  const param = new Float32Array([1, 1, 1]);
  const grad = new Float32Array([0.5, -3, 0]);
  const { param: next, state } = adamStep(param, grad, initialAdamState(3), { lr: 0.01 });
  assert.ok(Math.abs(next[0]! - 0.99) < 1e-6);
  assert.ok(Math.abs(next[1]! - 1.01) < 1e-6);
  assert.equal(next[2], 1);
  assert.deepEqual([...param], [1, 1, 1]);
  assert.ok(Math.abs(state.m[1]! + 0.3) < 1e-7);
  assert.ok(Math.abs(state.v[1]! - 0.009) < 1e-8);
  assert.throws(() => adamStep(param, new Float32Array(2), initialAdamState(3), { lr: 0.01 }), /gradient 2/);
});
