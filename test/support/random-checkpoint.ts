/**
 * Seeded random-weight safetensors checkpoints, for building models from configs other than the
 * fixtures' (other widths, head counts, layer counts) in tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '../../src/sidecar/models/checkpoint/safetensors';

/** How a tensor is filled: `weight` ~ N(0, 1/fan_in), `norm` ~ 1 + N(0, 0.1²), `bias` ~ N(0, 0.1²). */
export type Init = 'weight' | 'norm' | 'bias';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
}

/** mulberry32: a small deterministic PRNG, so a seed gives the same checkpoint on every machine. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function randomFloat32(count: number, seed: number, scale = 1): Float32Array {
  const normal = seededNormal(seed);
  return Float32Array.from({ length: count }, () => normal() * scale);
}

function fill(spec: TensorSpec, normal: () => number): Float32Array {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const fanIn = spec.shape.length > 1 ? count / spec.shape[0]! : spec.shape[0]!;
  switch (spec.init) {
    case 'weight':
      return Float32Array.from({ length: count }, () => normal() / Math.sqrt(fanIn));
    case 'norm':
      return Float32Array.from({ length: count }, () => 1 + 0.1 * normal());
    case 'bias':
      return Float32Array.from({ length: count }, () => 0.1 * normal());
  }
}

/** Writes the tensors as F32 to `file`. */
export async function writeRandomCheckpoint(file: string, specs: readonly TensorSpec[], seed: number): Promise<void> {
  const normal = seededNormal(seed);
  await writeSafetensors(
    file,
    specs.map((s) => ({ name: s.name, dtype: 'F32' as const, shape: s.shape, data: fill(s, normal) })),
  );
}

/** Runs `fn` with a fresh temporary folder that is removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipdrag-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
