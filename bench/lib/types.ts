/**
 * The contract between the bench runner (bench/run.ts) and a benchmark module (bench/<name>.ts).
 *
 * A module exports `benchmark`. The runner asks it for its configurations (in the parent process), then
 * measures each configuration in a fresh child process, so that the peak RSS of one configuration (which
 * includes onnxruntime's native allocations) is not inflated by another's.
 */

/** Command-line flags after the benchmark name, e.g. `--size 64 --fast` → `{ size: '64', fast: true }`. */
export type Flags = Readonly<Record<string, string | boolean>>;

/** One configuration: a unique name for the table, and JSON-serialisable parameters for `measure`. */
export interface Configuration {
  readonly name: string;
  readonly [param: string]: unknown;
}

/**
 * Measured values of one configuration. Name them with their unit as a suffix (`createMs`, `runMs`,
 * `rssMb`, `itemsPerS`) so tables and comparisons stay readable; strings and booleans are reported as is.
 */
export type Metrics = Record<string, number | string | boolean>;

export interface MeasureContext {
  /** Timed repetitions per measurement (`--repeat`, default 5). */
  readonly repeat: number;
  /** Untimed repetitions before timing (`--warmup`, default 1). */
  readonly warmup: number;
  readonly flags: Flags;
}

export interface Benchmark<C extends Configuration = Configuration> {
  readonly description: string;
  /** The configurations to measure, in table order. Runs in the parent process. */
  configurations(flags: Flags): C[] | Promise<C[]>;
  /** Measures one configuration. Runs in a fresh child process; may set up files it needs. */
  measure(configuration: C, context: MeasureContext): Promise<Metrics>;
  /**
   * Rows derived from the measured configurations (ratios of one against another), printed after the table
   * and saved with the run. Runs in the parent process.
   */
  compare?(results: readonly MeasuredConfiguration[]): ComparisonRow[];
}

/** What `compare` sees of each measured configuration. */
export interface MeasuredConfiguration {
  readonly configuration: string;
  readonly metrics: Metrics;
}

export interface ComparisonRow {
  readonly name: string;
  readonly metrics: Metrics;
}
