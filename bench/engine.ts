/**
 * Engine benchmark: forward vs forward + VJP (d output / d sample, seeded with a random cotangent) of
 * an SD-1.5-shaped resnet + transformer block stack at three sizes, on onnxruntime's CPU provider.
 * Each configuration runs in its own child process so its peak RSS is its own.
 *
 *     npm run bench -- engine [--iterations N] [--sizes c80-32x32,c160-16x16]
 *
 * Prints a table and writes JSON to bench/results/engine-<timestamp>.json. `runEngineBench` returns the
 * same measurements for a bench runner.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { vjp } from '../src/sidecar/engine/autodiff';
import { onnx } from '../src/sidecar/engine/onnx/onnx-proto';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { BLOCK_STACK_SIZES, buildBlockStack, type BlockStackSize } from './engine-blocks';

export type EngineBenchMode = 'forward' | 'forward+vjp' | 'forward+vjp (remat)';
const MODES: readonly EngineBenchMode[] = ['forward', 'forward+vjp', 'forward+vjp (remat)'];

export interface EngineBenchRun {
  readonly size: string;
  readonly mode: EngineBenchMode;
  readonly medianMs: number;
  readonly minMs: number;
  readonly iterations: number;
  /** RSS once the session is created, before any run. */
  readonly rssAfterCreateMB: number;
  /** Peak RSS of the whole process (model build, session creation and runs). */
  readonly peakRssMB: number;
  readonly onnxNodes: number;
  readonly modelMB: number;
}

export interface EngineBenchResult {
  readonly benchmark: 'engine';
  readonly date: string;
  readonly provider: string;
  readonly onnxruntime: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly runs: readonly EngineBenchRun[];
  /** 1-minute load average before and after: the machine may be shared. */
  readonly loadAverage: readonly [number, number];
  /** Per size: median(forward+vjp) / median(forward), and the same for the remat mode and for the minima. */
  readonly ratios: Record<string, { vjp: number; remat: number; vjpOfMinima: number }>;
}

export interface EngineBenchOptions {
  readonly iterations?: number;
  readonly sizes?: readonly string[];
  readonly log?: (line: string) => void;
}

export async function runEngineBench(options: EngineBenchOptions = {}): Promise<EngineBenchResult> {
  const iterations = options.iterations ?? 15;
  const sizes = BLOCK_STACK_SIZES.filter((s) => !options.sizes || options.sizes.includes(s.name));
  if (sizes.length === 0) throw new Error(`no such sizes; known: ${BLOCK_STACK_SIZES.map((s) => s.name).join(', ')}`);
  const child = (request: ChildRequest) => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', thisFile(), '--child', JSON.stringify(request)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as unknown;
  };
  const runs: EngineBenchRun[] = [];
  const loadBefore = os.loadavg()[0]!;
  for (const size of sizes) {
    options.log?.(`engine bench: ${size.name}: timing`);
    const timings = child({ kind: 'time', size: size.name, iterations }) as Record<EngineBenchMode, { times: number[]; onnxNodes: number; modelMB: number }>;
    for (const mode of MODES) {
      options.log?.(`engine bench: ${size.name}: memory of ${mode}`);
      const memory = child({ kind: 'memory', size: size.name, mode }) as { rssAfterCreateMB: number; peakRssMB: number };
      const times = [...timings[mode].times].sort((a, b) => a - b);
      runs.push({
        size: size.name,
        mode,
        medianMs: times[Math.floor(times.length / 2)]!,
        minMs: times[0]!,
        iterations,
        ...memory,
        onnxNodes: timings[mode].onnxNodes,
        modelMB: timings[mode].modelMB,
      });
    }
  }
  const ratios: EngineBenchResult['ratios'] = {};
  for (const size of sizes) {
    const run = (mode: EngineBenchMode) => runs.find((r) => r.size === size.name && r.mode === mode)!;
    ratios[size.name] = {
      vjp: run('forward+vjp').medianMs / run('forward').medianMs,
      remat: run('forward+vjp (remat)').medianMs / run('forward').medianMs,
      vjpOfMinima: run('forward+vjp').minMs / run('forward').minMs,
    };
  }
  return {
    benchmark: 'engine',
    date: new Date().toISOString(),
    provider: 'cpu',
    onnxruntime: ort.env.versions.common,
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverage: [loadBefore, os.loadavg()[0]!],
    runs,
    ratios,
  };
}

type ChildRequest = { kind: 'time'; size: string; iterations: number } | { kind: 'memory'; size: string; mode: EngineBenchMode };

export function formatEngineTable(result: EngineBenchResult): string {
  const rows = [['size', 'mode', 'median ms', 'min ms', 'x forward', 'RSS after create MB', 'peak RSS MB', 'ONNX nodes']];
  for (const r of result.runs) {
    const fwd = result.runs.find((f) => f.size === r.size && f.mode === 'forward')!;
    rows.push([r.size, r.mode, r.medianMs.toFixed(1), r.minMs.toFixed(1), (r.medianMs / fwd.medianMs).toFixed(2), r.rssAfterCreateMB.toFixed(0), r.peakRssMB.toFixed(0), String(r.onnxNodes)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const load = result.loadAverage.map((l) => l.toFixed(1)).join(' -> ');
  return `engine bench, provider ${result.provider}, onnxruntime ${result.onnxruntime}, ${result.cpus} CPUs (${result.cpuModel}), load ${load}\n${lines.join('\n')}`;
}

interface Prepared {
  readonly session: ort.InferenceSession;
  readonly feeds: Record<string, ort.Tensor>;
  readonly onnxNodes: number;
  readonly modelMB: number;
}

async function prepare(size: BlockStackSize, mode: EngineBenchMode): Promise<Prepared> {
  const stack = buildBlockStack(size);
  const g = stack.graph;
  g.output('out', stack.output);
  if (mode !== 'forward') {
    const cotangent = g.input('cotangent', 'float32', stack.output.shape);
    const recompute = mode === 'forward+vjp (remat)' ? { recompute: { scopes: stack.blocks } } : {};
    const [dSample] = vjp(g, [{ value: stack.output, cotangent }], [stack.sample], recompute);
    g.output('d_sample', dSample!);
  }
  const model = serializeGraph(g);
  const session = await ort.InferenceSession.create(model.bytes, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: os.availableParallelism(),
    executionMode: 'sequential',
  });
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 7;
  for (const input of g.inputs) {
    const data = Float32Array.from({ length: input.size }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
    feeds[input.name] = new ort.Tensor('float32', data, [...input.shape]);
  }
  return { session, feeds, onnxNodes: countNodes(model.bytes), modelMB: model.bytes.length / 2 ** 20 };
}

/**
 * Times all modes in one process, interleaved run by run, so load from other processes on a shared
 * machine hits every mode alike and the ratios stay meaningful.
 */
async function timeModes(size: BlockStackSize, iterations: number) {
  const prepared = new Map<EngineBenchMode, Prepared>();
  for (const mode of MODES) prepared.set(mode, await prepare(size, mode));
  const times = new Map<EngineBenchMode, number[]>(MODES.map((m) => [m, []]));
  for (let i = 0; i < iterations + 2; i++) {
    for (const mode of MODES) {
      const { session, feeds } = prepared.get(mode)!;
      const t0 = performance.now();
      await session.run(feeds);
      if (i >= 2) times.get(mode)!.push(performance.now() - t0);
    }
  }
  const out: Record<string, { times: number[]; onnxNodes: number; modelMB: number }> = {};
  for (const [mode, p] of prepared) {
    out[mode] = { times: times.get(mode)!, onnxNodes: p.onnxNodes, modelMB: p.modelMB };
    await p.session.release();
  }
  return out;
}

/** Peak RSS of one mode alone in this process: build, session creation and a few runs. */
async function memoryOf(size: BlockStackSize, mode: EngineBenchMode) {
  const { session, feeds } = await prepare(size, mode);
  const rssAfterCreate = process.memoryUsage().rss;
  for (let i = 0; i < 3; i++) await session.run(feeds);
  await session.release();
  return { rssAfterCreateMB: rssAfterCreate / 2 ** 20, peakRssMB: (process.resourceUsage().maxRSS * 1024) / 2 ** 20 };
}

function countNodes(bytes: Uint8Array): number {
  return onnx.ModelProto.decode(bytes).graph?.node?.length ?? 0;
}

function thisFile(): string {
  return fileURLToPath(import.meta.url);
}

async function main(argv: readonly string[]): Promise<void> {
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    const request = JSON.parse(argv[childAt + 1]!) as ChildRequest;
    const spec = BLOCK_STACK_SIZES.find((s) => s.name === request.size)!;
    const result = request.kind === 'time' ? await timeModes(spec, request.iterations) : await memoryOf(spec, request.mode);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const iterations = value('--iterations');
  const sizes = value('--sizes');
  const result = await runEngineBench({
    ...(iterations ? { iterations: Number(iterations) } : {}),
    ...(sizes ? { sizes: sizes.split(',') } : {}),
    log: (line) => console.error(line),
  });
  console.log(formatEngineTable(result));
  const dir = path.join(path.dirname(thisFile()), 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `engine-${result.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === thisFile()) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  });
}
