/** Small checks shared by the ops' shape inference; they throw plain Errors that Graph wraps with context. */
import { isFloat, type DType } from '../dtype';
import type { TensorType } from '../graph';
import { broadcastShapes, formatShape, normalizeAxis, type Shape } from '../shape';

export function requireFloat(op: string, x: TensorType, what = 'input'): void {
  if (!isFloat(x.dtype)) throw new Error(`${op} needs a floating-point ${what}, got ${x.dtype}`);
}

export function requireSameDtype(op: string, types: readonly TensorType[]): DType {
  const dtype = types[0]!.dtype;
  const other = types.find((t) => t.dtype !== dtype);
  if (other) throw new Error(`${op} needs operands of one dtype, got ${types.map((t) => t.dtype).join(' and ')}`);
  return dtype;
}

export function requireRank(op: string, x: TensorType, rank: number, what = 'input'): void {
  if (x.shape.length !== rank) throw new Error(`${op} needs a rank-${rank} ${what}, got shape ${formatShape(x.shape)}`);
}

export function broadcastAll(op: string, shapes: readonly Shape[]): number[] {
  let out: number[] = [...shapes[0]!];
  for (const s of shapes.slice(1)) {
    const next = broadcastShapes(out, s);
    if (!next) throw new Error(`${op}: shapes ${shapes.map(formatShape).join(', ')} do not broadcast`);
    out = next;
  }
  return out;
}

/** Normalises a list of axes against a rank (negative axes count from the end), rejecting repeats. */
export function normalizeAxes(axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normalizeAxis(a, rank));
  if (new Set(out).size !== out.length) throw new Error(`repeated axes ${formatShape(axes)}`);
  return out.sort((a, b) => a - b);
}

/** A pair of spatial parameters from a number or a pair. */
export function pair(v: number | readonly [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}
