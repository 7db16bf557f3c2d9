/** Comparisons, Not and Where: boolean masks and selection by a mask. */
import type { Value } from '../graph';
import { defineOp } from '../op';
import { broadcastAll, requireSameDtype } from './checks';
import { reduceToShape } from './reduce';
import { asValues, type Operand } from './operand';

// Comparisons have no derivative: the reverse pass refuses to pass a gradient through them (a mask
// built from a value that needs a gradient must be built from stopGradient(value)). Where's
// condition input is different: it selects, and is declared gradient-free.
type ComparisonOp = 'Equal' | 'Less' | 'Greater' | 'LessOrEqual' | 'GreaterOrEqual';

for (const type of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'] as const) {
  defineOp({
    type,
    infer([a, b]) {
      requireSameDtype(type, [a!, b!]);
      return [{ dtype: 'bool', shape: broadcastAll(type, [a!.shape, b!.shape]) }];
    },
  });
}

defineOp({
  type: 'Not',
  infer([x]) {
    if (x!.dtype !== 'bool') throw new Error(`Not needs a bool input, got ${x!.dtype}`);
    return [x!];
  },
});

defineOp({
  type: 'Where',
  infer([c, a, b]) {
    if (c!.dtype !== 'bool') throw new Error(`Where needs a bool condition, got ${c!.dtype}`);
    return [{ dtype: requireSameDtype('Where', [a!, b!]), shape: broadcastAll('Where', [c!.shape, a!.shape, b!.shape]) }];
  },
  noGradInputs: [0],
  vjp(node, [g], needs) {
    const [c, a, b] = node.inputs as [Value, Value, Value];
    return [
      null,
      needs[1] ? reduceToShape(where(c, g!, 0), a.shape) : null,
      needs[2] ? reduceToShape(where(c, 0, g!), b.shape) : null,
    ];
  },
});

const comparison =
  (type: ComparisonOp) =>
  (a: Operand, b: Operand): Value => {
    const [x, y] = asValues(a, b);
    return x.graph.apply1(type, [x, y]);
  };

export const equal = comparison('Equal');
export const less = comparison('Less');
export const greater = comparison('Greater');
export const lessOrEqual = comparison('LessOrEqual');
export const greaterOrEqual = comparison('GreaterOrEqual');

function logicalNot(x: Value): Value {
  return x.graph.apply1('Not', [x]);
}
export { logicalNot as not };

/** Elementwise `cond ? a : b` with broadcasting; either branch may be a JS number (float32 if both are). */
export function where(cond: Value, a: Operand, b: Operand): Value {
  const g = cond.graph;
  const [x, y] = typeof a === 'number' && typeof b === 'number' ? [g.scalar(a), g.scalar(b)] : asValues(a, b);
  return cond.graph.apply1('Where', [cond, x, y]);
}
