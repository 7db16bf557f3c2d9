/** Ops that only move or replicate data: Reshape, Expand. */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { broadcastShapes, formatShape, numel, sameShape, type Shape } from '../shape';
import { reduceToShape } from './reduce';

defineOp({
  type: 'Reshape',
  infer([x], attrs) {
    const shape = attrs.shape as readonly number[];
    if (numel(shape) !== numel(x!.shape)) throw new Error(`cannot reshape ${formatShape(x!.shape)} to ${formatShape(shape)}`);
    return [{ dtype: x!.dtype, shape }];
  },
  lower(node, onnx) {
    onnx.emit('Reshape', [onnx.inputs[0]!, onnx.constant(node.attrs.shape as readonly number[], 'int64')], onnx.outputs);
  },
  vjp: (node, [g]) => [reshape(g!, node.inputs[0]!.shape)],
});

defineOp({
  type: 'Expand',
  infer([x], attrs) {
    const target = attrs.shape as readonly number[];
    const shape = broadcastShapes(x!.shape, target);
    if (!shape || !sameShape(shape, target)) throw new Error(`cannot expand ${formatShape(x!.shape)} to ${formatShape(target)}`);
    return [{ dtype: x!.dtype, shape }];
  },
  lower(node, onnx) {
    onnx.emit('Expand', [onnx.inputs[0]!, onnx.constant(node.attrs.shape as readonly number[], 'int64')], onnx.outputs);
  },
  vjp: (node, [g]) => [reduceToShape(g!, node.inputs[0]!.shape)],
});

/** Reshape to a static shape; one entry may be -1 (inferred). */
export function reshape(x: Value, shape: Shape): Value {
  const known = shape.filter((d) => d !== -1);
  const resolved = known.length === shape.length ? shape : shape.map((d) => (d === -1 ? numel(x.shape) / numel(known) : d));
  if (sameShape(resolved, x.shape)) return x;
  return x.graph.apply1('Reshape', [x], { shape: resolved.map((d) => (Number.isInteger(d) ? d : NaN)) });
}

export function expand(x: Value, shape: Shape): Value {
  if (sameShape(x.shape, shape)) return x;
  return x.graph.apply1('Expand', [x], { shape: [...shape] });
}
