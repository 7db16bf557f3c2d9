/**
 * Engine runtime costs: session creation (optimised cold, cached optimised model, unoptimised) for a
 * graph of a few thousand nodes; the overhead of a run through the worker against a run in-thread for a
 * small graph; and the memory cost of hard-linked against in-memory external weights.
 *
 * The `*-interleaved` configurations time their variants in turn in one process, so that load from
 * other processes hits them alike: on a shared machine their ratios are the numbers to compare (their
 * peak RSS holds several sessions and means little).
 *
 * Flags: --blocks N (4 nodes per block in the elementwise creation graph, default 1000), --sd-depth N
 * (resnet + transformer pairs, forward + VJP, in the SD-shaped creation graph, default 8), --runs N (timed runs per
 * run configuration, default 200), --weights-mb N (checkpoint size for the weights configurations,
 * default 256).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vjp } from '../src/sidecar/engine/autodiff';
import { Graph } from '../src/sidecar/engine/graph';
import { add, mul, reduceSum, reshape } from '../src/sidecar/engine/ops';
import { onnx } from '../src/sidecar/engine/onnx/onnx-proto';
import { serializeGraph, type SerializedModel } from '../src/sidecar/engine/onnx/serialize';
import { Engine } from '../src/sidecar/engine/runtime/engine';
import { SessionStore } from '../src/sidecar/engine/runtime/sessions';
import type { CompileOptions } from '../src/sidecar/engine/runtime/types';
import { BLOCK_STACK_SIZES, buildBlockStack } from './engine-blocks';
import { median, residentSplitMb, rssMb, round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags, MeasureContext, Metrics } from './lib/types';

type Kind = 'create' | 'create-interleaved' | 'run' | 'run-interleaved' | 'weights';

interface RuntimeConfiguration extends Configuration {
  readonly kind: Kind;
  readonly blocks?: number;
  /** Build the SD-shaped resnet + transformer stack (forward + VJP) of this depth instead of the elementwise stack. */
  readonly sdDepth?: number;
  readonly runs?: number;
  readonly weightsMb?: number;
  readonly options: CompileOptions;
  readonly via?: 'in-thread' | 'worker' | 'worker-transfer';
}

const WORK_DIR = path.join(os.tmpdir(), 'clipdrag-bench', 'runtime');
const CACHE_DIR = path.join(WORK_DIR, 'sessions');
const WIDTH = 256;
const TENSOR_FLOATS = 2 ** 20; // 4 MB per weight in the weights configurations

function intFlag(flags: Flags, name: string, fallback: number): number {
  const value = flags[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} needs a positive integer, got ${value}`);
  return n;
}

/** Writes `file` of `bytes` (deterministic small floats) in chunks, unless it already has that size. */
function ensureCheckpoint(file: string, bytes: number): void {
  if (fs.statSync(file, { throwIfNoEntry: false })?.size === bytes) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const chunk = new Float32Array(TENSOR_FLOATS).map((_, i) => ((i % 97) - 48) * 1e-4);
  const fd = fs.openSync(`${file}.tmp`, 'w');
  for (let written = 0; written < bytes; written += chunk.byteLength) {
    fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, Math.min(chunk.byteLength, bytes - written)));
  }
  fs.closeSync(fd);
  fs.renameSync(`${file}.tmp`, file);
}

/** `blocks` × (Reshape, Mul by a weight, Add a weight, Reshape): a few thousand nodes, weights external. */
function stackModel(blocks: number): SerializedModel {
  const file = path.join(WORK_DIR, `stack-${blocks}.bin`);
  ensureCheckpoint(file, blocks * 2 * WIDTH * 4);
  const g = new Graph(`stack-${blocks}`);
  let x = g.input('x', 'float32', [4, WIDTH]);
  for (let i = 0; i < blocks; i++) {
    const w = g.weight(`w${i}`, 'float32', [WIDTH], { kind: 'external', file, offset: 2 * i * WIDTH * 4, length: WIDTH * 4 });
    const b = g.weight(`b${i}`, 'float32', [WIDTH], { kind: 'external', file, offset: (2 * i + 1) * WIDTH * 4, length: WIDTH * 4 });
    x = g.scope(i, () => reshape(add(mul(reshape(x, [2, 2, WIDTH]), w), b), [4, WIDTH]));
  }
  g.output('y', reduceSum(x, [1], false));
  return serializeGraph(g);
}

/**
 * `depth` pairs of SD-1.5 resnet + transformer blocks at 160 channels, 16×16, with the VJP w.r.t. the
 * sample: convolutions, group norms, attention and their gradients (weights inline).
 */
function sdBlocksModel(depth: number): SerializedModel {
  const size = BLOCK_STACK_SIZES.find((s) => s.name === 'c160-16x16')!;
  const stack = buildBlockStack(size, depth);
  const g = stack.graph;
  g.output('out', stack.output);
  const cotangent = g.input('cotangent', 'float32', stack.output.shape);
  const [dSample] = vjp(g, [{ value: stack.output, cotangent }], [stack.sample]);
  g.output('d_sample', dSample!);
  return serializeGraph(g);
}

/** A latent-sized elementwise graph: the run overhead, not the compute, dominates. */
function smallModel(): SerializedModel {
  const g = new Graph('small');
  const x = g.input('x', 'float32', [1, 4, 64, 64]);
  g.output('y', add(mul(x, 0.18215), 1));
  return serializeGraph(g);
}

/** A chain of additions (or multiplications) that reads every 4 MB tensor of a `weightsMb` checkpoint. */
function weightsModel(weightsMb: number, combine: typeof add = add): SerializedModel {
  const file = path.join(WORK_DIR, `weights-${weightsMb}mb.bin`);
  const tensors = Math.floor((weightsMb * 2 ** 20) / (TENSOR_FLOATS * 4));
  const g = new Graph(`weights-${weightsMb}mb-${combine.name}`);
  let x = g.input('x', 'float32', [TENSOR_FLOATS]);
  for (let i = 0; i < tensors; i++) {
    x = combine(x, g.weight(`w${i}`, 'float32', [TENSOR_FLOATS], { kind: 'external', file, offset: i * TENSOR_FLOATS * 4, length: TENSOR_FLOATS * 4 }));
  }
  g.output('y', reduceSum(x, [0], false));
  return serializeGraph(g);
}

function onnxNodeCount(model: SerializedModel): number {
  return onnx.ModelProto.decode(model.bytes).graph?.node?.length ?? 0;
}

const single = { device: 'cpu', intraOpNumThreads: os.availableParallelism() } as const;

async function measureCreate(config: RuntimeConfiguration, context: MeasureContext): Promise<Metrics> {
  const model = stackModel(config.blocks!);
  const store = new SessionStore(CACHE_DIR);
  let handle = 0;
  let last: Awaited<ReturnType<SessionStore['compile']>> | undefined;
  const compileOnce = async () => {
    last = await store.compile(++handle, model, config.options);
    await store.release(handle);
  };
  // One untimed compile in every configuration: it pays onnxruntime's one-time start-up in this process
  // and, with caching on, writes the optimised model that the timed compiles then load.
  await compileOnce();
  const timing = await timeRepeated(compileOnce, context);
  return {
    createMs: round(timing.medianMs, 1),
    minMs: round(timing.minMs, 1),
    maxMs: round(timing.maxMs, 1),
    nodes: onnxNodeCount(model),
    cache: last!.optimizedModelCache,
  };
}

async function measureRun(config: RuntimeConfiguration, context: MeasureContext): Promise<Metrics> {
  const model = smallModel();
  const x = () => new Float32Array(4 * 64 * 64).fill(0.5);
  const timed = { repeat: config.runs!, warmup: Math.max(context.warmup, 10) };
  if (config.via === 'in-thread') {
    const store = new SessionStore(CACHE_DIR);
    await store.compile(1, model, config.options);
    const timing = await timeRepeated(() => store.run(1, { x: x() }), timed);
    await store.releaseAll();
    return { runMs: round(timing.medianMs, 3), minMs: round(timing.minMs, 3), runs: config.runs! };
  }
  const engine = new Engine({ cacheDir: CACHE_DIR });
  try {
    const compiled = await engine.compile(model, config.options);
    const transferInputs = config.via === 'worker-transfer';
    const timing = await timeRepeated(() => engine.run(compiled, { x: x() }, undefined, { transferInputs }), timed);
    return { runMs: round(timing.medianMs, 3), minMs: round(timing.minMs, 3), runs: config.runs! };
  } finally {
    await engine.close();
  }
}

/**
 * The variants timed in turn, repetition by repetition, in one process: load from other processes on a
 * shared machine then hits them alike, and the ratios stay meaningful even when the times do not.
 */
async function timeInterleaved(variants: Record<string, () => Promise<unknown>>, repeat: number): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (let i = 0; i < repeat; i++) {
    for (const [name, fn] of Object.entries(variants)) {
      const start = performance.now();
      await fn();
      samples[name]!.push(performance.now() - start);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

async function measureCreateInterleaved(config: RuntimeConfiguration, context: MeasureContext): Promise<Metrics> {
  const model = config.sdDepth ? sdBlocksModel(config.sdDepth) : stackModel(config.blocks!);
  const store = new SessionStore(CACHE_DIR);
  let handle = 0;
  const compile = (options: CompileOptions) => async () => {
    await store.compile(++handle, model, { ...config.options, ...options });
    await store.release(handle);
  };
  const folder = path.join(CACHE_DIR, model.hash);
  // What a graph gets when level all would copy too many weights (a full UNet on the CPU provider).
  const extendedStore = new SessionStore(path.join(CACHE_DIR, 'extended-only'), { maxCopiedWeightBytes: 0 });
  const variants = {
    unoptimized: compile({ graphOptimizationLevel: 'disabled' }),
    cold: compile({ cacheOptimizedModel: false }),
    // The first compile with caching on: optimise, save, load the saved model.
    miss: async () => {
      for (const name of fs.readdirSync(folder)) if (name.startsWith('optimized-')) fs.rmSync(path.join(folder, name));
      await compile({ cacheOptimizedModel: true })();
    },
    cached: compile({ cacheOptimizedModel: true }),
    cachedExtended: async () => {
      await extendedStore.compile(++handle, model, config.options);
      await extendedStore.release(handle);
    },
  };
  for (const fn of Object.values(variants)) await fn(); // start-up, and the cached optimised model
  const ms = await timeInterleaved(variants, context.repeat);
  return {
    unoptimizedMs: round(ms.unoptimized!, 1),
    coldMs: round(ms.cold!, 1),
    missMs: round(ms.miss!, 1),
    cachedMs: round(ms.cached!, 1),
    cachedExtendedMs: round(ms.cachedExtended!, 1),
    coldOverCached: round(ms.cold! / ms.cached!, 2),
    nodes: onnxNodeCount(model),
  };
}

async function measureRunInterleaved(config: RuntimeConfiguration, context: MeasureContext): Promise<Metrics> {
  const model = smallModel();
  const x = () => new Float32Array(4 * 64 * 64).fill(0.5);
  const store = new SessionStore(CACHE_DIR);
  await store.compile(1, model, config.options);
  const engine = new Engine({ cacheDir: CACHE_DIR });
  try {
    const compiled = await engine.compile(model, config.options);
    const variants = {
      inThread: () => store.run(1, { x: x() }),
      worker: () => engine.run(compiled, { x: x() }),
      workerTransfer: () => engine.run(compiled, { x: x() }, undefined, { transferInputs: true }),
    };
    for (let i = 0; i < Math.max(context.warmup, 10); i++) for (const fn of Object.values(variants)) await fn();
    const ms = await timeInterleaved(variants, config.runs!);
    return {
      inThreadMs: round(ms.inThread!, 3),
      workerMs: round(ms.worker!, 3),
      workerTransferMs: round(ms.workerTransfer!, 3),
      roundTripMs: round(ms.worker! - ms.inThread!, 3),
      runs: config.runs!,
    };
  } finally {
    await engine.close();
    await store.releaseAll();
  }
}

/**
 * Memory of one checkpoint handed over by hard link or in memory: while a session is created, once it
 * has run (every weight read), and with a second graph on the same checkpoint. On Linux, resident
 * memory is split into anonymous (private copies) and file-backed pages (the page cache of mapped
 * files, shared, but counted once per mapping in RSS).
 */
async function measureWeights(config: RuntimeConfiguration): Promise<Metrics> {
  // Load onnxruntime and its thread pools first, so the baseline holds everything but the weights.
  const store = new SessionStore(CACHE_DIR);
  await store.compile(1, smallModel(), config.options);
  await store.releaseAll();
  // Garbage is collected after a turn of the event loop: a buffer handed to onnxruntime is still
  // referenced until the compile's promise chain has unwound.
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      (globalThis as { gc?: () => void }).gc?.();
    }
  };
  const split = (prefix: string): Metrics => {
    const memory = residentSplitMb();
    return memory ? { [`${prefix}AnonMb`]: round(memory.anonMb, 0), [`${prefix}FileMb`]: round(memory.fileMb, 0) } : { [`${prefix}RssMb`]: round(rssMb(), 0) };
  };
  const x = new Float32Array(TENSOR_FLOATS);
  await settle();
  const before = rssMb();
  const started = performance.now();
  const info = await store.compile(2, weightsModel(config.weightsMb!), config.options);
  const createMs = performance.now() - started;
  const created = rssMb();
  await store.run(2, { x });
  await settle();
  const oneGraph = split('oneGraph');
  await store.compile(3, weightsModel(config.weightsMb!, mul), config.options);
  await store.run(3, { x });
  await settle();
  const twoGraphs = split('twoGraphs');
  await store.releaseAll();
  await settle();
  return {
    mode: info.externalWeights[0]!.mode,
    weightsMb: round(info.externalWeights.reduce((sum, w) => sum + w.bytes, 0) / 2 ** 20, 0),
    createMs: round(createMs, 0),
    rssBeforeMb: round(before, 0),
    rssCreatedMb: round(created, 0),
    ...oneGraph,
    ...twoGraphs,
    rssReleasedMb: round(rssMb(), 0),
  };
}

export const benchmark: Benchmark<RuntimeConfiguration> = {
  description: 'engine runtime: session creation cold vs cached, worker round trip vs in-thread, hard-linked vs in-memory weights',
  configurations(flags) {
    const blocks = intFlag(flags, 'blocks', 1000);
    const runs = intFlag(flags, 'runs', 200);
    const weightsMb = intFlag(flags, 'weights-mb', 256);
    const sdDepth = intFlag(flags, 'sd-depth', 8);
    // Written here, in the parent, so that no child's peak RSS includes writing it.
    ensureCheckpoint(path.join(WORK_DIR, `weights-${weightsMb}mb.bin`), Math.floor((weightsMb * 2 ** 20) / (TENSOR_FLOATS * 4)) * TENSOR_FLOATS * 4);
    return [
      { name: 'create-unoptimized', kind: 'create', blocks, options: { ...single, graphOptimizationLevel: 'disabled' } },
      { name: 'create-cold', kind: 'create', blocks, options: { ...single, cacheOptimizedModel: false } },
      { name: 'create-cached', kind: 'create', blocks, options: { ...single, cacheOptimizedModel: true } },
      { name: 'create-interleaved', kind: 'create-interleaved', blocks, options: single },
      { name: 'create-interleaved-sd', kind: 'create-interleaved', sdDepth, options: single },
      { name: 'run-in-thread', kind: 'run', runs, via: 'in-thread', options: single },
      { name: 'run-worker', kind: 'run', runs, via: 'worker', options: single },
      { name: 'run-worker-transfer', kind: 'run', runs, via: 'worker-transfer', options: single },
      { name: 'run-interleaved', kind: 'run-interleaved', runs, options: single },
      { name: 'weights-link', kind: 'weights', weightsMb, options: { ...single, externalWeights: 'link', cacheOptimizedModel: false } },
      { name: 'weights-memory', kind: 'weights', weightsMb, options: { ...single, externalWeights: 'memory', cacheOptimizedModel: false } },
    ];
  },
  async measure(config, context) {
    switch (config.kind) {
      case 'create':
        return measureCreate(config, context);
      case 'create-interleaved':
        return measureCreateInterleaved(config, context);
      case 'run':
        return measureRun(config, context);
      case 'run-interleaved':
        return measureRunInterleaved(config, context);
      case 'weights':
        return measureWeights(config);
    }
  },
};
