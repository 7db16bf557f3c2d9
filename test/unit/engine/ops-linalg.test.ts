import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../../src/sidecar/engine/graph';
import * as op from '../../../src/sidecar/engine/ops';
import { assertClose, evaluate } from '../../support/op-check';
import * as R from '../../support/reference';

const next = R.rng(11);

test('matmul broadcasts batch dims; linear uses the [out, in] weight layout', async () => {
  const a = R.random([2, 3, 4, 5], next);
  const b = R.random([3, 5, 6], next);
  const w = R.random([6, 5], next);
  const bias = R.random([6], next);
  const out = await evaluate({ a, b, w, bias }, ({ a, b, w, bias }) => ({
    mm: op.matmul(a!, b!),
    lin: op.linear(a!, w!, bias!),
    linNoBias: op.linear(a!, w!),
  }));
  assertClose(out.mm!, R.matmul(a, b), 'matmul', 1e-5, 1e-5);
  const expected = R.zip(R.matmul(a, R.transpose(w, [1, 0])), bias, (x, y) => x + y);
  assertClose(out.lin!, expected, 'linear', 1e-5, 1e-5);
  assertClose(out.linNoBias!, R.matmul(a, R.transpose(w, [1, 0])), 'linear without bias', 1e-5, 1e-5);
});

test('conv2d with stride, asymmetric padding, dilation and groups', async () => {
  const x = R.random([2, 4, 9, 8], next);
  const w = R.random([6, 2, 3, 3], next);
  const bias = R.random([6], next);
  const w1 = R.random([5, 4, 3, 2], next);
  const out = await evaluate({ x, w, bias, w1 }, ({ x, w, bias, w1 }) => ({
    grouped: op.conv2d(x!, w!, bias!, { stride: 2, padding: [1, 0, 2, 1], dilation: [1, 2], groups: 2 }),
    plain: op.conv2d(x!, w1!, null, { padding: 1 }),
  }));
  assertClose(out.grouped!, R.conv2d(x, w, bias, { stride: [2, 2], pads: [1, 0, 2, 1], dilation: [1, 2], groups: 2 }), 'grouped conv', 1e-5, 1e-5);
  assertClose(out.plain!, R.conv2d(x, w1, null, { pads: [1, 1, 1, 1] }), 'plain conv', 1e-5, 1e-5);
});

test('convTranspose2d scatters each input pixel through the kernel (PyTorch layout [in, out/groups, kh, kw])', async () => {
  const x = R.random([1, 4, 3, 4], next);
  const w = R.random([4, 3, 3, 2], next);
  const bias = R.random([6], next);
  const [stride, pad, outPad, groups] = [2, 1, 1, 2];
  const out = await evaluate({ x, w, bias }, ({ x, w, bias }) => ({
    y: op.convTranspose2d(x!, w!, bias!, { stride, padding: pad, outputPadding: outPad, groups }),
  }));
  const [oh, ow] = [(3 - 1) * stride - 2 * pad + 3 + outPad, (4 - 1) * stride - 2 * pad + 2 + outPad];
  const expected = R.fromFn([1, 6, oh, ow], () => 0);
  const at = (o: number, y: number, z: number) => (o * oh + y) * ow + z;
  for (let o = 0; o < 6; o++) expected.data.fill(bias.data[o]!, at(o, 0, 0), at(o + 1, 0, 0));
  for (let c = 0; c < 4; c++) {
    const group = Math.floor(c / 2);
    for (let iy = 0; iy < 3; iy++) {
      for (let ix = 0; ix < 4; ix++) {
        for (let oc = 0; oc < 3; oc++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 2; kx++) {
              const [y, z] = [iy * stride + ky - pad, ix * stride + kx - pad];
              if (y < 0 || z < 0 || y >= oh || z >= ow) continue;
              expected.data[at(group * 3 + oc, y, z)]! += R.get(x, [0, c, iy, ix]) * R.get(w, [c, oc, ky, kx]);
            }
          }
        }
      }
    }
  }
  assertClose(out.y!, expected, 'convTranspose2d', 1e-5, 1e-5);
});

test('softmax, layerNorm and groupNorm', async () => {
  const x = R.random([2, 6, 3, 4], next, -3, 3);
  const lnW = R.random([3, 4], next);
  const lnB = R.random([3, 4], next);
  const gnW = R.random([6], next);
  const gnB = R.random([6], next);
  const out = await evaluate({ x, lnW, lnB, gnW, gnB }, ({ x, lnW, lnB, gnW, gnB }) => ({
    softmax: op.softmax(x!),
    softmax1: op.softmax(x!, 1),
    ln: op.layerNorm(x!, lnW!, lnB!, 1e-5, -2),
    gn: op.groupNorm(x!, 3, gnW!, gnB!, 1e-6),
  }));
  assertClose(out.softmax!, R.softmax(x, 3), 'softmax');
  assertClose(out.softmax1!, R.softmax(x, 1), 'softmax axis 1');
  const ln = R.zip(R.zip(R.normalize(x, [2, 3], 1e-5), lnW, (a, b) => a * b), lnB, (a, b) => a + b);
  assertClose(out.ln!, ln, 'layerNorm', 1e-4, 1e-5);
  assertClose(out.gn!, R.groupNorm(x, 3, gnW, gnB, 1e-6), 'groupNorm', 1e-4, 1e-5);
});

test('build-time errors name the node and the shapes', () => {
  const g = new Graph('t');
  const x = g.input('x', 'float32', [1, 4, 8, 8]);
  const w = g.input('w', 'float32', [8, 3, 3, 3]);
  assert.throws(() => g.scope('conv_in', () => op.conv2d(x, w)), /conv_in\/Conv_0: Conv input has 4 channels; weight \[8, 3, 3, 3\]/);
  assert.throws(() => op.matmul(x, g.input('m', 'float32', [7, 2])), /MatMul inner dims differ: \[1, 4, 8, 8\] x \[7, 2\]/);
  assert.throws(() => op.linear(x, g.input('lw', 'float32', [3, 5])), /does not end in the weight's in-features 5/);
  assert.throws(() => op.groupNorm(x, 3, null, null, 1e-5), /4 channels of \[1, 4, 8, 8\] do not split into 3 groups/);
});
