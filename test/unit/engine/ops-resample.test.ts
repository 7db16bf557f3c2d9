import { test } from 'node:test';
import * as op from '../../../src/sidecar/engine/ops';
import { assertClose, evaluate } from '../../support/op-check';
import * as R from '../../support/reference';

const next = R.rng(5);

// PyTorch's formulas, evaluated per output pixel.
function nearestRef(x: R.Ref, oh: number, ow: number): R.Ref {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const src = (d: number, input: number, output: number) => Math.min(Math.floor(Math.fround(d * Math.fround(input / output))), input - 1);
  return R.fromFn([n, c, oh, ow], ([a, b, i, j]) => R.get(x, [a!, b!, src(i!, h, oh), src(j!, w, ow)]));
}

function bilinearRef(x: R.Ref, oh: number, ow: number): R.Ref {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const coord = (d: number, input: number, output: number) => {
    const s = Math.max((input / output) * (d + 0.5) - 0.5, 0);
    const i0 = Math.floor(s);
    return { i0, i1: Math.min(i0 + 1, input - 1), t: s - i0 };
  };
  return R.fromFn([n, c, oh, ow], ([a, b, i, j]) => {
    const r = coord(i!, h, oh);
    const q = coord(j!, w, ow);
    const at = (y: number, z: number) => R.get(x, [a!, b!, y, z]);
    return (
      (1 - r.t) * ((1 - q.t) * at(r.i0, q.i0) + q.t * at(r.i0, q.i1)) + r.t * ((1 - q.t) * at(r.i1, q.i0) + q.t * at(r.i1, q.i1))
    );
  });
}

function adaptiveRef(x: R.Ref, oh: number, ow: number): R.Ref {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return R.fromFn([n, c, oh, ow], ([a, b, i, j]) => {
    const [h0, h1] = [Math.floor((i! * h) / oh), Math.ceil(((i! + 1) * h) / oh)];
    const [w0, w1] = [Math.floor((j! * w) / ow), Math.ceil(((j! + 1) * w) / ow)];
    let s = 0;
    for (let y = h0; y < h1; y++) for (let z = w0; z < w1; z++) s += R.get(x, [a!, b!, y, z]);
    return s / ((h1 - h0) * (w1 - w0));
  });
}

function avgPoolRef(x: R.Ref, k: number, stride: number, pad: number): R.Ref {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = [Math.floor((h + 2 * pad - k) / stride) + 1, Math.floor((w + 2 * pad - k) / stride) + 1];
  return R.fromFn([n, c, oh, ow], ([a, b, i, j]) => {
    let s = 0;
    for (let y = 0; y < k; y++) {
      for (let z = 0; z < k; z++) {
        const [iy, iz] = [i! * stride - pad + y, j! * stride - pad + z];
        if (iy >= 0 && iz >= 0 && iy < h && iz < w) s += R.get(x, [a!, b!, iy, iz]);
      }
    }
    return s / (k * k);
  });
}

test('resizeNearest: integer upscale, odd ratios, downscale', async () => {
  const x = R.random([1, 2, 4, 6], next);
  const out = await evaluate({ x }, ({ x }) => ({
    up2: op.resizeNearest(x!, [8, 12]),
    odd: op.resizeNearest(x!, [7, 3]),
    down: op.resizeNearest(x!, [2, 3]),
    up3: op.resizeNearest(x!, [12, 18]),
  }));
  assertClose(out.up2!, nearestRef(x, 8, 12), 'nearest 2x');
  assertClose(out.odd!, nearestRef(x, 7, 3), 'nearest 7x3');
  assertClose(out.down!, nearestRef(x, 2, 3), 'nearest down');
  assertClose(out.up3!, nearestRef(x, 12, 18), 'nearest 3x');
});

test('resizeBilinear (align_corners=False) up and down', async () => {
  const x = R.random([2, 2, 5, 7], next);
  const out = await evaluate({ x }, ({ x }) => ({
    up: op.resizeBilinear(x!, [9, 16]),
    down: op.resizeBilinear(x!, [3, 2]),
    mixed: op.resizeBilinear(x!, [5, 4]),
  }));
  assertClose(out.up!, bilinearRef(x, 9, 16), 'bilinear up');
  assertClose(out.down!, bilinearRef(x, 3, 2), 'bilinear down');
  assertClose(out.mixed!, bilinearRef(x, 5, 4), 'bilinear one axis');
});

test('avgPool2d and adaptiveAvgPool2d (down and up)', async () => {
  const x = R.random([1, 3, 7, 5], next);
  const out = await evaluate({ x }, ({ x }) => ({
    pool: op.avgPool2d(x!, 3, 2, 1),
    pool2: op.avgPool2d(x!, 2),
    adaptive: op.adaptiveAvgPool2d(x!, [3, 2]),
    adaptiveUp: op.adaptiveAvgPool2d(x!, [10, 8]),
  }));
  assertClose(out.pool!, avgPoolRef(x, 3, 2, 1), 'avg pool padded');
  assertClose(out.pool2!, avgPoolRef(x, 2, 2, 0), 'avg pool 2');
  assertClose(out.adaptive!, adaptiveRef(x, 3, 2), 'adaptive down');
  assertClose(out.adaptiveUp!, adaptiveRef(x, 10, 8), 'adaptive up');
});
