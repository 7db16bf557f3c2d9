/**
 * Every op's gradient rule against finite differences. float64 wherever onnxruntime's CPU provider has
 * double kernels for the whole forward + backward graph; float32 (with the step-derived tolerance of
 * gradcheck.ts) where it does not: Conv, ConvTranspose, Erf, InstanceNormalization, Resize, AveragePool.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vjp } from '../../../src/sidecar/engine/autodiff';
import { Graph, type Value } from '../../../src/sidecar/engine/graph';
import * as op from '../../../src/sidecar/engine/ops';
import { gradcheck, type GradInput } from '../../support/gradcheck';

const t = (...shape: number[]): GradInput => ({ shape });
const positive = (...shape: number[]): GradInput => ({ shape, lo: 0.5, hi: 2 });
/** Values kept at least 0.2 away from `kinks`, so a finite-difference step never crosses one. */
function awayFrom(shape: number[], kinks: number[], seed: number): GradInput {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    const v = ((s / 2147483647) * 4 - 2) as number;
    const near = kinks.find((k) => Math.abs(v - k) < 0.2);
    return near === undefined ? v : near + (v >= near ? 0.2 : -0.2) + Math.sign(v - near || 1) * 0.05;
  });
  return { shape, data };
}

test('gradients of binary arithmetic with broadcasting (float64)', async () => {
  await gradcheck({
    dtype: 'float64',
    inputs: { a: t(2, 3, 4), b: t(3, 1), c: { shape: [4], lo: 1, hi: 2 } },
    build: ({ a, b, c }) => op.div(op.sub(op.mul(op.add(a!, b!), a!), op.neg(b!)), c!),
  });
});

test('gradients of unary math (float64)', async () => {
  const cases: [string, GradInput, (v: ReturnType<typeof op.exp>) => ReturnType<typeof op.exp>][] = [
    ['sqrt', positive(3, 4), op.sqrt],
    ['exp', t(3, 4), op.exp],
    ['log', positive(3, 4), op.log],
    ['abs', awayFrom([3, 4], [0], 3), op.abs],
    ['reciprocal', positive(3, 4), op.reciprocal],
    ['sigmoid', t(3, 4), op.sigmoid],
    ['tanh', t(3, 4), op.tanh],
    ['sin', t(3, 4), op.sin],
    ['cos', t(3, 4), op.cos],
    ['relu', awayFrom([3, 4], [0], 5), op.relu],
    ['pow 3', t(3, 4), (v) => op.pow(v, 3)],
    ['pow 2', t(3, 4), (v) => op.pow(v, 2)],
    ['pow -0.5', positive(3, 4), (v) => op.pow(v, -0.5)],
    ['silu', t(3, 4), op.silu],
    ['x times sign(x): sign passes no gradient', awayFrom([3, 4], [0], 11), (v) => op.mul(v, op.sign(v))],
    ['quickGelu', t(3, 4), op.quickGelu],
    ['gelu tanh', t(3, 4), (v) => op.gelu(v, 'tanh')],
  ];
  for (const [name, input, f] of cases) {
    await gradcheck({ dtype: 'float64', inputs: { x: input }, build: ({ x }) => f(x!) }).catch((e: Error) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
});

test('gradient of a float cast round trip', async () => {
  await gradcheck({ dtype: 'float32', inputs: { x: t(3, 4) }, build: ({ x }) => op.cast(op.exp(op.cast(x!, 'float64')), 'float32') });
});

test('gradients of erf and exact gelu (float32: no double Erf kernel)', async () => {
  await gradcheck({ dtype: 'float32', inputs: { x: t(4, 5) }, build: ({ x }) => op.erf(x!) });
  await gradcheck({ dtype: 'float32', inputs: { x: t(4, 5) }, build: ({ x }) => op.gelu(x!) });
});

test('gradients of minimum, maximum, clip and where (float64)', async () => {
  const a = awayFrom([3, 4], [0], 7);
  await gradcheck({ dtype: 'float64', inputs: { a, b: { shape: [4], data: [0.5, -0.5, 1.5, -1.5] } }, build: ({ a, b }) => op.mul(op.maximum(a!, b!), op.minimum(a!, 0)) });
  await gradcheck({ dtype: 'float64', inputs: { a: awayFrom([3, 4], [-0.5, 1], 9) }, build: ({ a }) => op.add(op.clip(a!, -0.5, 1), op.clip(a!, undefined, 1)) });
  await gradcheck({
    dtype: 'float64',
    inputs: { a: t(3, 4), b: t(4) },
    build: ({ a, b }) => op.where(op.greater(op.stopGradient(a!), 0), op.mul(a!, b!), op.exp(b!)),
  });
});

test('gradients of matmul, linear and gemm (float64)', async () => {
  await gradcheck({ dtype: 'float64', inputs: { a: t(2, 3, 4, 5), b: t(3, 5, 2) }, build: ({ a, b }) => op.matmul(a!, b!) });
  await gradcheck({ dtype: 'float64', inputs: { a: t(2, 3, 4, 5), w: t(5, 6) }, build: ({ a, w }) => op.matmul(a!, w!) });
  await gradcheck({ dtype: 'float64', inputs: { m: t(3, 4), x: t(2, 4, 5) }, build: ({ m, x }) => op.matmul(m!, x!) });
  await gradcheck({ dtype: 'float64', inputs: { x: t(2, 3, 5), w: t(4, 5), b: t(4) }, build: ({ x, w, b }) => op.linear(x!, w!, b!) });
  await gradcheck({
    dtype: 'float64',
    inputs: { a: t(5, 3), b: t(4, 5), c: t(4) },
    build: ({ a, b, c }) => op.gemm(a!, b!, { transA: true, transB: true, alpha: 0.5, beta: 2 }, c!),
  });
  await gradcheck({ dtype: 'float64', inputs: { a: t(3, 5), b: t(5, 4) }, build: ({ a, b }) => op.gemm(a!, b!) });
});

test('gradients of conv2d and convTranspose2d w.r.t. input, weight and bias (float32)', async () => {
  await gradcheck({
    dtype: 'float32',
    inputs: { x: t(2, 4, 7, 6), w: t(6, 2, 3, 3), b: t(6) },
    build: ({ x, w, b }) => op.conv2d(x!, w!, b!, { stride: 2, padding: [1, 0, 2, 1], dilation: [1, 2], groups: 2 }),
  });
  await gradcheck({
    dtype: 'float32',
    inputs: { x: t(1, 3, 6, 6), w: t(5, 3, 3, 3) },
    build: ({ x, w }) => op.conv2d(x!, w!, null, { padding: 1 }),
  });
  await gradcheck({
    dtype: 'float32',
    inputs: { x: t(1, 4, 4, 5), w: t(4, 3, 3, 3), b: t(3) },
    build: ({ x, w, b }) => op.convTranspose2d(x!, w!, b!, { stride: 2, padding: 1, outputPadding: 1 }),
  });
});

test('unit-stride conv2d input gradients (a Conv with the flipped kernel) match finite differences', async () => {
  // Grouped, dilated, asymmetric padding, a non-square kernel.
  await gradcheck({
    dtype: 'float32',
    inputs: { x: t(2, 4, 7, 6), w: t(6, 2, 3, 2), b: t(6) },
    build: ({ x, w, b }) => op.conv2d(x!, w!, b!, { padding: [2, 0, 1, 1], dilation: [2, 1], groups: 2 }),
  });
  // 1×1 kernel (no flip), and one whose padding reaches past the kernel (ConvTranspose kept).
  await gradcheck({ dtype: 'float32', inputs: { x: t(1, 3, 4, 5), w: t(5, 3, 1, 1) }, build: ({ x, w }) => op.conv2d(x!, w!) });
  await gradcheck({ dtype: 'float32', inputs: { x: t(1, 3, 4, 5), w: t(2, 3, 1, 1) }, build: ({ x, w }) => op.conv2d(x!, w!, null, { padding: 1 }) });
});

test('a unit-stride conv2d differentiates its input with a Conv, a strided one with a ConvTranspose', () => {
  const backwardOps = (stride: number) => {
    const g = new Graph('conv-grad');
    const x = g.input('x', 'float32', [1, 4, 8, 8]);
    const w = g.input('w', 'float32', [4, 4, 3, 3]);
    const y = op.conv2d(x, w, null, { stride, padding: 1 });
    vjp(g, [{ value: y, cotangent: g.input('gy', 'float32', y.shape) }], [x]);
    return g.nodes.filter((n) => n.op.startsWith('Conv')).map((n) => n.op);
  };
  assert.deepEqual(backwardOps(1), ['Conv', 'Conv']);
  assert.deepEqual(backwardOps(2), ['Conv', 'ConvTranspose']);
});

test('gradients of softmax and layerNorm (float64)', async () => {
  await gradcheck({ dtype: 'float64', inputs: { x: t(2, 3, 5) }, build: ({ x }) => op.softmax(x!) });
  await gradcheck({ dtype: 'float64', inputs: { x: t(2, 3, 5) }, build: ({ x }) => op.softmax(x!, 1) });
  await gradcheck({
    dtype: 'float64',
    inputs: { x: t(2, 3, 6), w: t(6), b: t(6) },
    build: ({ x, w, b }) => op.layerNorm(x!, w!, b!, 1e-5),
  });
  await gradcheck({
    dtype: 'float64',
    inputs: { x: t(2, 3, 4), w: t(3, 4), b: t(3, 4) },
    build: ({ x, w, b }) => op.layerNorm(x!, w!, b!, 1e-5, 1),
  });
});

test('gradients of groupNorm (float32: no double InstanceNormalization kernel)', async () => {
  await gradcheck({
    dtype: 'float32',
    inputs: { x: t(2, 6, 3, 4), w: t(6), b: t(6) },
    build: ({ x, w, b }) => op.groupNorm(x!, 3, w!, b!, 1e-5),
  });
});

test('gradients of shape ops (float64)', async () => {
  const x = t(2, 3, 4, 5);
  const cases: [string, (v: ReturnType<typeof op.exp>) => ReturnType<typeof op.exp>][] = [
    ['transpose', (v) => op.transpose(v, [2, 0, 3, 1])],
    ['reshape', (v) => op.reshape(v, [6, 20])],
    ['expand', (v) => op.expand(op.slice(v, [0], [1], [1]), [2, 3, 4, 5])],
    ['slice', (v) => op.slice(v, [1, -4], [3, -1], [2, 3])],
    ['strided slice', (v) => op.slice(v, [0, 1], [3, 5], [1, 3], [2, 3])],
    ['reversed slice', (v) => op.slice(v, [-1], [-100], [3], [-2])],
    ['concat', (v) => op.concat([v, op.exp(v), op.slice(v, [1], [2], [1])], 1)],
    ['split, partly used', (v) => op.mul(op.split(v, [1, 2, 2], 3)[2]!, op.split(v, [1, 2, 2], 3)[0]!)],
    ['gather with repeats', (v) => op.gather(v, [3, 0, 3, -1], 2)],
    ['pad and crop', (v) => op.pad(op.pad(v, [0, 0, 1, 0, 0, 1, 0, 2], 0.5), [0, -1, 0, -1, 0, 0, -2, 0])],
    ['tile', (v) => op.tile(v, [1, 2, 1, 3])],
    ['squeeze, unsqueeze, flatten', (v) => op.flatten(op.squeeze(op.unsqueeze(v, [0, 3]), [0]), 1, 3)],
    ['reduceSum', (v) => op.reduceSum(v, [1, 3], false)],
    ['reduceMean', (v) => op.reduceMean(v, [0, 2])],
    ['reduceMax', (v) => op.reduceMax(v, [3])],
  ];
  for (const [name, f] of cases) {
    await gradcheck({ dtype: 'float64', inputs: { x }, build: ({ x }) => f(x!) }).catch((e: Error) => {
      throw new Error(`${name}: ${e.message}`);
    });
  }
  await gradcheck({
    dtype: 'float64',
    inputs: { x: t(4, 3) },
    build: ({ x }, g) => op.gather(x!, g.constant([1, 3, 1, 0, 1, 2], [2, 3], 'int64'), 0),
  });
  await gradcheck({
    dtype: 'float64',
    inputs: { x: t(4, 3) },
    build: ({ x }, g) => op.gatherElements(x!, g.constant([1, 3, 1, 0, 0, 2, 3, 3, 2], [3, 3], 'int64'), 0),
  });
  // ScatterElements(add) only appears as Gather's adjoint; its own rule serves second derivatives.
  await gradcheck({
    dtype: 'float64',
    inputs: { data: t(4, 3), updates: t(2, 3) },
    build: ({ data, updates }, g) =>
      g.apply1('ScatterElements', [data!, g.constant([3, 0, 1, 3, 1, 1], [2, 3], 'int64'), updates!], { axis: 0, reduction: 'add' }),
  });
});

test('gradients of resampling', async () => {
  const x = t(1, 2, 4, 5);
  await gradcheck({ dtype: 'float32', inputs: { x }, build: ({ x }) => op.resizeNearest(x!, [8, 10]) });
  await gradcheck({ dtype: 'float64', inputs: { x }, build: ({ x }) => op.resizeNearest(x!, [7, 3]) });
  await gradcheck({ dtype: 'float64', inputs: { x }, build: ({ x }) => op.resizeBilinear(x!, [9, 3]) });
  await gradcheck({ dtype: 'float64', inputs: { x }, build: ({ x }) => op.adaptiveAvgPool2d(x!, [3, 7]) });
  await gradcheck({ dtype: 'float32', inputs: { x }, build: ({ x }) => op.avgPool2d(x!, 3, 2, 1) });
  await gradcheck({ dtype: 'float32', inputs: { x }, build: ({ x }) => op.avgPool2d(x!, 2) });
});

test('attention built from matmul + softmax: gradient check, and the backward never reduces the tokens × tokens matrix', async () => {
  const attention = (q: Value, k: Value, v: Value) => op.matmul(op.softmax(op.mul(op.matmul(q, op.transpose(k, [0, 2, 1])), 0.5)), v);
  await gradcheck({ dtype: 'float64', inputs: { q: t(2, 6, 4), k: t(2, 5, 4), v: t(2, 5, 3) }, build: ({ q, k, v }) => attention(q!, k!, v!) });
  const g = new Graph('t');
  const [q, k, v] = [g.input('q', 'float32', [2, 6, 4]), g.input('k', 'float32', [2, 5, 4]), g.input('v', 'float32', [2, 5, 3])];
  const out = attention(q, k, v);
  const before = g.nodes.length;
  vjp(g, [{ value: out, cotangent: g.input('c', 'float32', out.shape) }], [q, k, v]);
  const reductions = g.nodes.slice(before).filter((n) => n.op === 'ReduceSum');
  assert.deepEqual(
    reductions.map((n) => n.inputs[0]!.shape),
    [[2, 6, 3]],
    'the row sums run over [batch, queries, head dim], not [batch, queries, keys]',
  );
});
