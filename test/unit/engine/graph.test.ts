import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Graph, GraphBuildError } from '../../../src/sidecar/engine/graph';
import { add, mul, reduceSum, reshape } from '../../../src/sidecar/engine/ops';
import { serializeGraph } from '../../../src/sidecar/engine/onnx/serialize';
import { runGraph } from '../../support/run-graph';

test('a graph with broadcasting, a reduction and an external weight runs on onnxruntime', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-graph-'));
  const file = path.join(dir, 'weights.bin');
  const bytes = Buffer.alloc(5 + 12); // 5 bytes of "header" before the tensor: offsets need not be aligned
  [10, 20, 30].forEach((v, i) => bytes.writeFloatLE(v, 5 + 4 * i));
  fs.writeFileSync(file, bytes);

  const g = new Graph('t');
  const a = g.input('a', 'float32', [2, 3]);
  const w = g.weight('block.w', 'float32', [3], { kind: 'external', file, offset: 5, length: 12 });
  const y = g.scope('block', () => mul(add(a, 1), w));
  g.output('y', y);
  g.output('rowsum', reduceSum(y, [1], false));

  const out = await runGraph(g, { a: Float32Array.from([1, 2, 3, 4, 5, 6]) });
  assert.deepEqual([...out.y!], [20, 60, 120, 50, 120, 210]);
  assert.deepEqual([...out.rowsum!], [200, 380]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('shape errors name the node, its module path and the input shapes', () => {
  const g = new Graph('t');
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4]);
  assert.throws(
    () => g.scope('down_blocks', () => g.scope(1, () => add(a, b))),
    (e: unknown) =>
      e instanceof GraphBuildError &&
      e.message.includes('down_blocks.1/Add_0') &&
      e.message.includes('[2, 3]') &&
      e.message.includes('[4]'),
  );
  assert.throws(() => reshape(a, [4, 2]), /cannot reshape \[2, 3\] to \[4, 2\]/);
});

test('only what the outputs need is serialised, and the hash names the graph', () => {
  const build = (scale: number) => {
    const g = new Graph('t');
    const a = g.input('a', 'float32', [3]);
    mul(a, 100); // dead: not an output
    g.output('y', mul(a, scale));
    return serializeGraph(g);
  };
  const one = build(2);
  assert.equal(one.hash, build(2).hash);
  assert.notEqual(one.hash, build(3).hash);
  const text = Buffer.from(one.bytes).toString('latin1');
  assert.ok(text.includes('Mul_1') && !text.includes('Mul_0'), 'the dead Mul is not written');
});

test('op attributes are typed per op: a wrong name or type does not compile', () => {
  const g = new Graph('attrs');
  const x = g.input('x', 'float32', [1, 2, 4, 4]);
  const w = g.input('w', 'float32', [3, 2, 1, 1]);
  const node = g.apply1('Transpose', [x], { perm: [0, 2, 3, 1] }).producer!;
  // Testing the op narrows the node, and its attributes with it.
  assert.ok(node.op === 'Transpose');
  assert.deepEqual(node.attrs.perm, [0, 2, 3, 1]);

  // tsc checks this file: each @ts-expect-error fails the type check when the line below it compiles.
  // @ts-expect-error -- Transpose's attribute is `perm`
  assert.throws(() => g.apply1('Transpose', [x], { permutation: [0, 2, 3, 1] }), GraphBuildError);
  // Never called: built for the type check only.
  const wrong = [
    // @ts-expect-error -- Conv's group is a number
    () => g.apply1('Conv', [x, w], { strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: '1' }),
    // @ts-expect-error -- Softmax cannot be built without its axis
    () => g.apply1('Softmax', [x]),
    // @ts-expect-error -- Add has no attributes
    () => g.apply1('Add', [x, x], { axis: 1 }),
    // @ts-expect-error -- ScatterElements reduces by 'add' or 'none'
    () => g.apply1('ScatterElements', [x, x, x], { axis: 0, reduction: 'mul' }),
    // @ts-expect-error -- there is no op of that name
    () => g.apply1('Gelu', [x]),
  ];
  assert.equal(wrong.length, 5);
});
