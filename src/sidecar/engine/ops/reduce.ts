/**
 * Reductions (ReduceSum, ReduceMean, ReduceMax, ArgMax, ArgMin) and the un-broadcasting every
 * broadcasting op's gradient needs.
 */
import type { Node, TensorType, Value } from '../graph';
import { defineOp, type VjpRule } from '../op';
import type { ReduceAttrs } from '../op-attrs';
import { formatShape, normalizeAxis, sameShape, type Shape } from '../shape';
import { normalizeAxes, requireFloat } from './checks';
import { cast } from './convert';
import { div, mul } from './elementwise';
import { equal } from './logic';
import { expand, reshape } from './shape-ops';

type ReduceOp = 'ReduceSum' | 'ReduceMean' | 'ReduceMax';

function reducedShape(x: TensorType, attrs: ReduceAttrs): number[] {
  const axes = normalizeAxes(attrs.axes, x.shape.length);
  const keep = attrs.keepdims !== 0;
  return x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
}

/** The input's shape with the reduced axes set to 1: the shape a cotangent is broadcast back from. */
function keptShape(node: Node<ReduceOp>): number[] {
  const x = node.inputs[0]!;
  const axes = node.attrs.axes;
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Opset 18 reductions take their axes as an int64 input tensor. */
function defineReduce(type: ReduceOp, vjp: VjpRule<ReduceOp>): void {
  defineOp({
    type,
    infer([x], attrs) {
      if (type !== 'ReduceSum') requireFloat(type, x!);
      return [{ dtype: x!.dtype, shape: reducedShape(x!, attrs) }];
    },
    lower(node, onnx) {
      const axes = node.attrs.axes;
      onnx.emit(type, [onnx.inputs[0]!, onnx.constant(axes, 'int64')], onnx.outputs, [
        { name: 'keepdims', type: 'int', value: node.attrs.keepdims === 0 ? 0 : 1 },
      ]);
    },
    vjp,
  });
}

defineReduce('ReduceSum', (node, [g]) => [expand(reshape(g!, keptShape(node)), node.inputs[0]!.shape)]);

defineReduce('ReduceMean', (node, [g]) => {
  const x = node.inputs[0]!;
  const count = x.size / node.outputs[0]!.size;
  return [expand(reshape(mul(g!, 1 / count), keptShape(node)), x.shape)];
});

// Ties share the gradient evenly (PyTorch's amax rule).
defineReduce('ReduceMax', (node, [g]) => {
  const x = node.inputs[0]!;
  const axes = node.attrs.axes;
  const mask = cast(equal(x, reshape(node.outputs[0]!, keptShape(node))), x.dtype);
  const ties = x.graph.apply1('ReduceSum', [mask], { axes, keepdims: 1 });
  return [mul(mask, div(reshape(g!, keptShape(node)), ties))];
});

for (const type of ['ArgMax', 'ArgMin'] as const) {
  defineOp({
    type,
    infer([x], attrs) {
      const axis = normalizeAxis(attrs.axis, x!.shape.length);
      const shape = x!.shape.flatMap((d, i) => (i === axis ? (attrs.keepdims !== 0 ? [1] : []) : [d]));
      return [{ dtype: 'int64', shape }];
    },
    onnxAttrs: { axis: 'int', keepdims: 'int' },
  });
}

export function reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
  if (axes.length === 0) return x; // ONNX would read empty axes as "all axes"
  return x.graph.apply1('ReduceSum', [x], { axes: normalizeAxes(axes, x.rank), keepdims: keepdims ? 1 : 0 });
}

export function reduceMean(x: Value, axes: readonly number[], keepdims = true): Value {
  if (axes.length === 0) return x; // ONNX would read empty axes as "all axes"
  return x.graph.apply1('ReduceMean', [x], { axes: normalizeAxes(axes, x.rank), keepdims: keepdims ? 1 : 0 });
}

export function reduceMax(x: Value, axes: readonly number[], keepdims = true): Value {
  if (axes.length === 0) return x; // ONNX would read empty axes as "all axes"
  return x.graph.apply1('ReduceMax', [x], { axes: normalizeAxes(axes, x.rank), keepdims: keepdims ? 1 : 0 });
}

/** Index of the first maximum along `axis` (int64). Not differentiable. */
export function argmax(x: Value, axis: number, keepdims = true): Value {
  return x.graph.apply1('ArgMax', [x], { axis: normalizeAxis(axis, x.rank), keepdims: keepdims ? 1 : 0 });
}

/** Index of the first minimum along `axis` (int64). Not differentiable. */
export function argmin(x: Value, axis: number, keepdims = true): Value {
  return x.graph.apply1('ArgMin', [x], { axis: normalizeAxis(axis, x.rank), keepdims: keepdims ? 1 : 0 });
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
