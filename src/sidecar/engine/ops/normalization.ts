/**
 * Softmax, LayerNormalization, InstanceNormalization and PyTorch-style group norm on top of it. The
 * normalisation gradients are the closed-form ones, recomputing mean and inverse deviation from the
 * input with reductions (cheaper to keep than the ONNX ops' optional statistics outputs, whose dtype
 * rules differ between kernels).
 */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { formatShape, normalizeAxis, sameShape } from '../shape';
import { requireFloat, requireSameDtype } from './checks';
import { cast } from './convert';
import { add, mul, sub } from './elementwise';
import { reduceMean, reduceSum } from './reduce';
import { reshape } from './shape-ops';
import { pow } from './unary';

defineOp({
  type: 'Softmax',
  infer([x], attrs) {
    requireFloat('Softmax', x!);
    normalizeAxis(attrs.axis, x!.shape.length);
    return [x!];
  },
  onnxAttrs: { axis: 'int' },
  vjp(node, [g]) {
    const y = node.outputs[0]!;
    const axis = node.attrs.axis;
    const rowDot = attentionRowDot(y, g!, axis) ?? reduceSum(mul(g!, y), [axis], true);
    return [mul(y, sub(g!, rowDot))];
  },
});

/**
 * Σⱼ gᵢⱼ·yᵢⱼ for attention, computed on the small side. When y = softmax(scores) only feeds
 * O = y·V, its cotangent is g = dO·Vᵀ, and Σⱼ gᵢⱼ·yᵢⱼ = Σ_d dOᵢ_d·Oᵢ_d: a product over the head dim
 * instead of two passes over the tokens × tokens matrix. Returns null when g is not of that form.
 */
function attentionRowDot(y: Value, g: Value, axis: number): Value | null {
  const matmul = g.producer;
  if (axis !== y.rank - 1 || matmul?.op !== 'MatMul') return null;
  const [dOut, vT] = matmul.inputs as [Value, Value];
  const transposed = vT.producer;
  const swapsLast = (perm: readonly number[]) => perm.every((p, i) => p === (i === perm.length - 2 ? i + 1 : i === perm.length - 1 ? i - 1 : i));
  if (transposed?.op !== 'Transpose' || !swapsLast(transposed.attrs.perm)) return null;
  const v = transposed.inputs[0]!;
  const forward = y.graph.nodes.find((n) => n.op === 'MatMul' && n.inputs[0] === y && n.inputs[1] === v);
  const out = forward?.outputs[0];
  if (!out || !sameShape(out.shape, dOut.shape)) return null;
  return reduceSum(mul(dOut, out), [axis], true);
}

defineOp({
  type: 'LayerNormalization',
  infer([x, scale, bias], attrs) {
    requireFloat('LayerNormalization', x!);
    requireSameDtype('LayerNormalization', bias ? [x!, scale!, bias] : [x!, scale!]);
    const axis = normalizeAxis(attrs.axis, x!.shape.length);
    const normalized = x!.shape.slice(axis);
    for (const p of bias ? [scale!, bias] : [scale!]) {
      if (!sameShape(p.shape, normalized)) throw new Error(`LayerNormalization scale/bias must be ${formatShape(normalized)}, got ${formatShape(p.shape)}`);
    }
    return [x!];
  },
  onnxAttrs: { axis: 'int', epsilon: 'float' },
  vjp(node, [g], needs) {
    const [x, scale, bias] = node.inputs as [Value, Value, Value | undefined];
    const axis = node.attrs.axis;
    const axes = x.shape.slice(axis).map((_, i) => axis + i);
    const lead = x.shape.slice(0, axis).map((_, i) => i);
    const { dx, xhat } = normalizedBackward(x, mul(g!, scale), axes, node.attrs.epsilon, needs[0]!);
    return [dx, needs[1] ? reduceSum(mul(g!, xhat), lead, false) : null, needs[2] && bias ? reduceSum(g!, lead, false) : null];
  },
});

defineOp({
  type: 'InstanceNormalization',
  infer([x, scale, bias]) {
    requireFloat('InstanceNormalization', x!);
    requireSameDtype('InstanceNormalization', [x!, scale!, bias!]);
    if (x!.shape.length < 3) throw new Error(`InstanceNormalization needs [N, C, spatial...], got ${formatShape(x!.shape)}`);
    const c = x!.shape[1]!;
    if (!sameShape(scale!.shape, [c]) || !sameShape(bias!.shape, [c])) throw new Error(`InstanceNormalization scale and bias must be [${c}]`);
    return [x!];
  },
  onnxAttrs: { epsilon: 'float' },
  vjp(node, [g], needs) {
    const [x, scale] = node.inputs as [Value, Value, Value];
    const perChannel = [x.shape[1]!, ...x.shape.slice(2).map(() => 1)];
    const spatial = x.shape.slice(2).map((_, i) => i + 2);
    const { dx, xhat } = normalizedBackward(x, mul(g!, reshape(scale, perChannel)), spatial, node.attrs.epsilon, needs[0]!);
    return [dx, needs[1] ? reduceSum(mul(g!, xhat), [0, ...spatial], false) : null, needs[2] ? reduceSum(g!, [0, ...spatial], false) : null];
  },
});

/**
 * Backward of x̂ = (x − mean)·r with r = (var + eps)^(−1/2) over `axes`, given gs = d(loss)/d(x̂):
 * dx = r·(gs − mean(gs) − x̂·mean(gs·x̂)).
 */
function normalizedBackward(x: Value, gs: Value, axes: readonly number[], eps: number, needDx: boolean): { dx: Value | null; xhat: Value } {
  const centered = sub(x, reduceMean(x, axes));
  const r = pow(add(reduceMean(mul(centered, centered), axes), eps), -0.5);
  const xhat = mul(centered, r);
  if (!needDx) return { dx: null, xhat };
  const dx = mul(r, sub(sub(gs, reduceMean(gs, axes)), mul(xhat, reduceMean(mul(gs, xhat), axes))));
  return { dx, xhat };
}

export function softmax(x: Value, axis = -1): Value {
  return x.graph.apply1('Softmax', [x], { axis: normalizeAxis(axis, x.rank) });
}

/**
 * Runs a normalisation of a float16 tensor in float32 (cast in, normalise, cast out), as mixed-precision
 * training does: the mean and variance of thousands of half-precision values lose too many bits (and the
 * squares overflow past 256). Other dtypes run as they are.
 */
function inFloat32(x: Value, params: readonly (Value | null)[], run: (x: Value, params: (Value | null)[]) => Value): Value {
  if (x.dtype !== 'float16') return run(x, [...params]);
  const wide = run(
    cast(x, 'float32'),
    params.map((p) => (p ? cast(p, 'float32') : null)),
  );
  return cast(wide, 'float16');
}

/**
 * ONNX LayerNormalization over the axes from `axis` to the end (PyTorch's nn.LayerNorm for axis -1).
 * float16 input is normalised in float32.
 */
export function layerNorm(x: Value, weight: Value, bias: Value | null, eps: number, axis = -1): Value {
  if (x.dtype === 'float16') return inFloat32(x, [weight, bias], (xf, [w, b]) => layerNorm(xf, w!, b ?? null, eps, axis));
  const a = normalizeAxis(axis, x.rank);
  return x.graph.apply1('LayerNormalization', bias ? [x, weight, bias] : [x, weight], { axis: a, epsilon: eps });
}

export function instanceNorm(x: Value, scale: Value, bias: Value, eps: number): Value {
  return x.graph.apply1('InstanceNormalization', [x, scale, bias], { epsilon: eps });
}

/**
 * PyTorch's GroupNorm over [N, C, ...]: statistics per (sample, group of C/groups channels), then a
 * per-channel affine. Written as Reshape → InstanceNormalization (one "channel" per group) → Reshape →
 * Mul → Add, like PyTorch's ONNX export; ONNX's own GroupNormalization takes per-group scales instead.
 * float16 input is normalised (and scaled) in float32.
 */
export function groupNorm(x: Value, groups: number, weight: Value | null, bias: Value | null, eps: number): Value {
  if (x.dtype === 'float16') return inFloat32(x, [weight, bias], (xf, [w, b]) => groupNorm(xf, groups, w ?? null, b ?? null, eps));
  const g = x.graph;
  const [n, c] = x.shape as [number, number];
  if (x.rank < 2 || c % groups !== 0) throw new Error(`groupNorm of ${x.name}: ${c} channels of ${formatShape(x.shape)} do not split into ${groups} groups`);
  for (const p of [weight, bias]) {
    if (p && !sameShape(p.shape, [c])) throw new Error(`groupNorm of ${x.name}: affine parameter ${p.name} must be [${c}], got ${formatShape(p.shape)}`);
  }
  const ones = g.constant(new Array<number>(groups).fill(1), [groups], x.dtype);
  const zeros = g.constant(new Array<number>(groups).fill(0), [groups], x.dtype);
  const grouped = reshape(x, [n, groups, -1]);
  let y = reshape(instanceNorm(grouped, ones, zeros, eps), x.shape);
  const perChannel = [c, ...x.shape.slice(2).map(() => 1)];
  if (weight) y = mul(y, reshape(weight, perChannel));
  if (bias) y = add(y, reshape(bias, perChannel));
  return y;
}
