/**
 * Reads one golden case (test/fixtures/golden): its index.json entry (settings, tensors, tolerances)
 * and its tensors, and checks results against them with the fixtures' metric (relative L2 error).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SafetensorsFile } from '../../src/sidecar/models/checkpoint/safetensors';

export const FIXTURES = path.resolve(__dirname, '..', 'fixtures');

interface TensorEntry {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly tolerance?: number;
}

export interface GoldenCaseEntry {
  readonly name: string;
  readonly file: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, TensorEntry>>;
  readonly outputs: Readonly<Record<string, TensorEntry>>;
}

export function goldenCaseEntry(name: string): GoldenCaseEntry {
  const index = JSON.parse(readFileSync(path.join(FIXTURES, 'golden', 'index.json'), 'utf8')) as {
    cases: GoldenCaseEntry[];
  };
  const entry = index.cases.find((c) => c.name === name);
  if (!entry) throw new Error(`golden index has no case ${name}`);
  return entry;
}

/** ‖actual − expected‖ / ‖expected‖ (computed in float64). */
export function relativeL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, `${actual.length} values, expected ${expected.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i]! - expected[i]!) ** 2;
    den += expected[i]! ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

export class GoldenCase {
  private constructor(
    readonly entry: GoldenCaseEntry,
    readonly tensors: SafetensorsFile,
  ) {}

  static async open(name: string): Promise<GoldenCase> {
    const entry = goldenCaseEntry(name);
    return new GoldenCase(entry, await SafetensorsFile.open(path.join(FIXTURES, entry.file)));
  }

  float32(name: string): Promise<Float32Array> {
    return this.tensors.readFloat32(name);
  }

  int64(name: string): Promise<BigInt64Array> {
    return this.tensors.readInt64(name);
  }

  /** Asserts `actual` is within the output's tolerance of the golden tensor; returns the error. */
  async assertOutput(name: string, actual: ArrayLike<number>): Promise<number> {
    const tolerance = this.entry.outputs[name]?.tolerance;
    if (tolerance === undefined) throw new Error(`golden case ${this.entry.name} has no output ${name} with a tolerance`);
    const error = relativeL2(actual, await this.float32(name));
    assert.ok(error <= tolerance, `${this.entry.name}.${name}: relative L2 error ${error.toExponential(3)} > tolerance ${tolerance}`);
    return error;
  }

  close(): Promise<void> {
    return this.tensors.close();
  }
}
