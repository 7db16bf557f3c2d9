/** Runs small engine graphs on onnxruntime and compares their outputs with reference tensors. */
import assert from 'node:assert/strict';
import type { DType, TypedArray } from '../../src/sidecar/engine/dtype';
import { Graph, type Value } from '../../src/sidecar/engine/graph';
import type { Ref } from './reference';
import { runGraph } from './run-graph';

export function typedArray(values: ArrayLike<number>, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(values);
    case 'float32':
      return Float32Array.from(values);
    case 'int64':
      return BigInt64Array.from(Array.from(values), (v) => BigInt(v));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
    case 'float16':
      throw new Error('float16 feeds are not supported by this helper');
  }
}

/**
 * Builds a graph over the given reference inputs (as graph inputs of `dtype`), runs it on onnxruntime,
 * and returns every output as numbers.
 */
export async function evaluate(
  inputs: Record<string, Ref>,
  build: (x: Record<string, Value>, g: Graph) => Record<string, Value>,
  dtype: DType = 'float32',
): Promise<Record<string, number[]>> {
  const g = new Graph('op-test');
  const values: Record<string, Value> = {};
  for (const [name, r] of Object.entries(inputs)) values[name] = g.input(name, dtype, r.shape);
  const outputs = build(values, g);
  const shapes: Record<string, readonly number[]> = {};
  for (const [name, v] of Object.entries(outputs)) {
    g.output(name, v);
    shapes[name] = v.shape;
  }
  const feeds = Object.fromEntries(Object.entries(inputs).map(([n, r]) => [n, typedArray(r.data, dtype)]));
  const out = await runGraph(g, feeds);
  return Object.fromEntries(Object.entries(out).map(([n, data]) => [n, Array.from(data as ArrayLike<number | bigint>, Number)]));
}

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise, reporting the worst entry. */
export function assertClose(actual: ArrayLike<number>, expected: Ref | ArrayLike<number>, label: string, rtol = 1e-5, atol = 1e-6): void {
  const exp = 'data' in expected ? (expected as Ref).data : (expected as ArrayLike<number>);
  assert.equal(actual.length, exp.length, `${label}: ${actual.length} values, expected ${exp.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < exp.length; i++) {
    const err = Math.abs(actual[i]! - exp[i]!);
    const excess = err - (atol + rtol * Math.abs(exp[i]!));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) assert.fail(`${label}: entry ${worst} is ${actual[worst]}, expected ${exp[worst]} (rtol ${rtol}, atol ${atol})`);
}
