/**
 * Resampling with PyTorch's semantics: F.interpolate (nearest, bilinear without align_corners or
 * antialias), avg_pool2d, max_pool2d and adaptive_avg_pool2d over NCHW tensors.
 *
 * Index rules are computed here in JS exactly as PyTorch computes them, then expressed with standard
 * ops: an integer nearest upscale is one Resize node (its gradient a Reshape + ReduceSum); every other
 * case is a constant gather (nearest) or constant interpolation matrices `A_h · X · A_wᵀ` (bilinear,
 * adaptive pooling), whose gradients are the transposed products.
 */
import type { Value } from '../graph';
import { defineOp } from '../op';
import type { PoolAttrs } from '../op-attrs';
import { formatShape } from '../shape';
import { pair, requireFloat, requireRank } from './checks';
import { matmul } from './linalg';
import { reduceSum } from './reduce';
import { gather, reshape } from './shape-ops';

defineOp({
  type: 'Resize',
  infer([x], attrs) {
    requireFloat('Resize', x!);
    requireRank('Resize', x!, 4);
    const [h, w] = attrs.sizes;
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, h, w] }];
  },
  lower(node, onnx) {
    const x = node.inputs[0]!;
    const sizes = [x.shape[0]!, x.shape[1]!, ...node.attrs.sizes];
    onnx.emit('Resize', [onnx.inputs[0]!, '', '', onnx.constant(sizes, 'int64')], onnx.outputs, [
      { name: 'mode', type: 'string', value: 'nearest' },
      { name: 'coordinate_transformation_mode', type: 'string', value: 'asymmetric' },
      { name: 'nearest_mode', type: 'string', value: 'floor' },
    ]);
  },
  // Only integer upscales are built as Resize: each input pixel feeds an sh×sw block of the output.
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const [oh, ow] = node.attrs.sizes;
    if (oh % h !== 0 || ow % w !== 0) throw new Error(`Resize gradient needs integer scales, got ${formatShape(x.shape)} -> [${oh}, ${ow}]`);
    return [reshape(reduceSum(reshape(g!, [n, c, h, oh / h, w, ow / w]), [3, 5]), x.shape)];
  },
});

defineOp({
  type: 'AveragePool',
  infer([x], attrs) {
    requireFloat('AveragePool', x!);
    requireRank('AveragePool', x!, 4);
    const [oh, ow] = pooledSize('AveragePool', x!.shape, attrs);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, oh, ow] }];
  },
  onnxAttrs: { kernel_shape: 'ints', strides: 'ints', pads: 'ints', count_include_pad: 'int' },
  // Each output spreads g/(kh·kw) back over its window: a depthwise ConvTranspose with a constant box kernel.
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    const c = x.shape[1]!;
    const { kernel_shape: [kh, kw], strides, pads } = node.attrs;
    const box = x.graph.constant(new Array<number>(c * kh * kw).fill(1 / (kh * kw)), [c, 1, kh, kw], x.dtype);
    const outputPadding = [0, 1].map((i) => {
      const k = i === 0 ? kh : kw;
      return x.shape[2 + i]! - ((g!.shape[2 + i]! - 1) * strides[i]! + k - pads[i]! - pads[i + 2]!);
    });
    return [x.graph.apply1('ConvTranspose', [g!, box], { strides, pads, dilations: [1, 1], group: c, output_padding: outputPadding })];
  },
});

defineOp({
  type: 'MaxPool',
  infer([x], attrs) {
    requireFloat('MaxPool', x!);
    requireRank('MaxPool', x!, 4);
    const [oh, ow] = pooledSize('MaxPool', x!.shape, attrs);
    return [{ dtype: x!.dtype, shape: [x!.shape[0]!, x!.shape[1]!, oh, ow] }];
  },
  onnxAttrs: { kernel_shape: 'ints', strides: 'ints', pads: 'ints' },
  // No VJP: only the evaluation metrics (LPIPS's AlexNet) use it, and they need no gradient.
});

/** F.max_pool2d with ceil_mode=False and dilation 1; padding is symmetric per axis (padded cells never win). */
export function maxPool2d(
  x: Value,
  kernel: number | readonly [number, number],
  stride?: number | readonly [number, number],
  padding: number | readonly [number, number] = 0,
): Value {
  return x.graph.apply1('MaxPool', [x], poolAttrs(kernel, stride, padding));
}

/** The attributes of a 2-D pooling window: the stride defaults to the kernel, padding is symmetric per axis. */
function poolAttrs(kernel: number | readonly [number, number], stride: number | readonly [number, number] | undefined, padding: number | readonly [number, number]): PoolAttrs {
  const k = pair(kernel);
  const [ph, pw] = pair(padding);
  return { kernel_shape: k, strides: pair(stride ?? k), pads: [ph, pw, ph, pw] };
}

function pooledSize(
  op: string,
  shape: readonly number[],
  { kernel_shape: [kh, kw], strides: [sh, sw], pads: [pt, pl, pb, pr] }: PoolAttrs,
): [number, number] {
  const oh = Math.floor((shape[2]! + pt + pb - kh) / sh) + 1;
  const ow = Math.floor((shape[3]! + pl + pr - kw) / sw) + 1;
  if (oh < 1 || ow < 1) throw new Error(`${op} kernel [${kh}, ${kw}] exceeds the padded input ${formatShape(shape)}`);
  return [oh, ow];
}

/** F.interpolate(mode='nearest'): source index floor(dst · in/out) in float32, as PyTorch computes it. */
export function resizeNearest(x: Value, size: readonly [number, number]): Value {
  requireRank('resizeNearest', x, 4);
  const [h, w] = [x.shape[2]!, x.shape[3]!];
  const rows = nearestIndices(h, size[0]);
  const cols = nearestIndices(w, size[1]);
  const isBlockUpscale = (idx: number[], n: number) => idx.length % n === 0 && idx.every((s, d) => s === Math.floor(d / (idx.length / n)));
  if (isBlockUpscale(rows, h) && isBlockUpscale(cols, w)) {
    if (size[0] === h && size[1] === w) return x;
    return x.graph.apply1('Resize', [x], { sizes: [...size] });
  }
  let y = x;
  if (size[0] !== h || !rows.every((s, d) => s === d)) y = gather(y, rows, 2);
  if (size[1] !== w || !cols.every((s, d) => s === d)) y = gather(y, cols, 3);
  return y;
}

function nearestIndices(input: number, output: number): number[] {
  const scale = Math.fround(input / output);
  return Array.from({ length: output }, (_, d) => Math.min(Math.floor(Math.fround(d * scale)), input - 1));
}

/** F.interpolate(mode='bilinear', align_corners=False, antialias=False), up or down. */
export function resizeBilinear(x: Value, size: readonly [number, number]): Value {
  requireRank('resizeBilinear', x, 4);
  return separableMap(x, bilinearMatrix(x.shape[2]!, size[0]), bilinearMatrix(x.shape[3]!, size[1]), size);
}

/** F.adaptive_avg_pool2d: window i spans [floor(i·in/out), ceil((i+1)·in/out)); also upsamples when out > in. */
export function adaptiveAvgPool2d(x: Value, size: readonly [number, number]): Value {
  requireRank('adaptiveAvgPool2d', x, 4);
  return separableMap(x, adaptiveMatrix(x.shape[2]!, size[0]), adaptiveMatrix(x.shape[3]!, size[1]), size);
}

/** F.avg_pool2d with count_include_pad=True, ceil_mode=False; padding is symmetric per axis. */
export function avgPool2d(
  x: Value,
  kernel: number | readonly [number, number],
  stride?: number | readonly [number, number],
  padding: number | readonly [number, number] = 0,
): Value {
  return x.graph.apply1('AveragePool', [x], { ...poolAttrs(kernel, stride, padding), count_include_pad: 1 });
}

/** y = A_h · x · A_wᵀ over the last two axes, skipping an axis whose matrix is the identity. */
function separableMap(x: Value, rowMatrix: number[][], colMatrix: number[][], size: readonly [number, number]): Value {
  const g = x.graph;
  const isIdentity = (m: number[][]) => m.length === m[0]!.length && m.every((row, i) => row.every((v, j) => v === (i === j ? 1 : 0)));
  let y = x;
  if (!isIdentity(rowMatrix)) y = matmul(g.constant(rowMatrix.flat(), [size[0], x.shape[2]!], x.dtype), y);
  if (!isIdentity(colMatrix)) {
    const w = x.shape[3]!;
    const transposed = Array.from({ length: w * size[1] }, (_, k) => colMatrix[k % size[1]]![Math.floor(k / size[1])]!);
    y = matmul(y, g.constant(transposed, [w, size[1]], x.dtype));
  }
  return y;
}

function bilinearMatrix(input: number, output: number): number[][] {
  const scale = input / output;
  return Array.from({ length: output }, (_, d) => {
    const row = new Array<number>(input).fill(0);
    const src = Math.max(scale * (d + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), input - 1);
    const i1 = i0 < input - 1 ? i0 + 1 : i0;
    const l1 = src - i0;
    row[i0]! += 1 - l1;
    row[i1]! += l1;
    return row;
  });
}

function adaptiveMatrix(input: number, output: number): number[][] {
  return Array.from({ length: output }, (_, i) => {
    const row = new Array<number>(input).fill(0);
    const start = Math.floor((i * input) / output);
    const end = Math.ceil(((i + 1) * input) / output);
    for (let j = start; j < end; j++) row[j] = 1 / (end - start);
    return row;
  });
}
