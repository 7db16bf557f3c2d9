import type { Value } from '../graph';

/** A tensor, or a JS number standing for a scalar of the other operand's dtype. */
export type Operand = Value | number;

export function asValue(operand: Operand, like: Value): Value {
  return typeof operand === 'number' ? like.graph.scalar(operand, like.dtype) : operand;
}
