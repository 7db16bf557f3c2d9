/**
 * Typed access to the fields of a model's JSON config, with the defaults the
 * reference libraries apply when a key is missing (or null) and error messages
 * that name the file and the key.
 */

export class ModelConfigError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'ModelConfigError';
  }
}

export type JsonObject = Readonly<Record<string, unknown>>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ConfigReader {
  constructor(readonly json: JsonObject, readonly file: string) {}

  static from(value: unknown, file: string): ConfigReader {
    if (!isJsonObject(value)) throw new ModelConfigError(file, 'expected a JSON object');
    return new ConfigReader(value, file);
  }

  fail(key: string, expected: string): never {
    throw new ModelConfigError(this.file, `"${key}" must be ${expected}, got ${JSON.stringify(this.json[key])}`);
  }

  /** A missing key and an explicit null both mean "use the default", as in the reference loaders. */
  private value(key: string): unknown {
    const v = this.json[key];
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.value(key) !== undefined;
  }

  int(key: string, fallback: number, min = 0): number {
    const v = this.value(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(key, `an integer >= ${min}`);
    return v as number;
  }

  positiveInt(key: string, fallback: number): number {
    return this.int(key, fallback, 1);
  }

  number(key: string, fallback: number): number {
    const v = this.value(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'a finite number');
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.value(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v as boolean;
  }

  string(key: string, fallback: string): string {
    const v = this.value(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v as string;
  }

  optionalString(key: string): string | null {
    const v = this.value(key);
    if (v === undefined) return null;
    if (typeof v !== 'string') this.fail(key, 'a string or null');
    return v as string;
  }

  optionalInt(key: string, min = 0): number | null {
    return this.has(key) ? this.int(key, 0, min) : null;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(key, fallback);
    if (!(allowed as readonly string[]).includes(v)) this.fail(key, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return v as T;
  }

  stringList(key: string, fallback: readonly string[]): string[] {
    const v = this.value(key);
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(key, 'a list of strings');
    return [...(v as string[])];
  }

  positiveIntList(key: string, fallback: readonly number[]): number[] {
    const v = this.value(key);
    if (v === undefined) return [...fallback];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x > 0)) {
      this.fail(key, 'a non-empty list of positive integers');
    }
    return [...(v as number[])];
  }

  /** An int applied to every block, or one int per block (the reference configs allow both). */
  positiveIntPerBlock(key: string, fallback: number, blocks: number): number[] {
    const v = this.value(key);
    if (v === undefined) return Array<number>(blocks).fill(fallback);
    if (typeof v === 'number') return Array<number>(blocks).fill(this.positiveInt(key, fallback));
    const list = this.positiveIntList(key, []);
    if (list.length !== blocks) this.fail(key, `an integer or a list of ${blocks} integers (one per down block)`);
    return list;
  }

  /** A bool applied to every block, or one bool per block. */
  boolPerBlock(key: string, fallback: boolean, blocks: number): boolean[] {
    const v = this.value(key);
    if (v === undefined) return Array<boolean>(blocks).fill(fallback);
    if (typeof v === 'boolean') return Array<boolean>(blocks).fill(v);
    if (!Array.isArray(v) || v.length !== blocks || !v.every((x) => typeof x === 'boolean')) {
      this.fail(key, `true/false or a list of ${blocks} booleans`);
    }
    return [...(v as boolean[])];
  }

  /** A nested object (e.g. text_config), or an empty one when missing. */
  object(key: string): JsonObject {
    const v = this.value(key);
    if (v === undefined) return {};
    if (!isJsonObject(v)) this.fail(key, 'an object');
    return v as JsonObject;
  }
}
