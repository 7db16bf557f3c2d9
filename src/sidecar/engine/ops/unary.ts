/** Elementwise math of one tensor: Sqrt, Exp, Log, Abs, Reciprocal, Sigmoid, Tanh, Erf, Sin, Cos, Relu, Sign, Pow. */
import type { Value } from '../graph';
import { defineOp, type VjpRule } from '../op';
import { broadcastShapes, formatShape } from '../shape';
import { requireFloat } from './checks';
import { div, mul, neg, sub } from './elementwise';
import { greater, where } from './logic';
import { reduceToShape } from './reduce';

type UnaryOp = 'Sqrt' | 'Exp' | 'Log' | 'Abs' | 'Reciprocal' | 'Sigmoid' | 'Tanh' | 'Erf' | 'Sin' | 'Cos' | 'Relu' | 'Sign';

function defineUnary(type: UnaryOp, vjp: VjpRule<UnaryOp> | undefined): void {
  defineOp({
    type,
    infer([x]) {
      requireFloat(type, x!);
      return [x!];
    },
    ...(vjp ? { vjp } : {}),
  });
}

const x0 = (inputs: readonly Value[]): Value => inputs[0]!;

defineUnary('Sqrt', (node, [g]) => [div(mul(g!, 0.5), node.outputs[0]!)]);
defineUnary('Exp', (node, [g]) => [mul(g!, node.outputs[0]!)]);
defineUnary('Log', (node, [g]) => [div(g!, x0(node.inputs))]);
defineUnary('Abs', (node, [g]) => [mul(g!, sign(x0(node.inputs)))]);
defineUnary('Reciprocal', (node, [g]) => {
  const y = node.outputs[0]!;
  return [neg(mul(g!, mul(y, y)))];
});
defineUnary('Sigmoid', (node, [g]) => {
  const y = node.outputs[0]!;
  return [mul(g!, mul(y, sub(1, y)))];
});
defineUnary('Tanh', (node, [g]) => {
  const y = node.outputs[0]!;
  return [mul(g!, sub(1, mul(y, y)))];
});
defineUnary('Erf', (node, [g]) => {
  const x = x0(node.inputs);
  return [mul(g!, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
});
defineUnary('Sin', (node, [g]) => [mul(g!, cos(x0(node.inputs)))]);
defineUnary('Cos', (node, [g]) => [neg(mul(g!, sin(x0(node.inputs))))]);
defineUnary('Relu', (node, [g]) => [where(greater(x0(node.inputs), 0), g!, 0)]);
// Piecewise constant: its derivative is zero wherever it exists.
defineUnary('Sign', () => [null]);

defineOp({
  type: 'Pow',
  infer([x, p]) {
    requireFloat('Pow', x!);
    if (p!.dtype !== x!.dtype) throw new Error(`Pow needs an exponent of the base's dtype ${x!.dtype}, got ${p!.dtype}`);
    const shape = broadcastShapes(x!.shape, p!.shape);
    if (!shape) throw new Error(`shapes ${formatShape(x!.shape)} and ${formatShape(p!.shape)} do not broadcast`);
    return [{ dtype: x!.dtype, shape }];
  },
  vjp(node, [g], needs) {
    const [x, p] = [node.inputs[0]!, node.inputs[1]!];
    const y = node.outputs[0]!;
    const exponent = constantScalar(p);
    let dx: Value | null = null;
    if (needs[0]) {
      if (exponent === 2) dx = mul(g!, mul(x, 2));
      else if (exponent === 1) dx = g!;
      else if (exponent !== null) dx = mul(g!, mul(pow(x, exponent - 1), exponent));
      else dx = mul(g!, mul(p, x.graph.apply1('Pow', [x, sub(p, 1)])));
    }
    // d(x^p)/dp = x^p * log(x), defined for x > 0 as in PyTorch.
    const dp = needs[1] ? mul(g!, mul(y, log(x))) : null;
    return [dx && reduceToShape(dx, x.shape), dp && reduceToShape(dp, p.shape)];
  },
});

function constantScalar(v: Value): number | null {
  if (v.kind !== 'constant' || v.size !== 1) return null;
  return Number((v.payload as ArrayLike<number>)[0]);
}

const unary = (type: UnaryOp) => (x: Value): Value => x.graph.apply1(type, [x]);

export const sqrt = unary('Sqrt');
export const exp = unary('Exp');
export const log = unary('Log');
export const abs = unary('Abs');
export const reciprocal = unary('Reciprocal');
export const sigmoid = unary('Sigmoid');
export const tanh = unary('Tanh');
export const erf = unary('Erf');
export const sin = unary('Sin');
export const cos = unary('Cos');
export const relu = unary('Relu');
export const sign = unary('Sign');

/** x^p for a constant exponent. */
export function pow(x: Value, p: number): Value {
  if (p === 1) return x;
  return x.graph.apply1('Pow', [x, x.graph.scalar(p, x.dtype)]);
}
