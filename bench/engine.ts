/**
 * Engine benchmark: forward vs forward + VJP (d output / d sample, seeded with a random cotangent) of
 * an SD-1.5-shaped stack of resnet + transformer blocks (bench/engine-blocks.ts) at three sizes, on
 * onnxruntime's CPU provider.
 *
 *     npm run bench -- engine [--sizes c80-32x32,c160-16x16] [--depth N] [--repeat N]
 *
 * Per size, four configurations, each in its own process: `forward`, `forward+vjp` and
 * `forward+vjp remat` (each block recomputed in the backward pass) alone, for their run time and peak
 * RSS; and `ratio`, which times the three interleaved run by run in one process, so that load from
 * other processes on a shared machine hits all of them alike — its ratios are the ones to compare
 * (its peak RSS holds three sessions and means nothing).
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import { vjp } from '../src/sidecar/engine/autodiff';
import { onnx } from '../src/sidecar/engine/onnx/onnx-proto';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { BLOCK_STACK_SIZES, buildBlockStack, type BlockStackSize } from './engine-blocks';
import { median, rssMb, round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags, MeasureContext, Metrics } from './lib/types';

export type EngineBenchMode = 'forward' | 'forward+vjp' | 'forward+vjp remat';
const MODES: readonly EngineBenchMode[] = ['forward', 'forward+vjp', 'forward+vjp remat'];

interface EngineConfiguration extends Configuration {
  readonly size: string;
  readonly depth: number;
  readonly mode: EngineBenchMode | 'ratio';
}

interface Prepared {
  readonly session: ort.InferenceSession;
  readonly feeds: Record<string, ort.Tensor>;
  readonly onnxNodes: number;
}

/** Builds the stack (plus its backward pass for the VJP modes) and creates a CPU session for it. */
export async function prepareEngineBench(size: BlockStackSize, depth: number, mode: EngineBenchMode): Promise<Prepared> {
  const stack = buildBlockStack(size, depth);
  const g = stack.graph;
  g.output('out', stack.output);
  if (mode !== 'forward') {
    const cotangent = g.input('cotangent', 'float32', stack.output.shape);
    const options = mode === 'forward+vjp remat' ? { recompute: { scopes: stack.blocks } } : {};
    const [dSample] = vjp(g, [{ value: stack.output, cotangent }], [stack.sample], options);
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
  return { session, feeds, onnxNodes: onnx.ModelProto.decode(model.bytes).graph?.node?.length ?? 0 };
}

function sizeFlag(flags: Flags): BlockStackSize[] {
  if (typeof flags.sizes !== 'string') return [...BLOCK_STACK_SIZES];
  const wanted = flags.sizes.split(',');
  const unknown = wanted.filter((w) => !BLOCK_STACK_SIZES.some((s) => s.name === w));
  if (unknown.length > 0) throw new Error(`--sizes: unknown ${unknown.join(', ')} (known: ${BLOCK_STACK_SIZES.map((s) => s.name).join(', ')})`);
  return BLOCK_STACK_SIZES.filter((s) => wanted.includes(s.name));
}

function depthFlag(flags: Flags): number {
  const depth = flags.depth === undefined ? 2 : Number(flags.depth);
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`--depth needs a positive integer, got ${String(flags.depth)}`);
  return depth;
}

async function measureAlone(size: BlockStackSize, config: EngineConfiguration, mode: EngineBenchMode, context: MeasureContext): Promise<Metrics> {
  const { session, feeds, onnxNodes } = await prepareEngineBench(size, config.depth, mode);
  const afterCreate = rssMb();
  const timing = await timeRepeated(() => session.run(feeds), context);
  await session.release();
  return { runMs: round(timing.medianMs, 1), minMs: round(timing.minMs, 1), rssAfterCreateMb: round(afterCreate, 0), onnxNodes };
}

/** All three modes in one process, interleaved run by run. */
async function measureRatio(size: BlockStackSize, config: EngineConfiguration, context: MeasureContext): Promise<Metrics> {
  const prepared = await Promise.all(MODES.map((mode) => prepareEngineBench(size, config.depth, mode)));
  const samples = MODES.map(() => [] as number[]);
  for (let i = 0; i < context.warmup + context.repeat; i++) {
    for (const [k, { session, feeds }] of prepared.entries()) {
      const start = performance.now();
      await session.run(feeds);
      if (i >= context.warmup) samples[k]!.push(performance.now() - start);
    }
  }
  await Promise.all(prepared.map((p) => p.session.release()));
  const [forward, withVjp, remat] = samples.map(median) as [number, number, number];
  return {
    forwardMs: round(forward, 1),
    vjpMs: round(withVjp, 1),
    rematMs: round(remat, 1),
    vjpRatio: round(withVjp / forward, 2),
    rematRatio: round(remat / forward, 2),
    loadAvg: round(os.loadavg()[0]!, 1),
  };
}

export const benchmark: Benchmark<EngineConfiguration> = {
  description: 'SD-shaped resnet + transformer block stack: forward vs forward + VJP w.r.t. the sample (CPU provider)',
  configurations(flags) {
    const depth = depthFlag(flags);
    return sizeFlag(flags).flatMap((size) =>
      [...MODES, 'ratio' as const].map((mode) => ({ name: `${size.name} ${mode}`, size: size.name, depth, mode })),
    );
  },
  async measure(config, context) {
    const size = BLOCK_STACK_SIZES.find((s) => s.name === config.size)!;
    return config.mode === 'ratio' ? measureRatio(size, config, context) : measureAlone(size, config, config.mode, context);
  },
};
