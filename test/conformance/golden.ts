/**
 * Reading a golden fixture set: `golden/index.json` (the cases, their
 * settings and the tolerance of every tensor) and the per-case safetensors
 * files, plus the relative-L2 comparison every tolerance refers to.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SafetensorsFile, type HostTensor } from '../../src/sidecar/models/checkpoint/safetensors';

export type { HostTensor } from '../../src/sidecar/models/checkpoint/safetensors';

export interface TensorSpec {
  readonly shape: readonly number[];
  readonly dtype: 'F32' | 'I64' | 'U8';
  readonly meaning?: string;
  /** Maximum relative L2 error; 0 = exact. Present on outputs. */
  readonly tolerance?: number;
}

/**
 * One entry standing for many tensors (e.g. `grad.<adapter>.lora_{A,B}.weight`), with
 * the shape in prose; its handler supplies the concatenated reference.
 */
export interface WildcardTensorSpec {
  readonly shape: string;
  readonly dtype: 'F32' | 'I64' | 'U8';
  readonly count?: number;
  readonly meaning?: string;
  readonly tolerance?: number;
}

/** An output described in prose (checked by its handler against another source, e.g. the details file). */
export type TensorEntry = TensorSpec | WildcardTensorSpec | string;

export interface GoldenCase {
  readonly name: string;
  readonly item?: string;
  /** Safetensors file, relative to the fixture folder. */
  readonly file: string;
  /** Extra details file (JSON), relative to the fixture folder. */
  readonly details?: string;
  /** Model folder(s) the case runs, relative to the fixture folder ("none" for pure ops). */
  readonly model: string;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, TensorEntry>>;
  readonly outputs: Readonly<Record<string, TensorEntry>>;
  readonly notes?: readonly string[];
}

export interface GoldenIndex {
  readonly cases: readonly GoldenCase[];
}

export async function readGoldenIndex(fixtureDir: string): Promise<GoldenIndex> {
  const file = path.join(fixtureDir, 'golden', 'index.json');
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the golden index ${file}: ${(err as Error).message}`);
  }
  const cases = (json as { cases?: unknown }).cases;
  if (!Array.isArray(cases)) throw new Error(`${file}: expected a "cases" list`);
  for (const c of cases as GoldenCase[]) {
    if (typeof c.name !== 'string' || typeof c.file !== 'string' || typeof c.outputs !== 'object') {
      throw new Error(`${file}: malformed case ${JSON.stringify(c).slice(0, 120)}`);
    }
  }
  return json as GoldenIndex;
}

export function isTensorSpec(entry: TensorEntry | undefined): entry is TensorSpec {
  return typeof entry === 'object' && entry !== null && Array.isArray(entry.shape);
}

/** The tolerance an output is compared with: its numeric tolerance, else 0 (prose outputs are exact data). */
export function toleranceOf(entry: TensorEntry | undefined): number {
  return typeof entry === 'object' && entry !== null && typeof entry.tolerance === 'number' ? entry.tolerance : 0;
}

/** The tensors of one case file, read by name. */
export class GoldenTensors {
  private constructor(private readonly file: SafetensorsFile) {}

  static async open(filePath: string): Promise<GoldenTensors> {
    return new GoldenTensors(await SafetensorsFile.open(filePath));
  }

  get path(): string {
    return this.file.path;
  }

  has(name: string): boolean {
    return this.file.has(name);
  }

  names(): string[] {
    return this.file.names();
  }

  read(name: string): Promise<HostTensor> {
    return this.file.read(name);
  }

  shape(name: string): readonly number[] {
    return this.file.info(name).shape;
  }

  float32(name: string): Promise<Float32Array> {
    return this.file.readFloat32(name);
  }

  int64(name: string): Promise<BigInt64Array> {
    return this.file.readInt64(name);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

export interface Comparison {
  /** ||mine − ref|| / ||ref|| (the absolute norm when ref is all zeros); NaN on a mismatch. */
  readonly error: number;
  /** Why the tensors could not be compared (shape mismatch, NaN...). */
  readonly problem?: string;
}

function asNumbers(t: HostTensor): ArrayLike<number> {
  return t.dtype === 'I64' ? Array.from(t.data, Number) : t.data;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Relative L2 error, accumulated in float64. */
export function compareTensors(mine: HostTensor, ref: HostTensor): Comparison {
  if (!sameShape(mine.shape, ref.shape)) {
    return { error: NaN, problem: `shape [${mine.shape.join(', ')}] differs from the reference [${ref.shape.join(', ')}]` };
  }
  const a = asNumbers(mine);
  const b = asNumbers(ref);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i]! - b[i]!;
    diff += d * d;
    norm += b[i]! * b[i]!;
  }
  if (!Number.isFinite(diff)) return { error: NaN, problem: 'output has NaN or infinite values' };
  return { error: norm > 0 ? Math.sqrt(diff / norm) : Math.sqrt(diff) };
}
