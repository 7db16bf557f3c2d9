import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphMemory } from '../../../src/sidecar/engine/graph-memory';
import { grad } from '../../../src/sidecar/engine/autodiff';
import { Graph } from '../../../src/sidecar/engine/graph';
import { cast, mul, reduceSum, relu } from '../../../src/sidecar/engine/ops';

test('graphMemory counts the forward activations the backward reads, not weights or weight-only casts', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    const g = new Graph('memory');
    const x = g.input('x', 'float32', [4, 8]);
    const w = cast(g.weight('w', 'float32', [8], { kind: 'data', data: new Float32Array(8).fill(2) }), dtype);
    const h = mul(cast(x, dtype), w); // its gradient needs w only (a weight)
    const y = relu(h); // its gradient needs h: saved
    const loss = reduceSum(cast(y, 'float32'), [0, 1], false);
    grad(loss, [x]);
    const memory = graphMemory(g, dtype);
    const bytes = dtype === 'float16' ? 2 : 4;
    assert.equal(memory.weightBytes, 8 * bytes);
    assert.equal(memory.savedActivations, 1, dtype);
    assert.equal(memory.savedActivationBytes, 32 * bytes, dtype);
    assert.equal(memory.largestActivationBytes, 32 * 4, 'the float32 input cast or output');
  }
});
