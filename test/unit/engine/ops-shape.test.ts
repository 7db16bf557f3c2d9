import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src/sidecar/engine/graph';
import * as op from '../../../src/sidecar/engine/ops';
import { assertClose, evaluate } from '../../support/op-check';
import * as R from '../../support/reference';

const next = R.rng(3);
const x = R.random([2, 3, 4, 5], next, -2, 2);

test('transpose, slice (negative, strided, reversed), concat, split', async () => {
  const out = await evaluate({ x }, ({ x }) => {
    const [s0, s1] = op.split(x!, [1, 3], 2);
    return {
      t: op.transpose(x!, [2, 0, 3, 1]),
      tt: op.transpose(op.transpose(x!, [1, 0, 2, 3]), [1, 0, 2, 3]),
      sl: op.slice(x!, [1, -4], [3, -1], [2, 3]),
      strided: op.slice(x!, [0, 4], [3, -100], [1, 3], [2, -2]),
      cat: op.concat([x!, op.mul(x!, 2)], 1),
      s0: s0!,
      s1: s1!,
    };
  });
  assertClose(out.t!, R.transpose(x, [2, 0, 3, 1]), 'transpose');
  assertClose(out.tt!, x, 'transpose of transpose');
  assertClose(out.sl!, R.fromFn([2, 3, 2, 3], ([a, b, c, d]) => R.get(x, [a!, b!, c! + 1, d! + 1])), 'slice');
  assertClose(out.strided!, R.fromFn([2, 2, 4, 3], ([a, b, c, d]) => R.get(x, [a!, 2 * b!, c!, 4 - 2 * d!])), 'strided reversed slice');
  assertClose(out.cat!, R.fromFn([2, 6, 4, 5], ([a, b, c, d]) => (b! < 3 ? 1 : 2) * R.get(x, [a!, b! % 3, c!, d!])), 'concat');
  assertClose(out.s0!, R.fromFn([2, 3, 1, 5], ([a, b, , d]) => R.get(x, [a!, b!, 0, d!])), 'split 0');
  assertClose(out.s1!, R.fromFn([2, 3, 3, 5], ([a, b, c, d]) => R.get(x, [a!, b!, c! + 1, d!])), 'split 1');
});

test('gather (constant and tensor indices), pad, tile, unsqueeze, squeeze, flatten', async () => {
  const out = await evaluate({ x }, ({ x }, g) => ({
    gather: op.gather(x!, [3, 0, 3, -1], 2),
    gatherT: op.gather(x!, g.constant([1, 0, 2, 2], [2, 2], 'int64'), 1),
    pad: op.pad(x!, [0, 0, 1, 0, 0, 0, 1, 2], 0.5),
    crop: op.pad(x!, [0, 0, -1, 1, 0, 0, 0, -2]),
    tile: op.tile(x!, [1, 2, 1, 2]),
    unsq: op.unsqueeze(x!, [0, -1]),
    sq: op.squeeze(op.unsqueeze(x!, [2]), [2]),
    flat: op.flatten(x!, 1, 2),
    gatherEl: op.gatherElements(x!, g.constant(Array.from({ length: 2 * 3 * 2 * 5 }, (_, k) => (k * 7) % 4), [2, 3, 2, 5], 'int64'), 2),
  }));
  assertClose(out.gatherEl!, R.fromFn([2, 3, 2, 5], ([a, b, c, d]) => R.get(x, [a!, b!, ((((a! * 3 + b!) * 2 + c!) * 5 + d!) * 7) % 4, d!])), 'gatherElements');
  assertClose(out.gather!, R.fromFn([2, 3, 4, 5], ([a, b, c, d]) => R.get(x, [a!, b!, [3, 0, 3, 3][c!]!, d!])), 'gather');
  assertClose(out.gatherT!, R.fromFn([2, 2, 2, 4, 5], ([a, i, j, c, d]) => R.get(x, [a!, [1, 0, 2, 2][2 * i! + j!]!, c!, d!])), 'gather tensor indices');
  const padded = R.fromFn([2, 3, 6, 7], ([a, b, c, d]) => (c! < 1 || c! > 4 || d! > 4 ? 0.5 : R.get(x, [a!, b!, c! - 1, d!])));
  assertClose(out.pad!, padded, 'pad');
  assertClose(out.crop!, R.fromFn([2, 3, 3, 4], ([a, b, c, d]) => (d! === 0 ? 0 : R.get(x, [a!, b!, c! + 1, d! - 1]))), 'negative pads crop');
  assertClose(out.tile!, R.fromFn([2, 6, 4, 10], ([a, b, c, d]) => R.get(x, [a!, b! % 3, c!, d! % 5])), 'tile');
  assertClose(out.unsq!, x, 'unsqueeze keeps values');
  assertClose(out.sq!, x, 'squeeze keeps values');
  assertClose(out.flat!, x, 'flatten keeps values');
});

test('reductions and arg reductions', async () => {
  const out = await evaluate({ x }, ({ x }) => ({
    sum: op.reduceSum(x!, [1, 3], false),
    mean: op.reduceMean(x!, [-1]),
    max: op.reduceMax(x!, [0, 2]),
    argmax: op.cast(op.argmax(x!, 3, false), 'float32'),
    argmin: op.cast(op.argmin(x!, 1), 'float32'),
  }));
  assertClose(out.sum!, R.reduce(x, [1, 3], R.sum).data, 'reduceSum', 1e-5, 1e-5);
  assertClose(out.mean!, R.reduce(x, [3], R.mean), 'reduceMean');
  assertClose(out.max!, R.reduce(x, [0, 2], (v) => Math.max(...v)), 'reduceMax');
  assertClose(out.argmax!, R.reduce(x, [3], (v) => v.indexOf(Math.max(...v))).data, 'argmax');
  assertClose(out.argmin!, R.reduce(x, [1], (v) => v.indexOf(Math.min(...v))), 'argmin');
});

test('shape ops name their misuse', () => {
  const g = new Graph('t');
  const v = g.input('v', 'float32', [2, 3]);
  assert.throws(() => op.concat([v, g.input('w', 'float32', [3, 3])], 1), /Concat along axis 1 needs equal other dims/);
  assert.throws(() => op.split(v, [1, 1], 1), /split sizes \[1, 1\] do not add up to dim 1 of \[2, 3\]/);
  assert.throws(() => op.transpose(v, [0, 0]), /axis|permutation/);
  assert.throws(() => op.squeeze(v, [0]), /axis 0 of \[2, 3\] is not 1/);
  assert.throws(() => op.pad(v, [0, -4, 0, 0]), /crop \[2, 3\] below zero/);
});
