/** Matrix products: MatMul (batched, broadcasting), Gemm, and `linear` (PyTorch's nn.Linear). */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { broadcastShapes, formatShape } from '../shape';
import { requireFloat, requireSameDtype } from './checks';
import { mul } from './elementwise';
import { reduceToShape } from './reduce';
import { reshape, transpose } from './shape-ops';

defineOp({
  type: 'MatMul',
  infer([a, b]) {
    const dtype = requireSameDtype('MatMul', [a!, b!]);
    requireFloat('MatMul', a!);
    const [sa, sb] = [a!.shape, b!.shape];
    if (sa.length < 2 || sb.length < 2) throw new Error(`MatMul needs operands of rank >= 2, got ${formatShape(sa)} and ${formatShape(sb)}`);
    const [m, k] = sa.slice(-2) as [number, number];
    const [k2, n] = sb.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`MatMul inner dims differ: ${formatShape(sa)} x ${formatShape(sb)}`);
    const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
    if (!batch) throw new Error(`MatMul batch dims of ${formatShape(sa)} and ${formatShape(sb)} do not broadcast`);
    return [{ dtype, shape: [...batch, m, n] }];
  },
  vjp(node, [g], needs) {
    const [a, b] = node.inputs as [Value, Value];
    const dA = needs[0] ? reduceToShape(matmul(g!, swapLast(b)), a.shape) : null;
    let dB: Value | null = null;
    if (needs[1]) {
      // A weight shared across a batch: one GEMM over the flattened rows instead of a batched product + sum.
      if (b.rank === 2 && a.rank > 2) dB = gemm(reshape(a, [-1, a.shape.at(-1)!]), reshape(g!, [-1, g!.shape.at(-1)!]), { transA: true });
      else dB = reduceToShape(matmul(swapLast(a), g!), b.shape);
    }
    return [dA, dB];
  },
});

defineOp({
  type: 'Gemm',
  infer(inputs, attrs) {
    const [a, b, c] = inputs;
    const dtype = requireSameDtype('Gemm', inputs);
    if (a!.shape.length !== 2 || b!.shape.length !== 2) throw new Error('Gemm needs rank-2 A and B');
    const [m, k] = attrs.transA ? [a!.shape[1]!, a!.shape[0]!] : [a!.shape[0]!, a!.shape[1]!];
    const [k2, n] = attrs.transB ? [b!.shape[1]!, b!.shape[0]!] : [b!.shape[0]!, b!.shape[1]!];
    if (k !== k2) throw new Error(`Gemm inner dims differ: ${formatShape(a!.shape)} x ${formatShape(b!.shape)} (transA ${attrs.transA}, transB ${attrs.transB})`);
    if (c) {
      const cs = broadcastShapes(c.shape, [m, n]);
      if (!cs || cs[0] !== m || cs[1] !== n) throw new Error(`Gemm bias ${formatShape(c.shape)} does not broadcast to [${m}, ${n}]`);
    }
    return [{ dtype, shape: [m, n] }];
  },
  onnxAttrs: { transA: 'int', transB: 'int', alpha: 'float', beta: 'float' },
  vjp(node, [g], needs) {
    const [a, b, c] = node.inputs as [Value, Value, Value | undefined];
    const { transA, transB } = { transA: node.attrs.transA === 1, transB: node.attrs.transB === 1 };
    const alpha = node.attrs.alpha ?? 1;
    const beta = node.attrs.beta ?? 1;
    const dA = !needs[0] ? null : transA ? gemm(b, g!, { transA: transB, transB: true, alpha }) : gemm(g!, b, { transB: !transB, alpha });
    const dB = !needs[1] ? null : transB ? gemm(g!, a, { transA: true, transB: transA, alpha }) : gemm(a, g!, { transA: !transA, alpha });
    const dC = needs[2] && c ? reduceToShape(beta === 1 ? g! : mul(g!, beta), c.shape) : null;
    return [dA, dB, dC];
  },
});

function swapLast(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [x.rank - 1, x.rank - 2];
  return transpose(x, perm);
}

/** Batched matrix product with NumPy broadcasting of the leading dims (operands of rank >= 2). */
export function matmul(a: Value, b: Value): Value {
  return a.graph.apply1('MatMul', [a, b]);
}

export interface GemmOptions {
  readonly transA?: boolean;
  readonly transB?: boolean;
  readonly alpha?: number;
  readonly beta?: number;
}

/** ONNX Gemm: alpha·op(A)·op(B) + beta·C for rank-2 A and B. */
export function gemm(a: Value, b: Value, options: GemmOptions = {}, c?: Value): Value {
  const { alpha, beta } = options;
  // Default scales are left out of the node, as ONNX's defaults.
  return a.graph.apply1('Gemm', c ? [a, b, c] : [a, b], {
    transA: options.transA ? 1 : 0,
    transB: options.transB ? 1 : 0,
    ...(alpha !== undefined && alpha !== 1 ? { alpha } : {}),
    ...(beta !== undefined && beta !== 1 ? { beta } : {}),
  });
}

/**
 * PyTorch's nn.Linear: `x · weightᵀ + bias` with weight laid out [out, in]. Leading dims of x are
 * flattened into the rows of one Gemm (transB), so neither direction ever materialises a transposed
 * weight: dx = g·W and dW = gᵀ·x are plain Gemms too.
 */
export function linear(x: Value, weight: Value, bias?: Value | null): Value {
  if (weight.rank !== 2) throw new Error(`linear: weight ${weight.name} must be [out, in], got ${formatShape(weight.shape)}`);
  const [out, inFeatures] = weight.shape as [number, number];
  if (x.shape.at(-1) !== inFeatures) {
    throw new Error(`linear: input ${x.name} ${formatShape(x.shape)} does not end in the weight's in-features ${inFeatures} (weight ${weight.name} ${formatShape(weight.shape)})`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== out)) throw new Error(`linear: bias ${bias.name} must be [${out}], got ${formatShape(bias.shape)}`);
  const rows = reshape(x, [-1, inFeatures]);
  const y = gemm(rows, weight, { transB: true }, bias ?? undefined);
  return reshape(y, [...x.shape.slice(0, -1), out]);
}
