/**
 * Convolutions: Conv and ConvTranspose over NCHW tensors, with their gradients in standard ops
 * (Conv's input gradient is a Conv with the flipped kernel or a ConvTranspose, see `convInputGrad`; its
 * weight gradient a Conv that correlates the input with the output cotangent, see `convWeightGrad`).
 */
import type { TensorType, Value } from '../graph';
import { defineOp } from '../op';
import type { ConvAttrs } from '../op-attrs';
import { formatShape, numel } from '../shape';
import { pair, requireFloat, requireSameDtype } from './checks';
import { reduceSum } from './reduce';
import { reshape, slice, transpose } from './shape-ops';

/** Conv's own attributes, without ConvTranspose's output_padding. */
function convAttrs({ strides, pads, dilations, group }: ConvAttrs): ConvAttrs {
  return { strides, pads, dilations, group };
}

function checkConvOperands(type: string, [x, w, b]: readonly TensorType[]): void {
  requireFloat(type, x!);
  requireSameDtype(type, b ? [x!, w!, b] : [x!, w!]);
  if (x!.shape.length < 3 || w!.shape.length !== x!.shape.length) {
    throw new Error(`${type} needs input [N, C, spatial...] and weight of the same rank, got ${formatShape(x!.shape)} and ${formatShape(w!.shape)}`);
  }
}

const convOnnxAttrs = { strides: 'ints', pads: 'ints', dilations: 'ints', group: 'int' } as const;

defineOp({
  type: 'Conv',
  infer(inputs, attrs) {
    checkConvOperands('Conv', inputs);
    const [x, w, b] = inputs as [TensorType, TensorType, TensorType | undefined];
    const { strides, pads, dilations, group } = attrs;
    const [n, c] = x.shape as [number, number];
    const [o, cg] = w.shape as [number, number];
    if (c !== cg * group) throw new Error(`Conv input has ${c} channels; weight ${formatShape(w.shape)} with ${group} group(s) expects ${cg * group}`);
    if (o % group !== 0) throw new Error(`Conv weight's ${o} output channels do not divide into ${group} groups`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== o)) throw new Error(`Conv bias must be [${o}], got ${formatShape(b.shape)}`);
    const rank = x.shape.length - 2;
    const spatial = x.shape.slice(2).map((size, i) => {
      const span = (w.shape[2 + i]! - 1) * dilations[i]! + 1;
      const padded = size + pads[i]! + pads[i + rank]!;
      if (padded < span) throw new Error(`Conv kernel ${formatShape(w.shape.slice(2))} (dilated span ${span}) exceeds the padded input ${padded}`);
      return Math.floor((padded - span) / strides[i]!) + 1;
    });
    return [{ dtype: x.dtype, shape: [n, o, ...spatial] }];
  },
  onnxAttrs: convOnnxAttrs,
  vjp(node, [g], needs) {
    const [x, w, b] = node.inputs as [Value, Value, Value | undefined];
    const attrs = convAttrs(node.attrs);
    const rank = x.rank - 2;
    let dx: Value | null = null;
    if (needs[0]) dx = convInputGrad(x, w, g!, attrs);
    const dw = needs[1] ? convWeightGrad(x, g!, attrs, w.shape.slice(2)) : null;
    const db = needs[2] && b ? reduceSum(g!, [0, ...Array.from({ length: rank }, (_, i) => i + 2)], false) : null;
    return [dx, dw, db];
  },
});

defineOp({
  type: 'ConvTranspose',
  infer(inputs, attrs) {
    checkConvOperands('ConvTranspose', inputs);
    const [x, w, b] = inputs as [TensorType, TensorType, TensorType | undefined];
    const { strides, pads, dilations, group, output_padding: outputPadding } = attrs;
    const [n, c] = x.shape as [number, number];
    if (w.shape[0] !== c) throw new Error(`ConvTranspose input has ${c} channels, weight ${formatShape(w.shape)} expects ${w.shape[0]}`);
    const o = w.shape[1]! * group;
    if (b && (b.shape.length !== 1 || b.shape[0] !== o)) throw new Error(`ConvTranspose bias must be [${o}], got ${formatShape(b.shape)}`);
    const rank = x.shape.length - 2;
    const spatial = x.shape.slice(2).map(
      (size, i) => strides[i]! * (size - 1) + outputPadding[i]! + (w.shape[2 + i]! - 1) * dilations[i]! + 1 - pads[i]! - pads[i + rank]!,
    );
    return [{ dtype: x.dtype, shape: [n, o, ...spatial] }];
  },
  onnxAttrs: { ...convOnnxAttrs, output_padding: 'ints' },
  vjp(node, [g], needs) {
    const [x, w, b] = node.inputs as [Value, Value, Value | undefined];
    const attrs = convAttrs(node.attrs);
    const dx = needs[0] ? x.graph.apply1('Conv', [g!, w], { ...attrs }) : null;
    // ConvTranspose is the adjoint of Conv(·, w): its weight gradient is Conv's with the roles of input and cotangent swapped.
    const dw = needs[1] ? convWeightGrad(g!, x, attrs, w.shape.slice(2)) : null;
    const db = needs[2] && b ? reduceSum(g!, [0, ...Array.from({ length: x.rank - 2 }, (_, i) => i + 2)], false) : null;
    return [dx, dw, db];
  },
});

/**
 * A Conv's input gradient runs as a Conv (below) when its cotangent has at least this share of the weight's
 * elements. Flipping the weight costs a pass over it on every run (the weights are graph inputs), and the
 * flipped copies are held while the graph runs; the Conv saves time in proportion to the feature map.
 * Profiled on the CPU provider (CLIPDrag step at 256², per layer, against the ConvTranspose): 25–40 % less
 * on the VAE decoder's layers whose cotangent is 0.9–60× the weight, even or 12 % less at 0.12–0.22×, a loss
 * below 0.1× (the flip alone outlasting the ConvTranspose); admitting the layers down to 0.25× added 0.9 GB
 * to the step's peak for no measurable gain.
 */
const FLIPPED_CONV_MIN_RATIO = 0.8;

/**
 * d(loss)/d(x) of `y = Conv(x, w)` given `gy`. With unit strides this is a full correlation of the cotangent
 * with the kernel flipped in space and its input and output channels swapped (per group): a Conv, which
 * onnxruntime's CPU provider runs through its tiled convolution kernels, while its ConvTranspose multiplies
 * into a column buffer and scatters it back on one thread. Strided convolutions, padding wider than the
 * kernel's reach, and small feature maps under large weights (FLIPPED_CONV_MIN_RATIO) keep the ConvTranspose.
 */
function convInputGrad(x: Value, w: Value, gy: Value, attrs: ConvAttrs): Value {
  const rank = x.rank - 2;
  const kernel = w.shape.slice(2);
  const spans = kernel.map((k, i) => (k - 1) * attrs.dilations[i]! + 1);
  const fullPads = [...spans.map((span, i) => span - 1 - attrs.pads[i]!), ...spans.map((span, i) => span - 1 - attrs.pads[i + rank]!)];
  const worthFlipping = numel(gy.shape) >= FLIPPED_CONV_MIN_RATIO * numel(w.shape);
  if (worthFlipping && attrs.strides.every((s) => s === 1) && fullPads.every((p) => p >= 0)) {
    const [o, cg] = w.shape as [number, number];
    const group = attrs.group;
    const spatialAxes = kernel.map((_, i) => i + 2);
    const swapped =
      group === 1
        ? transpose(w, [1, 0, ...spatialAxes])
        : reshape(transpose(reshape(w, [group, o / group, cg, ...kernel]), [0, 2, 1, ...spatialAxes.map((a) => a + 1)]), [cg * group, o / group, ...kernel]);
    const flippedAxes = spatialAxes.filter((a) => w.shape[a]! > 1);
    const flipped =
      flippedAxes.length === 0
        ? swapped
        : slice(swapped, flippedAxes.map(() => -1), flippedAxes.map(() => -Number.MAX_SAFE_INTEGER), flippedAxes, flippedAxes.map(() => -1));
    return x.graph.apply1('Conv', [gy, flipped], { strides: attrs.strides, pads: fullPads, dilations: attrs.dilations, group });
  }
  // ConvTranspose drops the trailing rows a strided Conv never read; output_padding adds them back.
  const outputPadding = x.shape.slice(2).map((size, i) => size - ((gy.shape[2 + i]! - 1) * attrs.strides[i]! + spans[i]! - attrs.pads[i]! - attrs.pads[i + rank]!));
  return x.graph.apply1('ConvTranspose', [gy, w], { ...attrs, output_padding: outputPadding });
}

/**
 * d(loss)/d(weight) of `y = Conv(x, w)` given `gy`: each weight tap correlates the (padded) input with
 * the output cotangent, summed over the batch. That is itself a convolution with batch and channels
 * swapped: the input channels act as the batch, the batch as the reduced channels, the cotangent as
 * the kernel, the forward dilation as the stride and the forward stride as the dilation. Groups map to
 * groups: the input is regrouped to [C/g, g·N, ...] so group q reads only its own channels.
 */
export function convWeightGrad(x: Value, gy: Value, attrs: ConvAttrs, kernel: readonly number[]): Value {
  const [n, c] = x.shape as [number, number];
  const group = attrs.group;
  const cg = c / group;
  const spatial = x.shape.slice(2);
  const rest = spatial.map((_, i) => i + 3);
  const regrouped =
    group === 1
      ? transpose(x, [1, 0, ...rest.map((a) => a - 1)])
      : reshape(transpose(reshape(x, [n, group, cg, ...spatial]), [2, 1, 0, ...rest]), [cg, group * n, ...spatial]);
  const kernelFromGrad = transpose(gy, [1, 0, ...rest.map((a) => a - 1)]);
  const correlated = x.graph.apply1('Conv', [regrouped, kernelFromGrad], {
    strides: attrs.dilations,
    dilations: attrs.strides,
    pads: attrs.pads,
    group,
  });
  // Rows past the last tap (input the strided forward never reached) fall outside the kernel: cut them.
  const cut = slice(correlated, kernel.map(() => 0), kernel, kernel.map((_, i) => i + 2));
  return transpose(cut, [1, 0, ...rest.map((a) => a - 1)]);
}

export interface Conv2dOptions {
  readonly stride?: number | readonly [number, number];
  /** Symmetric padding, [vertical, horizontal], or [top, left, bottom, right]. */
  readonly padding?: number | readonly [number, number] | readonly [number, number, number, number];
  readonly dilation?: number | readonly [number, number];
  readonly groups?: number;
}

function pads4(padding: Conv2dOptions['padding']): number[] {
  if (padding === undefined) return [0, 0, 0, 0];
  if (typeof padding === 'number') return [padding, padding, padding, padding];
  if (padding.length === 2) return [padding[0], padding[1], padding[0], padding[1]];
  return [...padding];
}

/** PyTorch's F.conv2d on NCHW input with weight [out, in/groups, kh, kw]. */
export function conv2d(x: Value, weight: Value, bias?: Value | null, options: Conv2dOptions = {}): Value {
  const attrs = {
    strides: pair(options.stride ?? 1),
    pads: pads4(options.padding),
    dilations: pair(options.dilation ?? 1),
    group: options.groups ?? 1,
  };
  return x.graph.apply1('Conv', bias ? [x, weight, bias] : [x, weight], attrs);
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  readonly outputPadding?: number | readonly [number, number];
}

/** PyTorch's F.conv_transpose2d with weight [in, out/groups, kh, kw]. */
export function convTranspose2d(x: Value, weight: Value, bias?: Value | null, options: ConvTranspose2dOptions = {}): Value {
  const attrs = {
    strides: pair(options.stride ?? 1),
    pads: pads4(options.padding),
    dilations: pair(options.dilation ?? 1),
    group: options.groups ?? 1,
    output_padding: pair(options.outputPadding ?? 0),
  };
  return x.graph.apply1('ConvTranspose', bias ? [x, weight, bias] : [x, weight], attrs);
}
