/**
 * Activation functions the models use, composed from standard ops (opset 18 has no Gelu), so their
 * gradients come from the rules of the parts.
 */
import type { Value } from '../graph';
import { add, div, mul } from './elementwise';
import { erf, sigmoid, tanh } from './unary';

/** x · sigmoid(x) (a.k.a. swish). */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

/**
 * PyTorch's GELU: exact `0.5·x·(1 + erf(x/√2))`, or with `approximate = 'tanh'`
 * `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. The exact form is spelled Div by √2 → Erf → Add 1 →
 * Mul with 0.5·x, the node pattern onnxruntime fuses into one Gelu kernel (other spellings stay five
 * elementwise passes).
 */
export function gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
  if (approximate === 'tanh') {
    const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return mul(mul(x, 0.5), add(tanh(inner), 1));
  }
  return mul(mul(x, 0.5), add(erf(div(x, Math.SQRT2)), 1));
}

/** CLIP's quick GELU: x · sigmoid(1.702·x). */
export function quickGelu(x: Value): Value {
  return mul(x, sigmoid(mul(x, 1.702)));
}
