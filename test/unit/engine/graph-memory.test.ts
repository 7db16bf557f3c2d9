import assert from 'node:assert/strict';
import { test } from 'node:test';
import { graphMemory } from '../../../src/sidecar/engine/graph-memory';
import { grad } from '../../../src/sidecar/engine/autodiff';
import { Graph } from '../../../src/sidecar/engine/graph';
import { add, cast, mul, reduceSum, relu } from '../../../src/sidecar/engine/ops';

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

test('graphMemory counts the sums vjp builds where a value fans out as backward, whatever their scope', () => {
  const g = new Graph('fan-out');
  const x = g.input('x', 'float32', [4, 8]);
  const h = relu(x);
  // h feeds two products: its cotangent is the sum of two contributions, built outside the `grad` scope.
  const loss = reduceSum(add(mul(h, h), relu(h)), [0, 1], false);
  grad(loss, [x]);
  const sums = g.nodes.filter((n) => n.op === 'Add' && !n.scope.startsWith('grad'));
  assert.ok(sums.length > 1, 'the test needs a fan-out sum outside the grad scope');
  const memory = graphMemory(g, 'float32');
  // Saved: h (the product's and the outer relu's backward read it; x is an input, not an activation), nothing of
  // the backward's own sums.
  assert.equal(memory.savedActivations, 1);
  assert.equal(memory.savedActivationBytes, 32 * 4);
});
