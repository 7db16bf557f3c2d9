/** Reductions (ReduceSum) and the un-broadcasting every broadcasting op's gradient needs. */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { formatShape, normalizeAxis, sameShape, type Shape } from '../shape';
import { expand, reshape } from './shape-ops';

defineOp({
  type: 'ReduceSum',
  infer([x], attrs) {
    const axes = normalizedAxes(attrs.axes as readonly number[], x!.shape.length);
    const keep = attrs.keepdims !== 0;
    const shape = x!.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    return [{ dtype: x!.dtype, shape }];
  },
  lower(node, onnx) {
    const axes = node.attrs.axes as readonly number[];
    onnx.emit('ReduceSum', [onnx.inputs[0]!, onnx.constant(axes, 'int64')], onnx.outputs, [
      { name: 'keepdims', type: 'int', value: node.attrs.keepdims === 0 ? 0 : 1 },
    ]);
  },
  vjp(node, [g]) {
    const x = node.inputs[0]!;
    const keptShape = x.shape.map((d, i) => (normalizedAxes(node.attrs.axes as readonly number[], x.rank).includes(i) ? 1 : d));
    return [expand(reshape(g!, keptShape), x.shape)];
  },
});

export function reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
  return x.graph.apply1('ReduceSum', [x], { axes: normalizedAxes(axes, x.rank), keepdims: keepdims ? 1 : 0 });
}

/** Sums a broadcast result back to an operand's shape (the adjoint of broadcasting). */
export function reduceToShape(g: Value, shape: Shape): Value {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`cannot reduce ${formatShape(g.shape)} to the larger shape ${formatShape(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const summed = axes.length > 0 ? reduceSum(g, axes, true) : g;
  return sameShape(summed.shape, shape) ? summed : reshape(summed, shape);
}

function normalizedAxes(axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normalizeAxis(a, rank));
  if (new Set(out).size !== out.length) throw new Error(`repeated axes ${formatShape(axes)}`);
  return out.sort((a, b) => a - b);
}
