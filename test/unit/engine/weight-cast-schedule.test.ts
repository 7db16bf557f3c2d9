// Weights stored in float16 in a float32 graph: each Cast is written where its first reader runs, waiting for that
// reader's other input, so onnxruntime cannot cast every weight before the first layer (onnx/serialize.ts).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { grad } from '../../../src/sidecar/engine/autodiff';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/sidecar/engine/float16';
import { Graph, type Value } from '../../../src/sidecar/engine/graph';
import { onnx } from '../../../src/sidecar/engine/onnx/onnx-proto';
import { serializeGraph, TIED_WEIGHT_MIN_BYTES } from '../../../src/sidecar/engine/onnx/serialize';
import * as op from '../../../src/sidecar/engine/ops';
import { SessionStore } from '../../../src/sidecar/engine/runtime/sessions';
import { assertClose } from '../../support/op-check';
import { rng } from '../../support/reference';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-weight-casts-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

// Kernels and head above TIED_WEIGHT_MIN_BYTES in float16; the biases below it.
const C = 64;
const SIDE = 4;
const HEAD = 32;
const LAYERS = 3;
const random = (n: number, seed: number) => {
  const next = rng(seed);
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * 0.5);
};

/** Conv layers then a linear head, weights from one checkpoint file (float16 or float32, same values). */
function network(file: string, stored: 'float16' | 'float32', withGrad: boolean): Graph {
  const g = new Graph('layers');
  const x = g.input('x', 'float32', [1, C, SIDE, SIDE]);
  let offset = 0;
  const weight = (name: string, shape: number[]): Value => {
    const bytes = shape.reduce((a, b) => a * b, 1) * (stored === 'float16' ? 2 : 4);
    const w = g.weight(name, stored, shape, { kind: 'external', file, offset, length: bytes });
    offset += bytes;
    return op.cast(w, 'float32');
  };
  let h = x;
  for (let i = 0; i < LAYERS; i++) h = op.tanh(op.conv2d(h, weight(`conv${i}`, [C, C, 3, 3]), weight(`bias${i}`, [C]), { padding: 1 }));
  const y = op.linear(op.reshape(h, [1, C * SIDE * SIDE]), weight('head', [HEAD, C * SIDE * SIDE]));
  g.output('y', y);
  if (withGrad) g.output('dx', grad(op.reduceSum(op.mul(y, y), [0, 1], false), [x])[0]!);
  return g;
}

function writeCheckpoint(file: string, stored: 'float16' | 'float32'): void {
  const count = LAYERS * (C * C * 9 + C) + HEAD * C * SIDE * SIDE;
  const values = float16BitsToFloat32(float32ToFloat16Bits(random(count, 5)));
  const bytes = stored === 'float16' ? float32ToFloat16Bits(values) : values;
  fs.writeFileSync(file, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** The written model: its nodes, who produces each value, and whether a value depends on another. */
function written(graph: Graph) {
  const model = onnx.ModelProto.decode(serializeGraph(graph).bytes);
  const nodes = model.graph!.node!;
  const producer = new Map(nodes.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  const external = model.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  const bytes = (t: onnx.ITensorProto) => Number(t.externalData!.find((e) => e.key === 'length')!.value);
  // The weights large enough to be tied.
  const weights = new Set(external.filter((t) => bytes(t) >= TIED_WEIGHT_MIN_BYTES).map((t) => t.name!));
  const dependsOn = (name: string, test: (node: onnx.INodeProto | undefined, name: string) => boolean, seen = new Set<string>()): boolean => {
    if (seen.has(name)) return false;
    seen.add(name);
    const node = producer.get(name);
    if (test(node, name)) return true;
    return node !== undefined && node.input!.some((i) => dependsOn(i, test, seen));
  };
  return { nodes, producer, weights, dependsOn };
}

test('each weight cast is made when its layer runs: after the layer\'s input, forward or backward', () => {
  const file = path.join(root, 'half.bin');
  writeCheckpoint(file, 'float16');
  const { nodes, producer, weights, dependsOn } = written(network(file, 'float16', true));
  const tiedCopy = (name: string) => producer.get(name)?.opType === 'Reshape' && weights.has(producer.get(name)!.input![0]!);
  const casts = nodes.filter((n) => n.opType === 'Cast' && tiedCopy(n.input![0]!));
  // The 3 kernels and the head, in the forward pass and again in the backward (biases are too small to be tied).
  assert.equal(casts.length, 4 + 4);
  assert.ok(!nodes.some((n) => n.opType === 'Cast' && weights.has(n.input![0]!)), 'no Cast reads a stored weight directly');
  for (const cast of casts) {
    const rows = producer.get(cast.input![0]!)!.input![1]!;
    const backward = cast.name!.startsWith('recompute.');
    const waitsFor = backward ? (n: onnx.INodeProto | undefined) => n?.name?.startsWith('grad') ?? false : (_: unknown, name: string) => name === 'x';
    assert.ok(dependsOn(rows, waitsFor), `${cast.name} waits for the ${backward ? 'backward pass' : 'forward activation'}`);
  }
});

test('float32 weights: the flipped kernels of Conv input gradients are made when the backward reaches their layer', () => {
  const file = path.join(root, 'flip.bin');
  // 48 channels at 24×24: the cotangent outweighs the kernel, so the input gradient convolves the flipped kernel.
  const c = 48;
  const bytes = c * c * 9 * 4;
  fs.writeFileSync(file, Buffer.alloc(2 * bytes));
  const g = new Graph('flip');
  const x = g.input('x', 'float32', [1, c, 24, 24]);
  let h = x;
  for (let i = 0; i < 2; i++) h = op.tanh(op.conv2d(h, g.weight(`w${i}`, 'float32', [c, c, 3, 3], { kind: 'external', file, offset: i * bytes, length: bytes }), null, { padding: 1 }));
  g.output('dx', grad(op.reduceSum(h, [0, 1, 2, 3], false), [x])[0]!);
  const { nodes, weights, dependsOn } = written(g);
  const flips = nodes.filter((n) => n.opType !== 'Conv' && n.input!.some((i) => weights.has(i)));
  assert.ok(flips.length >= 2, 'the weights are read by the flip');
  for (const n of flips) {
    assert.equal(n.opType, 'Reshape', `${n.name} reads a weight through the tie`);
    assert.ok(dependsOn(n.input![1]!, (node) => node?.name?.startsWith('grad') ?? false), `${n.name} waits for the backward pass`);
  }
});

test('float16-stored weights give the float32 results, forward and backward, through shared-weight sessions', async () => {
  const store = new SessionStore(path.join(root, 'cache'));
  const x = random(C * SIDE * SIDE, 9);
  const results: Record<string, Float32Array>[] = [];
  for (const [handle, stored] of [[1, 'float16'], [2, 'float32']] as const) {
    const file = path.join(root, `${stored}.bin`);
    writeCheckpoint(file, stored);
    await store.compile(handle, serializeGraph(network(file, stored, true)), { device: 'cpu', intraOpNumThreads: 1 });
    results.push((await store.run(handle, { x })).outputs as Record<string, Float32Array>);
    await store.release(handle);
  }
  for (const name of ['y', 'dx']) assertClose(Array.from(results[0]![name]!), Array.from(results[1]![name]!), name, 1e-6, 1e-7);
});

test('a grouped convolution\'s flipped kernel (reshaped, transposed, reshaped) loads and runs, float32 and float16', async () => {
  // onnxruntime fuses consecutive Reshapes and fails when one of them has a computed shape: the tie must not sit
  // next to the kernel's reshapes.
  const store = new SessionStore(path.join(root, 'grouped-cache'));
  const [c, groups, side] = [64, 2, 16];
  const count = c * (c / groups) * 9;
  const values = float16BitsToFloat32(float32ToFloat16Bits(random(count, 3)));
  const x = random(c * side * side, 4);
  const results: Record<string, Float32Array>[] = [];
  for (const [handle, stored] of [[10, 'float32'], [11, 'float16']] as const) {
    const file = path.join(root, `grouped-${stored}.bin`);
    const bytes = stored === 'float16' ? float32ToFloat16Bits(values) : values;
    fs.writeFileSync(file, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const g = new Graph('grouped');
    const input = g.input('x', 'float32', [1, c, side, side]);
    const w = g.weight('w', stored, [c, c / groups, 3, 3], { kind: 'external', file, offset: 0, length: bytes.byteLength });
    const y = op.tanh(op.conv2d(input, op.cast(w, 'float32'), null, { padding: 1, groups }));
    g.output('dx', grad(op.reduceSum(op.mul(y, y), [0, 1, 2, 3], false), [input])[0]!);
    await store.compile(handle, serializeGraph(g), { device: 'cpu', intraOpNumThreads: 1 });
    results.push((await store.run(handle, { x })).outputs as Record<string, Float32Array>);
    await store.release(handle);
  }
  assertClose(Array.from(results[1]!.dx!), Array.from(results[0]!.dx!), 'dx', 1e-6, 1e-7);
});
