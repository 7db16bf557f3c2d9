/**
 * Public types of the engine runtime: how a graph is compiled into an onnxruntime session, and what the
 * caller learns about the result. Shared by the main-thread client, the worker and the in-thread store.
 */
import os from 'node:os';
import type { TypedArray } from '../dtype';
import type { DevicePreference } from './providers';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/**
 * How checkpoint files referenced as external data reach onnxruntime:
 * - `shared`: the weights become graph inputs, read once into the engine's memory and fed to every session
 *   that uses them (runtime/shared-weights.ts): one copy per process however many graphs read a model, and
 *   no pre-packed copies. On a GPU provider the inputs are copied to the device at every run;
 * - `link`: a hard link in the session folder (zero copy; needs the same filesystem); an error if impossible;
 *   onnxruntime then holds the weights per session, pre-packed on the CPU;
 * - `memory`: the file's bytes are read and handed over in memory while the session is created;
 * - `auto`: `shared` on the CPU provider; elsewhere a hard link where possible, memory otherwise.
 */
export type ExternalWeightsMode = 'auto' | 'shared' | 'link' | 'memory';

export interface CompileOptions {
  /** A name for messages and logs, e.g. `unet drag step`. Default: `graph <hash prefix>`. */
  readonly label?: string;
  /** Execution provider preference; `auto` takes the best usable one. Default `auto`. */
  readonly device?: DevicePreference;
  /** onnxruntime graph optimisation level. Default `all`. */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;
  /** Threads inside one op. Default: the number of cores. */
  readonly intraOpNumThreads?: number;
  /** Threads across independent ops (sequential execution uses 1). Default 1. */
  readonly interOpNumThreads?: number;
  /** Default `auto`. */
  readonly externalWeights?: ExternalWeightsMode;
  /**
   * Keep onnxruntime's optimised model (up to level `extended`) in the session folder and load it next
   * time instead of optimising again. Default true: later compiles of a graph are 2-3× faster (see
   * docs/runtime.md).
   */
  readonly cacheOptimizedModel?: boolean;
  /**
   * onnxruntime's memory pattern: after the first run, every intermediate tensor of a run is placed in one
   * block planned for the whole run. It saves allocator calls, but the block is sized for the largest
   * tensors alive together, and a gradient graph keeps many forward values alive: for the UNet's drag-step
   * VJP it costs ≈370 MB of peak memory for no measurable speed (docs/benchmarks.md). Forced off on DirectML,
   * which does not support it. Default true.
   */
  readonly enableMemPattern?: boolean;
  /**
   * onnxruntime's CPU arena: freed CPU buffers are kept for reuse instead of returned to the system.
   * Default true.
   */
  readonly enableCpuMemArena?: boolean;
  /**
   * onnxruntime's weight pre-packing: at session creation the CPU kernels of MatMul/Gemm/Conv copy their constant
   * weights into a private layout of their own. Those copies are per session, so every graph over a model holds
   * one more copy of its linear weights; without pre-packing the kernels pack at run time and read the
   * memory-mapped checkpoint. Default true (onnxruntime's default).
   */
  readonly prepacking?: boolean;
  /**
   * Profile the first run to count the nodes each provider executed (onnxruntime may place nodes a GPU
   * provider cannot run on the CPU). The counts appear as `nodePlacement` after that run. Default false.
   */
  readonly reportNodePlacement?: boolean;
}

export type ResolvedCompileOptions = Required<Omit<CompileOptions, 'label'>>;

export function resolveCompileOptions(options: CompileOptions = {}): ResolvedCompileOptions {
  const threads = (value: number | undefined, fallback: number, what: string) => {
    const n = value ?? fallback;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
    return n;
  };
  return {
    device: options.device ?? 'auto',
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    intraOpNumThreads: threads(options.intraOpNumThreads, os.availableParallelism(), 'intraOpNumThreads'),
    interOpNumThreads: threads(options.interOpNumThreads, 1, 'interOpNumThreads'),
    externalWeights: options.externalWeights ?? 'auto',
    cacheOptimizedModel: options.cacheOptimizedModel ?? true,
    enableMemPattern: options.enableMemPattern ?? true,
    enableCpuMemArena: options.enableCpuMemArena ?? true,
    prepacking: options.prepacking ?? true,
    reportNodePlacement: options.reportNodePlacement ?? false,
  };
}

/** An input or output of a compiled graph, as onnxruntime sees it. */
export interface TensorInfo {
  readonly name: string;
  /** onnxruntime's element type name (`float32`, `int64`, ...). */
  readonly dtype: string;
  /** Dimensions; a string is a symbolic dimension (never in engine graphs, which are static). */
  readonly shape: readonly (number | string)[];
}

/** How one checkpoint file was handed to onnxruntime. */
export interface ExternalWeightsReport {
  readonly file: string;
  /** The name the model gives the file (empty for `shared`, where the model names no file). */
  readonly location: string;
  readonly mode: 'shared' | 'link' | 'memory';
  readonly bytes: number;
  /** Why a hard link was not used, when `mode` is `memory` under `auto`. */
  readonly linkProblem?: string;
}

/** Weight bytes of one checkpoint file the engine made resident (`SessionStore.residentWeights()`). */
export interface ResidentWeights {
  /** The checkpoint's real path. */
  readonly file: string;
  readonly mode: 'shared' | 'link' | 'memory';
  /** The file's size. */
  readonly bytes: number;
  /** Live sessions reading it. */
  readonly sessions: number;
  /**
   * `bytes` once for a memory-mapped (linked) file, once per session for copies handed over in memory; for
   * `shared`, the bytes of the tensors the engine holds (once, whatever the number of sessions).
   */
  readonly residentBytes: number;
}

/**
 * - `hit`: the session was created from the cached optimised model;
 * - `written`: it was created from the model and the optimised model was saved for next time;
 * - `off`: caching was not asked for (or optimisation is disabled);
 * - `failed`: onnxruntime could not save or reload an optimised model; the session was created without it.
 */
export type OptimizedModelCacheState = 'hit' | 'written' | 'off' | 'failed';

/** Number of graph nodes each execution provider ran, e.g. `{ CUDAExecutionProvider: 812, CPUExecutionProvider: 3 }`. */
export type NodePlacement = Readonly<Record<string, number>>;

/** What a compile produced. Returned by the store and the worker; the client's handle extends it. */
export interface CompiledGraphInfo {
  /** The serialised model's hash. */
  readonly hash: string;
  /** The compile's label (or `graph <hash prefix>`), used in every message about this graph. */
  readonly label: string;
  /** The execution provider the session was created on (no other provider is ever tried). */
  readonly provider: string;
  /** Why this provider, e.g. `requested explicitly` or `auto: cuda not usable, cpu is`. */
  readonly providerReason: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly externalWeights: readonly ExternalWeightsReport[];
  readonly optimizedModelCache: OptimizedModelCacheState;
  /** Milliseconds spent creating the session (0 when an existing session was reused). */
  readonly createMs: number;
  /** An identical compile was already live, and its session is shared. */
  readonly reused: boolean;
  /** The folder that holds the model file, its weight links and its cached optimised model. */
  readonly folder: string;
  /** Set after the first run when `reportNodePlacement` was asked for. */
  readonly nodePlacement?: NodePlacement;
  readonly options: ResolvedCompileOptions;
}

export type Feeds = Readonly<Record<string, TypedArray>>;
export type Outputs = Record<string, TypedArray>;
