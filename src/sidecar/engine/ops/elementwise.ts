/** Broadcasting binary arithmetic: Add, Sub, Mul, Div. */
import type { Node, Value } from '../graph';
import { defineOp, type VjpRule } from '../op';
import { broadcastShapes, formatShape } from '../shape';
import { reduceToShape } from './reduce';
import { asValues, type Operand } from './operand';

type BinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div';

function defineBinary(type: BinaryOp, vjp: VjpRule<BinaryOp>): void {
  defineOp({
    type,
    infer([a, b]) {
      if (a!.dtype !== b!.dtype) throw new Error(`${type} needs operands of one dtype, got ${a!.dtype} and ${b!.dtype}`);
      const shape = broadcastShapes(a!.shape, b!.shape);
      if (!shape) throw new Error(`shapes ${formatShape(a!.shape)} and ${formatShape(b!.shape)} do not broadcast`);
      return [{ dtype: a!.dtype, shape }];
    },
    vjp,
  });
}

const [ia, ib] = [0, 1];
const operands = (node: Node): [Value, Value] => [node.inputs[ia]!, node.inputs[ib]!];

defineBinary('Add', (node, [g], needs) => {
  const [a, b] = operands(node);
  return [needs[0] ? reduceToShape(g!, a.shape) : null, needs[1] ? reduceToShape(g!, b.shape) : null];
});

defineBinary('Sub', (node, [g], needs) => {
  const [a, b] = operands(node);
  return [needs[0] ? reduceToShape(g!, a.shape) : null, needs[1] ? reduceToShape(neg(g!), b.shape) : null];
});

defineBinary('Mul', (node, [g], needs) => {
  const [a, b] = operands(node);
  return [needs[0] ? reduceToShape(mul(g!, b), a.shape) : null, needs[1] ? reduceToShape(mul(g!, a), b.shape) : null];
});

defineBinary('Div', (node, [g], needs) => {
  const [a, b] = operands(node);
  const y = node.outputs[0]!;
  return [
    needs[0] ? reduceToShape(div(g!, b), a.shape) : null,
    needs[1] ? reduceToShape(neg(div(mul(g!, y), b)), b.shape) : null,
  ];
});

defineOp({
  type: 'Neg',
  infer: ([x]) => [x!],
  vjp: (_node, [g]) => [neg(g!)],
});

export function add(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Add', [x, y]);
}

export function sub(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Sub', [x, y]);
}

export function mul(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Mul', [x, y]);
}

export function div(a: Operand, b: Operand): Value {
  const [x, y] = asValues(a, b);
  return x.graph.apply1('Div', [x, y]);
}

export function neg(x: Value): Value {
  return x.graph.apply1('Neg', [x]);
}
