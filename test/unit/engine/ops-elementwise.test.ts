import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as op from '../../../src/sidecar/engine/ops';
import { assertClose, evaluate } from '../../support/op-check';
import { map, random, ref, rng, zip, zip3, type Ref } from '../../support/reference';

const next = rng(7);
const x = random([2, 3, 4], next, -2, 2);
const positive = random([2, 3, 4], next, 0.1, 3);
const row = random([4], next, -2, 2);

// PyTorch's erf is the C library's; this is Abramowitz–Stegun 7.1.26's refinement (|error| < 1.5e-7).
function erf(v: number): number {
  const t = 1 / (1 + 0.5 * Math.abs(v));
  const y =
    1 -
    t *
      Math.exp(
        -v * v - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
      );
  return v >= 0 ? y : -y;
}
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

test('unary math matches its definitions', async () => {
  const out = await evaluate({ x, p: positive }, ({ x, p }) => ({
    sqrt: op.sqrt(p!),
    exp: op.exp(x!),
    log: op.log(p!),
    abs: op.abs(x!),
    reciprocal: op.reciprocal(p!),
    sigmoid: op.sigmoid(x!),
    tanh: op.tanh(x!),
    erf: op.erf(x!),
    sin: op.sin(x!),
    cos: op.cos(x!),
    relu: op.relu(x!),
    sign: op.sign(x!),
    neg: op.neg(x!),
    pow3: op.pow(x!, 3),
    powHalf: op.pow(p!, 0.5),
  }));
  const cases: [string, Ref][] = [
    ['sqrt', map(positive, Math.sqrt)],
    ['exp', map(x, Math.exp)],
    ['log', map(positive, Math.log)],
    ['abs', map(x, Math.abs)],
    ['reciprocal', map(positive, (v) => 1 / v)],
    ['sigmoid', map(x, sigmoid)],
    ['tanh', map(x, Math.tanh)],
    ['erf', map(x, erf)],
    ['sin', map(x, Math.sin)],
    ['cos', map(x, Math.cos)],
    ['relu', map(x, (v) => Math.max(v, 0))],
    ['sign', map(x, Math.sign)],
    ['neg', map(x, (v) => -v)],
    ['pow3', map(x, (v) => v ** 3)],
    ['powHalf', map(positive, Math.sqrt)],
  ];
  for (const [name, expected] of cases) assertClose(out[name]!, expected, name, 1e-5, 1e-6);
});

test('activations: silu, exact and tanh gelu, quick gelu', async () => {
  const out = await evaluate({ x }, ({ x }) => ({
    silu: op.silu(x!),
    gelu: op.gelu(x!),
    geluTanh: op.gelu(x!, 'tanh'),
    quickGelu: op.quickGelu(x!),
  }));
  assertClose(out.silu!, map(x, (v) => v * sigmoid(v)), 'silu');
  assertClose(out.gelu!, map(x, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), 'gelu');
  const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  assertClose(out.geluTanh!, map(x, tanhGelu), 'gelu tanh');
  assertClose(out.quickGelu!, map(x, (v) => v * sigmoid(1.702 * v)), 'quickGelu');
});

test('binary arithmetic broadcasts and accepts numbers on either side', async () => {
  const out = await evaluate({ x, row }, ({ x, row }) => ({
    add: op.add(x!, row!),
    rsub: op.sub(1, x!),
    mul: op.mul(row!, x!),
    rdiv: op.div(2, op.add(op.abs(x!), 1)),
    min: op.minimum(x!, row!),
    max: op.maximum(x!, 0.5),
    clip: op.clip(x!, -0.5, 1),
    clipLow: op.clip(x!, 0),
  }));
  assertClose(out.add!, zip(x, row, (a, b) => a + b), 'add');
  assertClose(out.rsub!, map(x, (a) => 1 - a), 'rsub');
  assertClose(out.mul!, zip(x, row, (a, b) => a * b), 'mul');
  assertClose(out.rdiv!, map(x, (a) => 2 / (Math.abs(a) + 1)), 'rdiv');
  assertClose(out.min!, zip(x, row, Math.min), 'minimum');
  assertClose(out.max!, map(x, (a) => Math.max(a, 0.5)), 'maximum');
  assertClose(out.clip!, map(x, (a) => Math.min(Math.max(a, -0.5), 1)), 'clip');
  assertClose(out.clipLow!, map(x, (a) => Math.max(a, 0)), 'clip with only a lower bound');
});

test('comparisons, not, where, cast and stopGradient', async () => {
  const out = await evaluate({ x, row }, ({ x, row }) => {
    const gt = op.greater(x!, row!);
    return {
      equal: op.cast(op.equal(x!, x!), 'float32'),
      less: op.cast(op.less(x!, row!), 'float32'),
      greater: op.cast(gt, 'float32'),
      lessOrEqual: op.cast(op.lessOrEqual(x!, 0), 'float32'),
      greaterOrEqual: op.cast(op.greaterOrEqual(x!, 0), 'float32'),
      not: op.cast(op.not(gt), 'float32'),
      where: op.where(gt, x!, op.mul(row!, 10)),
      whereNumber: op.where(gt, 1, -1),
      truncated: op.cast(op.cast(op.mul(x!, 3), 'int64'), 'float32'),
      stopped: op.stopGradient(x!),
    };
  });
  const b = (v: boolean) => (v ? 1 : 0);
  assertClose(out.equal!, map(x, () => 1), 'equal');
  assertClose(out.less!, zip(x, row, (a, c) => b(a < c)), 'less');
  assertClose(out.greater!, zip(x, row, (a, c) => b(a > c)), 'greater');
  assertClose(out.lessOrEqual!, map(x, (a) => b(a <= 0)), 'lessOrEqual');
  assertClose(out.greaterOrEqual!, map(x, (a) => b(a >= 0)), 'greaterOrEqual');
  assertClose(out.not!, zip(x, row, (a, c) => b(!(a > c))), 'not');
  assertClose(out.where!, zip3(x, row, x, (a, c) => (a > c ? a : 10 * c)), 'where');
  assertClose(out.whereNumber!, zip(x, row, (a, c) => (a > c ? 1 : -1)), 'where with numbers');
  assertClose(out.truncated!, map(x, (a) => Math.trunc(Math.fround(a * 3))), 'cast to int64 truncates');
  assertClose(out.stopped!, x, 'stopGradient is the identity');
});

test('elementwise ops reject mismatched dtypes and shapes with the node name', async () => {
  const { Graph } = await import('../../../src/sidecar/engine/graph');
  const g = new Graph('t');
  const a = g.input('a', 'float32', [2, 3]);
  const i = g.input('i', 'int64', [2, 3]);
  assert.throws(() => op.add(a, i), /Add_0: Add needs operands of one dtype, got float32 and int64/);
  assert.throws(() => g.scope('blk', () => op.where(op.greater(a, 0), a, g.input('c', 'float32', [4]))), /blk\/Where_0: .*do not broadcast/);
  assert.throws(() => op.sqrt(i), /Sqrt needs a floating-point input, got int64/);
});

test('sin and cos stay accurate over the timestep embedding\'s arguments (up to ±1000 radians)', async () => {
  const xs = Array.from({ length: 4000 }, (_, i) => Math.fround(-1000 + i * 0.5000321));
  const out = await evaluate({ x: ref([xs.length], xs) }, ({ x }) => ({ s: op.sin(x!), c: op.cos(x!) }));
  xs.forEach((v, i) => {
    assert.ok(Math.abs(out.s![i]! - Math.sin(v)) < 1e-6, `sin(${v}) = ${out.s![i]}`);
    assert.ok(Math.abs(out.c![i]! - Math.cos(v)) < 1e-6, `cos(${v}) = ${out.c![i]}`);
  });
});
