/**
 * The contract between the conformance runner and the per-case handler
 * modules in `cases/`. A handler module exports:
 *
 *   export const cases: readonly string[]      // golden case names it handles
 *   export async function run(entry, golden, fixtureDir, options): Promise<CaseResult>
 *
 * It returns the tensors it produced, by the output names of index.json
 * (sub-cases prefixed "0.", "1.", ...). Outputs it does not produce are
 * reported as not implemented; the runner does all comparing and printing.
 */
import * as path from 'node:path';
import type { GoldenCase, GoldenTensors, HostTensor } from './golden';

export interface RunnerOptions {
  /** Folder with the real CLIP BPE vocab.json + merges.txt, when given with --bpe. */
  readonly bpeDir?: string;
}

export interface CaseResult {
  /** Produced tensors by output name. */
  readonly outputs: Readonly<Record<string, HostTensor>>;
  /**
   * References for outputs the golden safetensors file does not hold (an
   * output described in prose, e.g. data from the case's details file).
   */
  readonly references?: Readonly<Record<string, HostTensor>>;
}

export type CaseRun = (entry: GoldenCase, golden: GoldenTensors, fixtureDir: string, options: RunnerOptions) => Promise<CaseResult>;

export interface CaseHandlerModule {
  readonly cases: readonly string[];
  readonly run: CaseRun;
}

/** Thrown by a handler that cannot run here (e.g. an optional input is absent); reported as SKIP with the message. */
export class SkipCase extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SkipCase';
  }
}

/** A case's sub-case list (`settings.subcases`), each with its index and parameters. */
export function subcases(entry: GoldenCase): Array<Readonly<Record<string, unknown>> & { index: number }> {
  const list = entry.settings.subcases;
  if (!Array.isArray(list)) throw new Error(`case ${entry.name}: settings.subcases is missing`);
  return list.map((s: unknown) => {
    const sub = s as Record<string, unknown>;
    if (typeof sub.index !== 'number') throw new Error(`case ${entry.name}: a sub-case has no index`);
    return sub as Record<string, unknown> & { index: number };
  });
}

/** A numeric setting, failing clearly when absent. */
export function numberSetting(settings: Readonly<Record<string, unknown>>, key: string, where: string): number {
  const v = settings[key];
  if (typeof v !== 'number') throw new Error(`${where}: setting "${key}" is missing or not a number`);
  return v;
}

/** Model folders named by the case's `model` field ("tiny-sd15 (unet, vae)", "a + b", "none"), resolved against the fixture folder. */
export function modelFolders(entry: GoldenCase, fixtureDir: string): string[] {
  if (entry.model.trim() === 'none') return [];
  return entry.model
    .replace(/\([^)]*\)/g, '')
    .split('+')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => path.resolve(fixtureDir, s));
}

export function float32Tensor(shape: readonly number[], data: Float32Array | readonly number[]): HostTensor {
  return { dtype: 'F32', shape, data: data instanceof Float32Array ? data : Float32Array.from(data) };
}

/** The arrays one after another, as one array (batched golden tensors are compared whole). */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function int64Tensor(shape: readonly number[], data: readonly number[]): HostTensor {
  return { dtype: 'I64', shape, data: BigInt64Array.from(data, (v) => BigInt(v)) };
}

/** [N, 2] float points as [row, col] pairs. */
export function pointsFrom(data: Float32Array): Array<readonly [number, number]> {
  const out: Array<readonly [number, number]> = [];
  for (let i = 0; i + 1 < data.length; i += 2) out.push([data[i]!, data[i + 1]!]);
  return out;
}

export function pointsTensor(points: ReadonlyArray<readonly [number, number]>): HostTensor {
  return float32Tensor([points.length, 2], points.flat());
}
