/**
 * UNet benchmark: the SD-1.5 UNet forward (eps) and forward + VJP w.r.t. the latent — cotangents on eps
 * and on DragDiffusion's feature feat_3_up2, as in the drag step — at an N×N latent, on a diffusers UNet
 * folder (e.g. a random-weight model from `npm run make-bench-model -- quarter|full`).
 *
 *     npm run bench -- unet --model DIR --latent N [--batch B] [--modes forward,forward+vjp,...] [--cpu-arena off] [--reference FILE] [--json]
 *
 * Modes: `forward`; `forward+vjp` — the drag step's backward as the pipeline builds and runs it by default
 * (`DEFAULT_GRADIENT_MEMORY`: self-attention probabilities recomputed, no onnxruntime memory pattern);
 * `forward+vjp:keep-all` (every activation kept, memory pattern on: onnxruntime's defaults);
 * `forward+vjp:keep-all:no-mem-pattern`; `forward+vjp:remat-attention:mem-pattern`;
 * `forward+vjp:remat-blocks` (every resnet and transformer recomputed: `rematerialize: true`).
 * Default: forward, forward+vjp, forward+vjp:keep-all. Configurations:
 *
 * - one per mode, alone in its process: run time (median and min of --repeat), session creation time,
 *   RSS after creation; the runner adds the process's peak RSS;
 * - `ratio`: the modes interleaved run by run in one process, so load from other processes on a shared
 *   machine hits all alike — its ratios are the ones to compare (its peak RSS holds every session);
 * - `kernels`: per mode, the sum over graph nodes of each node's fastest kernel time across the runs
 *   (onnxruntime profiling): the run time the machine gives when nothing else competes for it.
 *
 * `--cpu-arena off` runs every configuration without onnxruntime's CPU arena.
 *
 * `--reference FILE` compares our forward with another ONNX export of the same UNet (e.g. PyTorch's, from
 * bench/pytorch-reference/) that takes `sample`, `timestep` (scalar) and `encoder_hidden_states` and
 * returns one output, ε. It measures two configurations instead of the others, with sessions of the same options:
 *
 * - `vs reference`: the two forwards interleaved run by run on the same inputs: both medians, our time over
 *   the reference's, and the largest difference between the two ε;
 * - `reference kernels`: the kernel floor of each (profiled runs interleaved too) and its split by operator
 *   type (`<side>.<op>Ms`).
 *
 * `--profile-dir DIR` keeps the onnxruntime profiles of the kernels configurations there (per-node analysis).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { vjp, type RecomputePolicy } from '../src/sidecar/engine/autodiff';
import type { Graph } from '../src/sidecar/engine/graph';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { prepareModelFolder } from '../src/sidecar/engine/runtime/model-folder';
import { SessionStore } from '../src/sidecar/engine/runtime/sessions';
import type { CompileOptions } from '../src/sidecar/engine/runtime/types';
import { loadUNet, type LoadedUNet } from '../src/sidecar/models/unet/load';
import { unetAttentionSegment } from '../src/sidecar/models/unet/remat';
import { buildUNetGraph } from '../src/sidecar/models/unet/unet';
import { BLOCK_GRADIENT_MEMORY, DEFAULT_GRADIENT_MEMORY, unetRecomputeSegment } from '../src/sidecar/pipeline/runtime/gradient-memory';
import { median, rssMb, round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags, MeasureContext, Metrics } from './lib/types';

export type UNetBenchMode =
  | 'forward'
  | 'forward+vjp'
  | 'forward+vjp:keep-all'
  | 'forward+vjp:keep-all:no-mem-pattern'
  | 'forward+vjp:remat-attention:mem-pattern'
  | 'forward+vjp:remat-blocks';
export const UNET_BENCH_MODES: readonly UNetBenchMode[] = [
  'forward',
  'forward+vjp',
  'forward+vjp:keep-all',
  'forward+vjp:keep-all:no-mem-pattern',
  'forward+vjp:remat-attention:mem-pattern',
  'forward+vjp:remat-blocks',
];
const DEFAULT_MODES: readonly UNetBenchMode[] = ['forward', 'forward+vjp', 'forward+vjp:keep-all'];

/**
 * What each VJP mode recomputes and whether its session uses onnxruntime's memory pattern. `forward+vjp`
 * is the pipeline's default for the drag step (`DEFAULT_GRADIENT_MEMORY`), `forward+vjp:remat-blocks`
 * its `rematerialize: true`; the others take one of the two measures away.
 */
const VJP_MEMORY: Record<Exclude<UNetBenchMode, 'forward'>, { recompute: RecomputePolicy | null; memPattern: boolean }> = {
  'forward+vjp': { recompute: unetRecomputeSegment(DEFAULT_GRADIENT_MEMORY), memPattern: DEFAULT_GRADIENT_MEMORY.memPattern },
  'forward+vjp:keep-all': { recompute: null, memPattern: true },
  'forward+vjp:keep-all:no-mem-pattern': { recompute: null, memPattern: false },
  'forward+vjp:remat-attention:mem-pattern': { recompute: unetAttentionSegment, memPattern: true },
  'forward+vjp:remat-blocks': { recompute: unetRecomputeSegment(BLOCK_GRADIENT_MEMORY), memPattern: BLOCK_GRADIENT_MEMORY.memPattern },
};

const memPatternOf = (mode: UNetBenchMode): boolean => (mode === 'forward' ? true : VJP_MEMORY[mode].memPattern);

interface UNetConfiguration extends Configuration {
  readonly model: string;
  readonly latent: number;
  readonly batch: number;
  /** One mode alone, or several for `ratio` / `kernels`. */
  readonly modes: readonly UNetBenchMode[];
  readonly kind: 'alone' | 'ratio' | 'kernels' | 'reference' | 'reference-kernels';
  /** The ONNX file our forward is compared with (`--reference`), relative to the repository. */
  readonly reference?: string;
  /** Where the kernels configurations keep their profiles (`--profile-dir`), relative to the repository. */
  readonly profileDir?: string;
  /** onnxruntime's CPU arena (`--cpu-arena off` measures the configurations without it). */
  readonly cpuArena: boolean;
}

/** The benchmarked graph: the UNet forward, plus the drag step's VJP w.r.t. the latent for the vjp modes. */
export function buildUNetBenchGraph(unet: LoadedUNet, mode: UNetBenchMode, latent: number, batch = 1): Graph {
  const { graph, inputs, forward } = buildUNetGraph(unet, { batch, height: latent, width: latent, outputs: ['eps'] });
  if (mode === 'forward') return graph;
  const feature = forward.features.feat_3_up2!;
  const seeds = [
    { value: forward.eps, cotangent: graph.input('cotangent_eps', 'float32', forward.eps.shape) },
    { value: feature, cotangent: graph.input('cotangent_feat_3_up2', 'float32', feature.shape) },
  ];
  const { recompute } = VJP_MEMORY[mode];
  const [dSample] = vjp(graph, seeds, [inputs.sample], recompute ? { recompute } : {});
  graph.output('feat_3_up2', feature);
  graph.output('grad_sample', dSample!);
  return graph;
}

/** Seeded inputs for every graph input (timestep 500). */
function feedsFor(graph: Graph): Record<string, Float32Array> {
  let seed = 11;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const feeds: Record<string, Float32Array> = {};
  for (const input of graph.inputs) feeds[input.name] = input.name === 'timestep' ? Float32Array.of(500) : Float32Array.from({ length: input.size }, random);
  return feeds;
}

const SESSIONS_DIR = path.join(os.tmpdir(), 'clipdrag-bench-sessions');
const REPO = path.resolve(__dirname, '..');

function sessionOptions(config: UNetConfiguration, mode: UNetBenchMode): CompileOptions {
  return { label: `unet ${mode}`, device: 'cpu', cacheOptimizedModel: false, enableMemPattern: memPatternOf(mode), enableCpuMemArena: config.cpuArena };
}

/** A CPU session of one mode through the engine runtime (hard-linked weights, provider reported). */
async function compile(store: SessionStore, handle: number, unet: LoadedUNet, config: UNetConfiguration, mode: UNetBenchMode) {
  const graph = buildUNetBenchGraph(unet, mode, config.latent, config.batch);
  const info = await store.compile(handle, serializeGraph(graph), sessionOptions(config, mode));
  const feeds = feedsFor(graph);
  return { info, run: () => store.run(handle, feeds), graphNodes: graph.nodes.length };
}

/** The session options of every directly created session: those the engine runtime uses on the CPU. */
const DIRECT_OPTIONS: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', intraOpNumThreads: os.availableParallelism(), executionMode: 'sequential' };

/** Our graph's seeded inputs as onnxruntime tensors (another model of the same inputs can take them too). */
function tensorFeeds(graph: Graph): Record<string, ort.Tensor> {
  return Object.fromEntries(
    Object.entries(feedsFor(graph)).map(([name, data]) => [name, new ort.Tensor('float32', data, [...graph.inputs.find((v) => v.name === name)!.shape])]),
  );
}

/** A CPU session created directly with onnxruntime (for options the runtime does not expose). */
async function directSession(graph: Graph, options: ort.InferenceSession.SessionOptions) {
  const prepared = prepareModelFolder(SESSIONS_DIR, serializeGraph(graph), 'auto');
  const started = performance.now();
  const session = await ort.InferenceSession.create(prepared.modelPath, {
    ...DIRECT_OPTIONS,
    externalData: prepared.inMemory.map(({ path: p, data }) => ({ path: p, data })),
    ...options,
  });
  const createMs = performance.now() - started;
  const feeds = tensorFeeds(graph);
  return { session, createMs, run: () => session.run(feeds) };
}

/** A CPU session of the reference ONNX file, fed our forward graph's inputs (so both compute on the same). */
async function referenceSession(file: string, forward: Graph, options: ort.InferenceSession.SessionOptions) {
  const session = await ort.InferenceSession.create(file, { ...DIRECT_OPTIONS, ...options });
  const ours = tensorFeeds(forward);
  const missing = session.inputNames.filter((name) => !(name in ours));
  if (missing.length > 0) throw new Error(`--reference ${file}: inputs ${missing.join(', ')} are not inputs of our UNet graph (${Object.keys(ours).join(', ')})`);
  if (session.outputNames.length !== 1) throw new Error(`--reference ${file}: expected one output (eps), found ${session.outputNames.join(', ')}`);
  const feeds = Object.fromEntries(session.inputNames.map((name) => [name, ours[name]!]));
  return { session, run: () => session.run(feeds) };
}

async function measureAlone(unet: LoadedUNet, config: UNetConfiguration, context: MeasureContext): Promise<Metrics> {
  const mode = config.modes[0]!;
  const graph = buildUNetBenchGraph(unet, mode, config.latent, config.batch);
  const store = new SessionStore(SESSIONS_DIR);
  const info = await store.compile(1, serializeGraph(graph), sessionOptions(config, mode));
  const feeds = feedsFor(graph);
  const run = async () => (await store.run(1, feeds)).outputs;
  const release = () => store.releaseAll();
  const { createMs, provider } = info;
  const afterCreate = rssMb();
  for (const [name, values] of Object.entries(await run())) {
    if (!(values as Float32Array).every(Number.isFinite)) throw new Error(`unet ${mode}: output ${name} is not finite`);
  }
  const timing = await timeRepeated(run, context);
  await release();
  return {
    runMs: round(timing.medianMs, 1),
    minMs: round(timing.minMs, 1),
    createMs: round(createMs, 0),
    rssAfterCreateMb: round(afterCreate, 0),
    provider,
    graphNodes: graph.nodes.length,
  };
}

async function measureRatio(unet: LoadedUNet, config: UNetConfiguration, context: MeasureContext): Promise<Metrics> {
  const store = new SessionStore(SESSIONS_DIR);
  const compiled = [];
  for (const [i, mode] of config.modes.entries()) compiled.push(await compile(store, i + 1, unet, config, mode));
  const samples = config.modes.map(() => [] as number[]);
  for (let i = 0; i < context.warmup + context.repeat; i++) {
    for (const [k, { run }] of compiled.entries()) {
      const start = performance.now();
      await run();
      if (i >= context.warmup) samples[k]!.push(performance.now() - start);
    }
  }
  await store.releaseAll();
  const metrics: Metrics = {};
  const forward = median(samples[0]!);
  config.modes.forEach((mode, k) => {
    metrics[`${mode}Ms`] = round(median(samples[k]!), 1);
    if (k > 0) metrics[`${mode}Ratio`] = round(median(samples[k]!) / forward, 2);
  });
  metrics.loadAvg = round(os.loadavg()[0]!, 1);
  return metrics;
}

interface KernelProfile {
  /** Σ over nodes of the node's fastest kernel time across the profiled runs (the first run is warm-up). */
  readonly floorMs: number;
  /** The same sum per operator type (after onnxruntime's fusions: Conv, FusedConv, Gelu, ...). */
  readonly byOpMs: ReadonlyMap<string, number>;
}

function kernelProfile(profileFile: string): KernelProfile {
  const events = JSON.parse(fs.readFileSync(profileFile, 'utf8')) as { cat?: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[];
  const runs = events.filter((e) => e.name === 'model_run');
  const after = runs[1]?.ts ?? 0;
  const fastest = new Map<string, { us: number; op: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < after) continue;
    const seen = fastest.get(e.name);
    if (!seen || e.dur < seen.us) fastest.set(e.name, { us: e.dur, op: e.args?.op_name ?? '?' });
  }
  const byOpMs = new Map<string, number>();
  let floorMs = 0;
  for (const { us, op } of fastest.values()) {
    byOpMs.set(op, (byOpMs.get(op) ?? 0) + us / 1000);
    floorMs += us / 1000;
  }
  return { floorMs, byOpMs };
}

type SessionFactory = (options: ort.InferenceSession.SessionOptions) => Promise<{ session: ort.InferenceSession; run: () => Promise<unknown> }>;

/**
 * Profiles `1 + max(repeat, 3)` runs of each session that `factories` create (given the profile options),
 * interleaved run by run so that load from other processes reaches all of them alike, and reads the
 * profiles; keeps each file in `keepIn` when given (as `<name>.json`), deletes it otherwise.
 */
async function profileRuns(factories: Readonly<Record<string, SessionFactory>>, context: MeasureContext, keepIn?: string): Promise<Record<string, KernelProfile>> {
  fs.mkdirSync(SESSIONS_DIR, { recursive: true });
  const sides = [];
  for (const [name, create] of Object.entries(factories)) {
    const prefix = `profile-${process.pid}-${name.replace(/[^a-z0-9]+/gi, '-')}`;
    sides.push({ name, prefix, ...(await create({ enableProfiling: true, profileFilePrefix: path.join(SESSIONS_DIR, prefix) })) });
  }
  for (let i = 0; i < 1 + Math.max(context.repeat, 3); i++) for (const { run } of sides) await run();
  const profiles: Record<string, KernelProfile> = {};
  for (const { name, prefix, session } of sides) {
    session.endProfiling();
    await session.release();
    // onnxruntime names the file `<prefix>_<date>.json`.
    const files = fs.readdirSync(SESSIONS_DIR).filter((f) => f.startsWith(`${prefix}_`) && f.endsWith('.json'));
    if (files.length !== 1) throw new Error(`expected one profile ${prefix}_*.json in ${SESSIONS_DIR}, found ${files.length}`);
    const file = path.join(SESSIONS_DIR, files[0]!);
    profiles[name] = kernelProfile(file);
    if (keepIn) {
      fs.mkdirSync(keepIn, { recursive: true });
      fs.copyFileSync(file, path.join(keepIn, `${name.replace(/[^a-z0-9+:-]+/gi, '-')}.json`));
    }
    fs.rmSync(file, { force: true });
  }
  return profiles;
}

async function measureKernels(unet: LoadedUNet, config: UNetConfiguration, context: MeasureContext): Promise<Metrics> {
  const metrics: Metrics = {};
  let forward = 0;
  for (const mode of config.modes) {
    const graph = buildUNetBenchGraph(unet, mode, config.latent, config.batch);
    const memory = { enableMemPattern: memPatternOf(mode), enableCpuMemArena: config.cpuArena };
    const { [mode]: profile } = await profileRuns({ [mode]: (options) => directSession(graph, { ...memory, ...options }) }, context, keepDir(config));
    const floor = profile!.floorMs;
    metrics[`${mode}KernelMs`] = round(floor, 1);
    if (mode === 'forward') forward = floor;
    else if (forward > 0) metrics[`${mode}Ratio`] = round(floor / forward, 2);
  }
  return metrics;
}

function keepDir(config: UNetConfiguration): string | undefined {
  return config.profileDir === undefined ? undefined : path.resolve(REPO, config.profileDir);
}

/** Our forward and the reference interleaved run by run, on the same inputs, in sessions of the same options. */
async function measureReference(unet: LoadedUNet, config: UNetConfiguration, context: MeasureContext): Promise<Metrics> {
  const graph = buildUNetBenchGraph(unet, 'forward', config.latent, config.batch);
  const ours = await directSession(graph, {});
  const reference = await referenceSession(path.resolve(REPO, config.reference!), graph, {});
  const sides = [ours, reference];
  const samples = sides.map(() => [] as number[]);
  const outputs: Float32Array[] = [];
  for (let i = 0; i < context.warmup + context.repeat; i++) {
    // Alternate which side goes first, so neither always follows the other's cache footprint.
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
      const start = performance.now();
      const result = await sides[k]!.run();
      const elapsed = performance.now() - start;
      if (i >= context.warmup) samples[k]!.push(elapsed);
      if (i === 0) outputs[k] = Object.values(result)[0]!.data as Float32Array;
    }
  }
  await ours.session.release();
  await reference.session.release();
  const [epsOurs, epsReference] = outputs as [Float32Array, Float32Array];
  if (epsOurs.length !== epsReference.length) throw new Error(`--reference: its output has ${epsReference.length} values, our eps ${epsOurs.length}`);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < epsOurs.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(epsOurs[i]! - epsReference[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(epsReference[i]!));
  }
  // Timing two graphs only compares like with like when they compute the same function (same weights).
  if (maxDiff > 1e-3 * Math.max(1, maxAbs)) throw new Error(`--reference: its ε differs from ours by up to ${maxDiff} (largest |ε| ${maxAbs}); was it exported from the same UNet folder?`);
  const [oursMs, referenceMs] = samples.map(median) as [number, number];
  return {
    oursMs: round(oursMs, 1),
    referenceMs: round(referenceMs, 1),
    oursOverReference: round(oursMs / referenceMs, 3),
    epsMaxAbsDiff: Number(maxDiff.toPrecision(3)),
    epsMaxAbs: Number(maxAbs.toPrecision(3)),
    loadAvg: round(os.loadavg()[0]!, 1),
  };
}

/** Kernel floors of our forward and the reference, and their split by operator type. */
async function measureReferenceKernels(unet: LoadedUNet, config: UNetConfiguration, context: MeasureContext): Promise<Metrics> {
  const graph = buildUNetBenchGraph(unet, 'forward', config.latent, config.batch);
  const { ours, reference } = await profileRuns(
    { ours: (options) => directSession(graph, options), reference: (options) => referenceSession(path.resolve(REPO, config.reference!), graph, options) },
    context,
    keepDir(config),
  );
  const profiles = { ours: ours!, reference: reference! };
  const metrics: Metrics = {
    oursKernelMs: round(profiles.ours.floorMs, 1),
    referenceKernelMs: round(profiles.reference.floorMs, 1),
    oursOverReference: round(profiles.ours.floorMs / profiles.reference.floorMs, 3),
  };
  for (const [side, profile] of Object.entries(profiles)) {
    for (const [op, ms] of [...profile.byOpMs].sort((a, b) => b[1] - a[1])) metrics[`${side}.${op}Ms`] = round(ms, 2);
  }
  return metrics;
}

function modesFlag(flags: Flags): UNetBenchMode[] {
  if (typeof flags.modes !== 'string') return [...DEFAULT_MODES];
  const modes = flags.modes.split(',') as UNetBenchMode[];
  const unknown = modes.filter((m) => !UNET_BENCH_MODES.includes(m));
  if (unknown.length > 0) throw new Error(`--modes: unknown ${unknown.join(', ')} (known: ${UNET_BENCH_MODES.join(', ')})`);
  return modes;
}

function integerFlag(flags: Flags, name: string, fallback: number | undefined, min: number): number {
  const value = flags[name];
  if (value === undefined && fallback !== undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} needs an integer >= ${min}, got ${String(value)}`);
  return n;
}

export const benchmark: Benchmark<UNetConfiguration> = {
  description: 'SD-1.5 UNet (diffusers folder) forward and forward + VJP w.r.t. the latent at an N×N latent (CPU provider)',
  configurations(flags) {
    if (typeof flags.model !== 'string') throw new Error('--model DIR is required: a diffusers UNet folder, e.g. .cache/bench-models/unet-quarter (npm run make-bench-model -- quarter)');
    // Recorded relative to the repository, so result files name no machine's folders.
    const common = { model: path.relative(REPO, path.resolve(flags.model)), latent: integerFlag(flags, 'latent', undefined, 8), batch: integerFlag(flags, 'batch', 1, 1) };
    const modes = modesFlag(flags);
    const withForward = modes.includes('forward') ? modes : (['forward', ...modes] as UNetBenchMode[]);
    // Names carry the model and latent, so the runner only compares a run with runs of the same setup.
    const tag = `${path.basename(common.model)}@${common.latent}${common.batch > 1 ? `x${common.batch}` : ''}`;
    if (flags['cpu-arena'] !== undefined && flags['cpu-arena'] !== 'off') throw new Error('--cpu-arena takes only "off"');
    const cpuArena = flags['cpu-arena'] !== 'off';
    const suffix = cpuArena ? '' : ' (no cpu arena)';
    const profileDir = typeof flags['profile-dir'] === 'string' ? { profileDir: path.relative(REPO, path.resolve(flags['profile-dir'])) } : {};
    if (flags.reference !== undefined) {
      if (typeof flags.reference !== 'string' || !fs.existsSync(flags.reference)) {
        throw new Error(`--reference needs an ONNX file of the same UNet (e.g. from bench/pytorch-reference/export_unet.py), got ${String(flags.reference)}`);
      }
      const reference = path.relative(REPO, path.resolve(flags.reference));
      return [
        { name: `${tag} vs reference`, ...common, modes: ['forward'], kind: 'reference' as const, cpuArena, reference },
        { name: `${tag} reference kernels`, ...common, modes: ['forward'], kind: 'reference-kernels' as const, cpuArena, reference, ...profileDir },
      ];
    }
    return [
      ...modes.map((mode) => ({ name: `${tag} ${mode}${suffix}`, ...common, modes: [mode], kind: 'alone' as const, cpuArena })),
      ...(withForward.length > 1 ? [{ name: `${tag} ratio${suffix}`, ...common, modes: withForward, kind: 'ratio' as const, cpuArena }] : []),
      { name: `${tag} kernels${suffix}`, ...common, modes: withForward, kind: 'kernels' as const, cpuArena, ...profileDir },
    ];
  },
  async measure(config, context) {
    const unet = await loadUNet(path.resolve(REPO, config.model));
    if (config.kind === 'ratio') return measureRatio(unet, config, context);
    if (config.kind === 'kernels') return measureKernels(unet, config, context);
    if (config.kind === 'reference') return measureReference(unet, config, context);
    if (config.kind === 'reference-kernels') return measureReferenceKernels(unet, config, context);
    return measureAlone(unet, config, context);
  },
};
