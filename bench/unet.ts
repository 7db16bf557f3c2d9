/**
 * UNet benchmark: the SD-1.5 UNet forward (eps) and forward + VJP w.r.t. the latent (cotangents on eps
 * and on DragDiffusion's feature feat_3_up2, as in the drag step) at an N×N latent, on a diffusers UNet
 * folder (e.g. a random-weight bench model from `npm run make-bench-model`).
 *
 *     npm run bench -- unet --model DIR --latent N [--iterations K] [--modes forward,forward+vjp] [--json]
 *
 * Modes: `forward` (eps only); `forward+vjp` (eps, feat_3_up2 and d/d sample); the same with the
 * self-attention probabilities recomputed in the backward pass (`:remat-attention`, the memory-lean
 * default for the drag step) or with every resnet/transformer recomputed (`:remat-blocks`).
 * Each mode runs in its own child process, so its peak RSS is its own. Prints a table (or, with --json,
 * one JSON object) and writes the JSON to bench/results/unet-<model>-<N>-<timestamp>.json.
 * `runUNetBench` returns the same measurements for a bench runner.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { vjp, type RecomputePolicy } from '../src/sidecar/engine/autodiff';
import type { Graph } from '../src/sidecar/engine/graph';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { SessionStore } from '../src/sidecar/engine/runtime/sessions';
import { loadUNet } from '../src/sidecar/models/unet/load';
import { unetAttentionSegment, unetBlockSegment } from '../src/sidecar/models/unet/remat';
import { buildUNetGraph } from '../src/sidecar/models/unet/unet';

export type UNetBenchMode = 'forward' | 'forward+vjp' | 'forward+vjp:remat-attention' | 'forward+vjp:remat-blocks';
export const UNET_BENCH_MODES: readonly UNetBenchMode[] = ['forward', 'forward+vjp', 'forward+vjp:remat-attention', 'forward+vjp:remat-blocks'];
/** Modes run when none are asked for. */
export const DEFAULT_UNET_BENCH_MODES: readonly UNetBenchMode[] = ['forward', 'forward+vjp', 'forward+vjp:remat-attention'];

const RECOMPUTE: Partial<Record<UNetBenchMode, RecomputePolicy>> = {
  'forward+vjp:remat-attention': unetAttentionSegment,
  'forward+vjp:remat-blocks': unetBlockSegment,
};

export interface UNetBenchRun {
  readonly mode: UNetBenchMode;
  readonly medianMs: number;
  readonly minMs: number;
  readonly iterations: number;
  readonly provider: string;
  readonly createMs: number;
  /** RSS once the session exists, before any run. */
  readonly rssAfterCreateMB: number;
  /** Peak RSS of the whole child process (build, session creation, runs). */
  readonly peakRssMB: number;
  readonly graphNodes: number;
}

export interface UNetBenchResult {
  readonly benchmark: 'unet';
  readonly date: string;
  readonly model: { readonly dir: string; readonly parameters: number; readonly weightsMB: number; readonly blockOutChannels: readonly number[] };
  readonly latent: number;
  readonly batch: number;
  readonly onnxruntime: string;
  readonly cpus: number;
  readonly cpuModel: string;
  /** 1-minute load average before and after: the machine may be shared. */
  readonly loadAverage: readonly [number, number];
  readonly runs: readonly UNetBenchRun[];
  /** median(mode) / median(forward). */
  readonly ratios: Readonly<Record<string, number>>;
}

export interface UNetBenchOptions {
  readonly model: string;
  readonly latent: number;
  readonly batch?: number;
  readonly iterations?: number;
  readonly modes?: readonly UNetBenchMode[];
  readonly log?: (line: string) => void;
}

interface ChildRequest {
  readonly model: string;
  readonly latent: number;
  readonly batch: number;
  readonly iterations: number;
  readonly mode: UNetBenchMode;
}

export async function runUNetBench(options: UNetBenchOptions): Promise<UNetBenchResult> {
  const request = { model: path.resolve(options.model), latent: options.latent, batch: options.batch ?? 1, iterations: options.iterations ?? 10 };
  const unet = await loadUNet(request.model);
  const parameters = unet.weights.keys().reduce((n, k) => n + unet.weights.info(k).shape.reduce((a, b) => a * b, 1), 0);
  const loadBefore = os.loadavg()[0]!;
  const runs: UNetBenchRun[] = [];
  for (const mode of options.modes ?? DEFAULT_UNET_BENCH_MODES) {
    options.log?.(`unet bench: ${path.basename(request.model)} ${request.latent}x${request.latent}: ${mode}`);
    const out = execFileSync(process.execPath, ['--import', 'tsx', thisFile(), '--child', JSON.stringify({ ...request, mode })], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    });
    runs.push(JSON.parse(out.trim().split('\n').at(-1)!) as UNetBenchRun);
  }
  const forward = runs.find((r) => r.mode === 'forward');
  const ratios: Record<string, number> = {};
  if (forward) for (const r of runs) if (r !== forward) ratios[r.mode] = r.medianMs / forward.medianMs;
  return {
    benchmark: 'unet',
    date: new Date().toISOString(),
    model: {
      dir: path.relative(process.cwd(), request.model) || '.',
      parameters,
      weightsMB: fs.statSync(unet.files.weightsPath).size / 2 ** 20,
      blockOutChannels: unet.plan.config.blockOutChannels,
    },
    latent: request.latent,
    batch: request.batch,
    onnxruntime: ort.env.versions.common,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: [loadBefore, os.loadavg()[0]!],
    runs,
    ratios,
  };
}

/** The benchmarked graph: the UNet forward, plus the drag step's VJP w.r.t. the latent for the vjp modes. */
function buildBenchGraph(unet: Awaited<ReturnType<typeof loadUNet>>, request: ChildRequest): Graph {
  const { latent: n, batch } = request;
  const { graph, inputs, forward } = buildUNetGraph(unet, { batch, height: n, width: n, outputs: ['eps'] });
  if (request.mode === 'forward') return graph;
  const feature = forward.features.feat_3_up2!;
  const seeds = [
    { value: forward.eps, cotangent: graph.input('cotangent_eps', 'float32', forward.eps.shape) },
    { value: feature, cotangent: graph.input('cotangent_feat_3_up2', 'float32', feature.shape) },
  ];
  const recompute = RECOMPUTE[request.mode];
  const [dSample] = vjp(graph, seeds, [inputs.sample], recompute ? { recompute } : {});
  graph.output('feat_3_up2', feature);
  graph.output('grad_sample', dSample!);
  return graph;
}

/** One mode in this process: build, compile on the CPU provider, two warm-up runs, timed runs. */
async function runChild(request: ChildRequest): Promise<UNetBenchRun> {
  const unet = await loadUNet(request.model);
  const graph = buildBenchGraph(unet, request);
  const model = serializeGraph(graph);
  const store = new SessionStore(path.join(os.tmpdir(), 'clipdrag-bench-sessions'));
  const info = await store.compile(1, model, {
    label: `unet ${request.mode}`,
    device: 'cpu',
    intraOpNumThreads: os.availableParallelism(),
    cacheOptimizedModel: false,
  });
  const rssAfterCreate = process.memoryUsage().rss;
  let seed = 11;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const feeds: Record<string, Float32Array> = {};
  for (const input of graph.inputs) {
    feeds[input.name] = input.name === 'timestep' ? Float32Array.of(500) : Float32Array.from({ length: input.size }, random);
  }
  const times: number[] = [];
  for (let i = 0; i < request.iterations + 2; i++) {
    const t0 = performance.now();
    const { outputs } = await store.run(1, feeds);
    if (i >= 2) times.push(performance.now() - t0);
    if (i === 0 && !Object.values(outputs).every((v) => (v as Float32Array).every(Number.isFinite))) {
      throw new Error(`unet ${request.mode}: outputs are not finite`);
    }
  }
  await store.releaseAll();
  times.sort((a, b) => a - b);
  return {
    mode: request.mode,
    medianMs: times[Math.floor(times.length / 2)]!,
    minMs: times[0]!,
    iterations: times.length,
    provider: info.provider,
    createMs: info.createMs,
    rssAfterCreateMB: rssAfterCreate / 2 ** 20,
    peakRssMB: (process.resourceUsage().maxRSS * 1024) / 2 ** 20,
    graphNodes: graph.nodes.length,
  };
}

export function formatUNetTable(result: UNetBenchResult): string {
  const rows = [['mode', 'median ms', 'min ms', 'x forward', 'peak RSS MB', 'provider']];
  const forward = result.runs.find((r) => r.mode === 'forward');
  for (const r of result.runs) {
    rows.push([r.mode, r.medianMs.toFixed(1), r.minMs.toFixed(1), forward ? (r.medianMs / forward.medianMs).toFixed(2) : '-', r.peakRssMB.toFixed(0), r.provider]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i === 0 || i === 5 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const m = result.model;
  return (
    `unet bench: ${m.dir} (${(m.parameters / 1e6).toFixed(1)} M parameters, channels ${m.blockOutChannels.join('/')}), ` +
    `latent ${result.batch}x${result.latent}x${result.latent}, onnxruntime ${result.onnxruntime}, ${result.cpus} CPUs (${result.cpuModel}), ` +
    `load ${result.loadAverage.map((l) => l.toFixed(1)).join(' → ')}\n${lines.join('\n')}`
  );
}

function thisFile(): string {
  return fileURLToPath(import.meta.url);
}

function usage(problem: string): never {
  console.error(`${problem}\nusage: npm run bench -- unet --model DIR --latent N [--batch B] [--iterations K] [--modes ${UNET_BENCH_MODES.join(',')}] [--json]`);
  process.exit(2);
}

export async function main(argv: readonly string[]): Promise<void> {
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    process.stdout.write(`${JSON.stringify(await runChild(JSON.parse(argv[childAt + 1]!) as ChildRequest))}\n`);
    return;
  }
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const model = value('--model') ?? usage('--model DIR is required (a diffusers UNet folder)');
  const latent = Number(value('--latent') ?? usage('--latent N is required'));
  if (!Number.isInteger(latent) || latent < 8) usage('--latent must be an integer >= 8');
  const modes = value('--modes')?.split(',') as UNetBenchMode[] | undefined;
  for (const m of modes ?? []) if (!UNET_BENCH_MODES.includes(m)) usage(`unknown mode ${m}`);
  const json = argv.includes('--json');
  const result = await runUNetBench({
    model,
    latent,
    ...(value('--batch') ? { batch: Number(value('--batch')) } : {}),
    ...(value('--iterations') ? { iterations: Number(value('--iterations')) } : {}),
    ...(modes ? { modes } : {}),
    log: (line) => console.error(line),
  });
  const dir = path.join(path.dirname(thisFile()), 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `unet-${path.basename(path.resolve(model))}-${latent}-${result.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  if (json) console.log(JSON.stringify(result));
  else console.log(`${formatUNetTable(result)}\nwrote ${path.relative(process.cwd(), file)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === thisFile()) {
  const args = process.argv.slice(2);
  main(args[0] === 'unet' ? args.slice(1) : args).catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  });
}
