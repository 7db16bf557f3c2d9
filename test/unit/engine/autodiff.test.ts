import assert from 'node:assert/strict';
import { test } from 'node:test';
import { grad, NotDifferentiableError, vjp, type RecomputePolicy } from '../../../src/sidecar/engine/autodiff';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../src/sidecar/engine/float16';
import { Graph, type Value } from '../../../src/sidecar/engine/graph';
import * as op from '../../../src/sidecar/engine/ops';
import { gradcheck } from '../../support/gradcheck';
import { assertClose } from '../../support/op-check';
import { rng } from '../../support/reference';
import { runGraph } from '../../support/run-graph';

const values = (n: number, seed: number) => {
  const next = rng(seed);
  return Float64Array.from({ length: n }, () => next() * 2 - 1);
};

test('fan-out gradients accumulate, and one graph yields outputs and gradients', async () => {
  const g = new Graph('t');
  const x = g.input('x', 'float64', [5]);
  const y = op.reduceSum(op.add(op.mul(x, x), op.exp(x)), [0], false);
  const [dx] = grad(y, [x]);
  g.output('y', y);
  g.output('dx', dx!);
  const xs = values(5, 1);
  const out = await runGraph(g, { x: xs });
  assertClose(Array.from(out.y as Float64Array), [xs.reduce((s, v) => s + v * v + Math.exp(v), 0)], 'y', 1e-12, 0);
  assertClose(Array.from(out.dx as Float64Array), Array.from(xs, (v) => 2 * v + Math.exp(v)), 'dx', 1e-12, 0);
});

test('only nodes on a path from wrt to the seed get rules; unreached wrt values get null', () => {
  const g = new Graph('t');
  const a = g.input('a', 'float32', [3]);
  const b = g.input('b', 'float32', [3]);
  const c = g.input('c', 'float32', [3]);
  const unused = g.input('unused', 'float32', [3]);
  const y = op.add(op.mul(a, b), op.exp(c));
  const before = g.nodes.length;
  const [da, dUnused] = vjp(g, [{ value: y, cotangent: g.input('gy', 'float32', [3]) }], [a, unused]);
  const added = g.nodes.slice(before);
  assert.equal(dUnused, null);
  assert.ok(da);
  // Add passes the cotangent through unchanged; Mul multiplies it by b. Nothing for c's Exp branch.
  assert.deepEqual(
    added.map((n) => n.op),
    ['Mul'],
  );
  assert.equal(added[0]!.inputs[1], b);
  assert.match(added[0]!.name, /^grad\/Mul_/);
});

test('two seed sets on one forward give two independent gradients in one run', async () => {
  const g = new Graph('t');
  const x = g.input('x', 'float64', [4]);
  const w = g.weight('w', 'float64', [4], { kind: 'data', data: Float64Array.from([1, 2, 3, 4]) });
  const h = g.scope('block', () => op.tanh(op.mul(x, w)));
  const loss1 = op.reduceSum(op.mul(h, h), [0], false);
  const loss2 = op.reduceSum(op.mul(h, x), [0], false);
  const [d1x, d1w] = grad(loss1, [x, w]);
  const [d2x] = grad(loss2, [x]);
  for (const [name, v] of Object.entries({ d1x: d1x!, d1w: d1w!, d2x: d2x! })) g.output(name, v);
  const xs = values(4, 2);
  const out = await runGraph(g, { x: xs });
  const ws = [1, 2, 3, 4];
  const th = Array.from(xs, (v, i) => Math.tanh(v * ws[i]!));
  const sech2 = th.map((t) => 1 - t * t);
  assertClose(Array.from(out.d1x as Float64Array), th.map((t, i) => 2 * t * sech2[i]! * ws[i]!), 'd loss1 / dx', 1e-12, 1e-14);
  assertClose(Array.from(out.d1w as Float64Array), th.map((t, i) => 2 * t * sech2[i]! * xs[i]!), 'd loss1 / dw (a weight)', 1e-12, 1e-14);
  assertClose(Array.from(out.d2x as Float64Array), th.map((t, i) => t + xs[i]! * sech2[i]! * ws[i]!), 'd loss2 / dx', 1e-12, 1e-14);
});

test('stopGradient blocks the gradient, where conditions and gather indices are gradient-free', async () => {
  const g = new Graph('t');
  const x = g.input('x', 'float64', [4]);
  const y = op.mul(x, op.stopGradient(x));
  const picked = op.gather(x, op.argmax(x, 0), 0);
  const masked = op.where(op.greater(x, 0), x, 0);
  const [dy] = vjp(g, [{ value: y, cotangent: g.constant([1, 1, 1, 1], [4], 'float64') }], [x]);
  const [dp] = grad(op.reduceSum(picked, [0], false), [x]);
  const [dm] = grad(op.reduceSum(masked, [0], false), [x]);
  g.output('dy', dy!);
  g.output('dp', dp!);
  g.output('dm', dm!);
  const xs = Float64Array.from([0.5, -2, 3, 1]);
  const out = await runGraph(g, { x: xs });
  assert.deepEqual(Array.from(out.dy as Float64Array), [0.5, -2, 3, 1], 'x, not 2x');
  assert.deepEqual(Array.from(out.dp as Float64Array), [0, 0, 1, 0]);
  assert.deepEqual(Array.from(out.dm as Float64Array), [1, 0, 1, 1]);
});

test('a gradient through a non-differentiable op fails at build time, naming the op and its module', () => {
  const build = (body: (x: Value) => Value) => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [4]);
    const y = g.scope('tracker', () => g.scope(0, () => body(x)));
    return () => grad(op.reduceSum(y, [0], false), [x]);
  };
  assert.throws(
    build((x) => op.mul(x, op.cast(op.argmax(x, 0), 'float32'))),
    (e: unknown) => e instanceof NotDifferentiableError && /ArgMax node tracker\.0\/ArgMax_0 \(module tracker\.0\): ArgMax has no gradient rule/.test(e.message),
  );
  assert.throws(
    build((x) => op.cast(op.cast(x, 'int64'), 'float32')),
    (e: unknown) => e instanceof NotDifferentiableError && /Cast node tracker\.0\/Cast_0 .*its output is int64/.test(e.message),
  );
  assert.throws(
    build((x) => op.mul(x, op.cast(op.greater(x, 0), 'float32'))),
    (e: unknown) => e instanceof NotDifferentiableError && /Greater node tracker\.0\/Greater_0/.test(e.message) && /stopGradient/.test(e.message),
  );
  // The same mask built from a stopped value is fine.
  assert.doesNotThrow(build((x) => op.mul(x, op.cast(op.greater(op.stopGradient(x), 0), 'float32'))));
});

test('vjp rejects a cotangent of the wrong shape and non-float wrt values', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [2, 3]);
  const i = g.input('i', 'int64', [2]);
  const y = op.exp(x);
  assert.throws(() => vjp(g, [{ value: y, cotangent: g.input('c', 'float32', [3, 2]) }], [x]), /cotangent c is float32\[3, 2\]/);
  assert.throws(() => grad(op.reduceSum(y, [0, 1], false), [i]), /i is int64; only floating-point values have gradients/);
  assert.throws(() => grad(y, [x]), /one-element loss/);
});

/** conv → group norm → SiLU → tokens → layer norm → single-head attention → GELU MLP → conv, with residuals. */
function compositeNetwork(x: Value, p: Record<string, Value>): Value {
  const g = x.graph;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const feat = g.scope('resnet', () => {
    const hdn = op.silu(op.groupNorm(op.conv2d(x, p.conv1!, p.conv1b!, { padding: 1 }), 2, p.gn!, p.gnb!, 1e-5));
    return op.add(x, op.conv2d(hdn, p.conv2!, null, { padding: 1 }));
  });
  const tokens = op.transpose(op.reshape(feat, [n, c, h * w]), [0, 2, 1]);
  const attended = g.scope('attn', () => {
    const normed = op.layerNorm(tokens, p.ln!, p.lnb!, 1e-5);
    const [q, k, v] = [p.wq!, p.wk!, p.wv!].map((wt) => op.linear(normed, wt));
    const scores = op.mul(op.matmul(q!, op.transpose(k!, [0, 2, 1])), 1 / Math.sqrt(c));
    return op.add(tokens, op.linear(op.matmul(op.softmax(scores), v!), p.wo!, p.wob!));
  });
  const mlp = g.scope('mlp', () => op.add(attended, op.linear(op.gelu(op.linear(attended, p.fc1!)), p.fc2!)));
  const back = op.reshape(op.transpose(mlp, [0, 2, 1]), [n, c, h, w]);
  return op.conv2d(op.resizeNearest(back, [2 * h, 2 * w]), p.out!, null, { stride: 2 });
}

const compositeParams = (c: number) => ({
  conv1: { shape: [c, c, 3, 3], lo: -0.3, hi: 0.3 },
  conv1b: { shape: [c] },
  gn: { shape: [c], lo: 0.5, hi: 1.5 },
  gnb: { shape: [c] },
  conv2: { shape: [c, c, 3, 3], lo: -0.3, hi: 0.3 },
  ln: { shape: [c], lo: 0.5, hi: 1.5 },
  lnb: { shape: [c] },
  wq: { shape: [c, c], lo: -0.5, hi: 0.5 },
  wk: { shape: [c, c], lo: -0.5, hi: 0.5 },
  wv: { shape: [c, c], lo: -0.5, hi: 0.5 },
  wo: { shape: [c, c], lo: -0.5, hi: 0.5 },
  wob: { shape: [c] },
  fc1: { shape: [2 * c, c], lo: -0.5, hi: 0.5 },
  fc2: { shape: [c, 2 * c], lo: -0.5, hi: 0.5 },
  out: { shape: [3, c, 2, 2], lo: -0.5, hi: 0.5 },
});

test('a composite conv + group norm + attention + layer norm network passes the gradient check for inputs and weights', async () => {
  const c = 4;
  const params = compositeParams(c);
  await gradcheck({
    dtype: 'float32',
    inputs: { x: { shape: [1, c, 4, 4] }, ...params },
    build: ({ x, ...p }) => compositeNetwork(x!, p as Record<string, Value>),
  });
});

test('rematerialised segments give the same gradients, recomputed in the backward pass', async () => {
  const c = 4;
  const params = compositeParams(c);
  const feeds: Record<string, Float32Array> = { x: Float32Array.from(values(c * 16, 9)) };
  Object.entries(params).forEach(([name, spec], i) => (feeds[name] = Float32Array.from(values(spec.shape.reduce((a, b) => a * b, 1), 20 + i))));
  const build = (recompute: boolean) => {
    const g = new Graph('t');
    const x = g.input('x', 'float32', [1, c, 4, 4]);
    const p: Record<string, Value> = {};
    for (const [name, spec] of Object.entries(params)) p[name] = g.weight(name, 'float32', spec.shape, { kind: 'data', data: feeds[name]! });
    const loss = op.reduceSum(op.pow(compositeNetwork(x, p), 2), [0, 1, 2, 3], false);
    const grads = grad(loss, [x, p.wq!, p.fc1!, p.conv1!], recompute ? { recompute: { scopes: ['attn', 'mlp'] } } : {});
    grads.forEach((gr, i) => g.output(`g${i}`, gr!));
    return g;
  };
  const remat = build(true);
  const recomputed = remat.nodes.filter((n) => n.scope.startsWith('recompute.'));
  assert.ok(recomputed.some((n) => n.scope === 'recompute.attn' && n.op === 'Softmax'), 'the attention softmax is recomputed');
  assert.ok(recomputed.some((n) => n.scope === 'recompute.mlp'), 'the MLP is recomputed');
  assert.ok(!recomputed.some((n) => n.scope.startsWith('recompute.resnet')), 'segments not listed are kept');
  // The backward pass reads a forward value of a recomputed segment only where the forward itself
  // hands it out of the segment (its boundary outputs), never the activations inside it.
  const forwardNodes = remat.nodes.filter((n) => !n.scope.startsWith('grad') && !n.scope.startsWith('recompute'));
  const inside = (scope: string) => scope === 'attn' || scope === 'mlp';
  const segmentValues = new Set(forwardNodes.filter((n) => inside(n.scope)).flatMap((n) => n.outputs.map((v) => v.id)));
  const boundary = new Set(forwardNodes.filter((n) => !inside(n.scope)).flatMap((n) => n.inputs.map((v) => v.id)));
  forwardNodes.filter((n) => n.scope === 'mlp').forEach((n) => n.inputs.forEach((v) => v.producer?.scope === 'attn' && boundary.add(v.id)));
  const leaks = remat.nodes
    .filter((n) => n.scope.startsWith('grad') || n.scope.startsWith('recompute'))
    .flatMap((n) => n.inputs.filter((v) => segmentValues.has(v.id) && !boundary.has(v.id)).map((v) => `${n.name} reads ${v.name}`));
  assert.deepEqual(leaks, []);

  const [a, b] = [await runGraph(build(false), { x: feeds.x! }), await runGraph(remat, { x: feeds.x! })];
  // Where the backward does not read the forward GELU's parts (the recomputed MLP), onnxruntime fuses them
  // into its Gelu kernel, whose erf rounds differently from the Erf op's: the graphs agree to that rounding.
  for (const name of ['g0', 'g1', 'g2', 'g3']) assertClose(Array.from(b[name] as Float32Array), Array.from(a[name] as Float32Array), name, 1e-4, 1e-6);
});

test('float16-stored weights are cast again for the backward pass and give the float32 gradients', async () => {
  const c = 4;
  const params = compositeParams(c);
  const x = Float32Array.from(values(c * 16, 9));
  // Weight values that float16 holds exactly, so both graphs compute with the same numbers.
  const halves: Record<string, Uint16Array> = {};
  Object.entries(params).forEach(([name, spec], i) => (halves[name] = float32ToFloat16Bits(Float32Array.from(values(spec.shape.reduce((a, b) => a * b, 1), 20 + i)))));
  const build = (stored: 'float16' | 'float32', recompute?: RecomputePolicy) => {
    const g = new Graph('t');
    const input = g.input('x', 'float32', [1, c, 4, 4]);
    const p: Record<string, Value> = {};
    for (const [name, spec] of Object.entries(params)) {
      p[name] = stored === 'float16'
        ? op.cast(g.weight(name, 'float16', spec.shape, { kind: 'data', data: halves[name]! }), 'float32')
        : g.weight(name, 'float32', spec.shape, { kind: 'data', data: float16BitsToFloat32(halves[name]!) });
    }
    const out = compositeNetwork(input, p);
    const cotangent = g.input('gy', 'float32', out.shape);
    const grads = vjp(g, [{ value: out, cotangent }], [input, p.wq!], recompute ? { recompute } : {});
    grads.forEach((gr, i) => g.output(`g${i}`, gr!));
    return g;
  };
  const gy = Float32Array.from(values(3 * 16, 40));

  for (const recompute of [undefined, { scopes: ['resnet', 'attn', 'mlp'] }]) {
    const half = build('float16', recompute);
    const weightCasts = new Set(half.nodes.filter((n) => n.op === 'Cast' && n.inputs[0]!.kind === 'weight' && !n.scope.startsWith('recompute')).map((n) => n.outputs[0]!.id));
    const isBackward = (scope: string) => scope.startsWith('grad') || scope.startsWith('recompute');
    const readers = half.nodes.filter((n) => isBackward(n.scope) && n.inputs.some((v) => weightCasts.has(v.id)));
    assert.deepEqual(readers.map((n) => n.name), [], 'no backward node reads a forward weight cast');
    // The backward reads casts of its own (written where the backward reaches them: onnx/serialize.ts).
    const recasts = half.nodes.filter((n) => n.op === 'Cast' && n.scope.startsWith('recompute') && n.inputs[0]!.kind === 'weight');
    assert.ok(recasts.length >= 8, `the weights read by the backward are cast again (${recasts.length})`);
    const [a, b] = [await runGraph(build('float32', recompute), { x, gy }), await runGraph(half, { x, gy })];
    for (const name of ['g0', 'g1']) assertClose(Array.from(b[name] as Float32Array), Array.from(a[name] as Float32Array), name, 1e-5, 1e-7);
  }

  // A non-finite cotangent makes non-finite gradients, not a failed run.
  const nan = await runGraph(build('float16'), { x, gy: gy.map((v, i) => (i === 0 ? Number.NaN : v)) });
  assert.ok((nan.g0 as Float32Array).some((v) => Number.isNaN(v)));
});
