import type { Value } from '../graph';

/** A tensor, or a JS number standing for a scalar of the other operand's dtype. */
export type Operand = Value | number;

export function asValue(operand: Operand, like: Value): Value {
  return typeof operand === 'number' ? like.graph.scalar(operand, like.dtype) : operand;
}

/** Lets all but one operand of an op be JS numbers, taken as scalars of the first tensor operand's dtype. */
export function asValues<T extends readonly Operand[]>(...operands: T): { [K in keyof T]: Value } {
  const like = operands.find((o): o is Value => typeof o !== 'number');
  if (!like) throw new Error('an op needs at least one tensor operand, got only numbers');
  return operands.map((o) => asValue(o, like)) as { [K in keyof T]: Value };
}
