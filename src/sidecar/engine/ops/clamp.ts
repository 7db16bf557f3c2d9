/** Min, Max (of two tensors) and Clip (to constant bounds). */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { broadcastAll, requireSameDtype } from './checks';
import { mul } from './elementwise';
import { equal, greater, less, where } from './logic';
import { reduceToShape } from './reduce';
import { asValues, type Operand } from './operand';

// The winner takes the gradient; ties split it in half, as PyTorch's maximum/minimum do.
for (const [type, wins] of [
  ['Max', greater],
  ['Min', less],
] as const) {
  defineOp({
    type,
    infer([a, b]) {
      return [{ dtype: requireSameDtype(type, [a!, b!]), shape: broadcastAll(type, [a!.shape, b!.shape]) }];
    },
    vjp(node, [g], needs) {
      const [a, b] = node.inputs as [Value, Value];
      const half = mul(g!, 0.5);
      const tie = equal(a, b);
      return [
        needs[0] ? reduceToShape(where(tie, half, where(wins(a, b), g!, 0)), a.shape) : null,
        needs[1] ? reduceToShape(where(tie, half, where(wins(b, a), g!, 0)), b.shape) : null,
      ];
    },
  });
}

defineOp({
  type: 'Clip',
  infer: ([x]) => [x!],
  lower(node, onnx) {
    const bound = (v: number | undefined) => (v === undefined ? '' : onnx.constant([v], node.inputs[0]!.dtype, []));
    onnx.emit('Clip', [onnx.inputs[0]!, bound(node.attrs.min), bound(node.attrs.max)], onnx.outputs);
  },
  // Inside the closed interval the gradient passes, outside it is zero (PyTorch's clamp rule).
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    let dx = g!;
    const { min, max } = node.attrs;
    if (min !== undefined) dx = where(less(x, min), 0, dx);
    if (max !== undefined) dx = where(greater(x, max), 0, dx);
    return [dx];
  },
});

export function maximum(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Max', [x, y]);
}

export function minimum(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Min', [x, y]);
}

/** Clamps to [min, max]; either bound may be omitted. */
export function clip(x: Value, min?: number, max?: number): Value {
  if (min !== undefined && max !== undefined && min > max) throw new Error(`clip: min ${min} is above max ${max}`);
  return x.graph.apply1('Clip', [x], { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) });
}
