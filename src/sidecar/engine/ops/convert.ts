/** Cast and StopGradient: ops that change how a value is typed or differentiated, not what it holds. */
import { ONNX_DTYPE, type DType } from '../dtype';
import type { Value } from '../graph';
import { defineOp } from '../op';

defineOp({
  type: 'Cast',
  infer: ([x], attrs) => [{ dtype: attrs.to, shape: x!.shape }],
  lower(node, onnx) {
    onnx.emit('Cast', onnx.inputs, onnx.outputs, [{ name: 'to', type: 'int', value: ONNX_DTYPE[node.attrs.to] }]);
  },
  // Only float-to-float casts pass a gradient; the reverse pass refuses integer values on a gradient path.
  vjp: (node, [g]) => [cast(g!, node.inputs[0]!.dtype)],
});

/** Identity in ONNX; for the reverse pass its operand is a constant, so no gradient flows through it. */
defineOp({
  type: 'StopGradient',
  infer: ([x]) => [x!],
  noGradInputs: [0],
  lower(_node, onnx) {
    onnx.emit('Identity', onnx.inputs, onnx.outputs);
  },
  vjp: () => [null],
});

export function cast(x: Value, dtype: DType): Value {
  if (x.dtype === dtype) return x;
  return x.graph.apply1('Cast', [x], { to: dtype });
}

/** The same values, treated as a constant by the reverse pass (PyTorch's `detach`). */
export function stopGradient(x: Value): Value {
  return x.graph.apply1('StopGradient', [x]);
}
