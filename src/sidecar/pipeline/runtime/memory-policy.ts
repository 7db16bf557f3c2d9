/**
 * The edit's memory policy: which rematerialisation mode its gradient graphs use (gradient-memory.ts), and with
 * `auto` precision whether the weights are held in float16, chosen from the image size, the precision and the
 * memory the device has, so that an edit that can fit does fit, and an edit that cannot fails before any model
 * runs, with the estimate and what to change.
 *
 * The estimate of a mode is the peak of its largest stage: the drag step graph (and the LoRA training graph
 * when LoRA is trained), counted statically from the graph by `graphMemory` — the weights it reads and the
 * forward activations its backward keeps — and turned into a peak with factors measured on the CPU provider
 * (docs/runtime.md, "Memory policy"). The choice takes the first plan that fits the budget, in this order:
 * `attention` (faster) before `blocks` (least memory), and float32 weights before float16 ones (fp16-weights:
 * the same graphs and kept activations, half the weight bytes, results rounded through float16 weights).
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import type { Graph } from '../../engine/graph';
import { graphMemory } from '../../engine/graph-memory';
import type { DevicePreference } from '../../engine/runtime/providers';
import { listExecutionProviders } from '../../engine/runtime/providers';
import type { MemoryPolicyPreference, Precision } from '../../../shared/protocol';
import type { GradientRecompute } from './gradient-memory';
import { weightStorageDtype } from './precision';

/** `auto` lets the policy choose; the others force a mode (the user's setting). */
export type { MemoryPolicyPreference } from '../../../shared/protocol';

/**
 * Peak of a gradient stage ≈ weightFactor · its weights + savedFactor · the activations its backward keeps +
 * workingActivations · its largest activation + processBytes, measured on the CPU provider (docs/runtime.md,
 * "Memory policy"): the engine holds each weight once (shared weights, fed as inputs: no pre-packed copies);
 * the backward's working tensors and onnxruntime's arena come on top of what it keeps (about 32 of the largest
 * activation at 256², from the whole-stage peaks measured there); the process itself (Node, onnxruntime, the
 * worker) about 0.6 GB. On a GPU provider a session holds its initializers once on the device, so the same
 * weight factor applies (not yet measured on a GPU).
 */
export const CALIBRATION = { weightFactor: 1.0, savedFactor: 1.0, workingActivations: 32, processBytes: 0.6 * 2 ** 30 } as const;

/**
 * What stays free for the system and other programs: the larger of 1 GiB and this share of the device's memory.
 * A quarter: the editor, a browser and the OS live beside the edit, and the estimate itself is within about
 * 10 % of the measured peaks (docs/benchmarks.md), so a plan that fills 90 % of the memory could swap.
 */
export const RESERVE_SHARE = 0.25;

export interface DeviceMemory {
  readonly totalBytes: number;
  /** What is free now (the budget never exceeds it). */
  readonly availableBytes: number;
  /** Where the figures come from, for the log. */
  readonly source: string;
}

/** The memory of the device an edit runs on: RAM for the CPU, the GPU's own where nvidia-smi reports it; null when unknown. */
export function deviceMemory(device: DevicePreference): DeviceMemory | null {
  const ram = (): DeviceMemory => ({ totalBytes: os.totalmem(), availableBytes: os.freemem(), source: 'system memory (os.totalmem, os.freemem)' });
  if (device === 'cpu') return ram();
  const cudaInstalled = () => listExecutionProviders().some((p) => p.name === 'cuda' && p.installed);
  if (device === 'cuda' || (device === 'auto' && cudaInstalled())) {
    const gpu = nvidiaMemory();
    if (gpu) return gpu;
    return device === 'auto' ? ram() : null;
  }
  // WebGPU, DirectML and CoreML report no adapter memory to onnxruntime-node; auto without CUDA runs on the CPU.
  return device === 'auto' ? ram() : null;
}

function nvidiaMemory(): DeviceMemory | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total,memory.free', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [name, total, free] = out.split('\n')[0]!.split(',').map((s) => s.trim());
    const mib = 2 ** 20;
    if (!total || !free || !Number.isFinite(Number(total))) return null;
    return { totalBytes: Number(total) * mib, availableBytes: Number(free) * mib, source: `GPU memory of ${name} (nvidia-smi)` };
  } catch {
    return null;
  }
}

export interface StageEstimate {
  readonly stage: string;
  readonly weightBytes: number;
  readonly savedActivationBytes: number;
  readonly largestActivationBytes: number;
  /** The calibrated peak. */
  readonly peakBytes: number;
}

export interface ModeEstimate {
  readonly mode: GradientRecompute;
  readonly precision: Precision;
  /** The stage with the largest peak. */
  readonly largest: StageEstimate;
}

/** The gradient graphs of an edit under one mode, built on demand (building costs a second or so each at 512²). */
export type GradientGraphs = (mode: GradientRecompute) => readonly { readonly stage: string; readonly graph: Graph }[];

/**
 * The peak of a mode at a precision. The graphs may be built at another precision of the same arithmetic (fp32
 * graphs estimate fp16-weights): the weights are counted in the precision's storage dtype, and a weight's float32
 * cast lives only while its layer runs (autodiff.ts), so the kept activations are the same.
 */
export function estimateMode(mode: GradientRecompute, graphs: GradientGraphs, precision: Precision): ModeEstimate {
  const dtype = weightStorageDtype(precision);
  const stages = graphs(mode).map(({ stage, graph }): StageEstimate => {
    const memory = graphMemory(graph, dtype);
    const peakBytes =
      CALIBRATION.weightFactor * memory.weightBytes +
      CALIBRATION.savedFactor * memory.savedActivationBytes +
      CALIBRATION.workingActivations * memory.largestActivationBytes +
      CALIBRATION.processBytes;
    const { weightBytes, savedActivationBytes, largestActivationBytes } = memory;
    return { stage, weightBytes, savedActivationBytes, largestActivationBytes, peakBytes };
  });
  if (stages.length === 0) throw new Error('memory policy: no gradient graph to estimate');
  const largest = stages.reduce((a, b) => (b.peakBytes > a.peakBytes ? b : a));
  return { mode, precision, largest };
}

export interface MemoryPlan {
  readonly recompute: GradientRecompute;
  /** The precision the edit runs in: the request's, or fp16-weights where `halveWeightsIfNeeded` took it. */
  readonly precision: Precision;
  /** Whether the user forced the mode. */
  readonly forced: boolean;
  readonly estimate: ModeEstimate | null;
  readonly budgetBytes: number | null;
  /** One line for the log and the recipe: which policy and why. */
  readonly reason: string;
}

/** The edit cannot fit the device's memory in any mode; nothing has run. */
export class MemoryBudgetError extends Error {
  override readonly name = 'MemoryBudgetError';
}

export interface MemoryPlanRequest {
  readonly preference: MemoryPolicyPreference;
  readonly precision: Precision;
  /**
   * The user left the precision to the policy (`auto`): an fp32 edit that fits in no mode may hold its weights in
   * float16 (fp16-weights) when that fits. `graphs` are then built in fp32 and estimate both.
   */
  readonly halveWeightsIfNeeded?: boolean;
  readonly device: DevicePreference;
  /** Image size the edit runs at, for messages. */
  readonly workingSize: { readonly width: number; readonly height: number };
  readonly graphs: GradientGraphs;
  /** Default `deviceMemory(device)`. */
  readonly memory?: DeviceMemory | null;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`;

export function planMemory(request: MemoryPlanRequest): MemoryPlan {
  const memory = request.memory === undefined ? deviceMemory(request.device) : request.memory;
  const budget = memory ? Math.max(0, memory.availableBytes - Math.max(2 ** 30, RESERVE_SHARE * memory.totalBytes)) : null;
  const precisions: Precision[] = request.halveWeightsIfNeeded && request.precision === 'fp32' ? ['fp32', 'fp16-weights'] : [request.precision];
  // Each mode's graphs are built once (seconds at 512²), whatever the precisions estimated from them.
  const built = new Map<GradientRecompute, ReturnType<GradientGraphs>>();
  const graphs: GradientGraphs = (mode) => built.get(mode) ?? built.set(mode, request.graphs(mode)).get(mode)!;
  const name = (e: ModeEstimate) => `"${e.mode}"${e.precision === request.precision ? '' : ` with ${e.precision} (float16 weights, float32 arithmetic)`}`;
  const describe = (e: ModeEstimate) =>
    `${e.largest.stage} ≈ ${gb(e.largest.peakBytes)} (weights ${gb(e.largest.weightBytes)}, kept activations ${gb(e.largest.savedActivationBytes)})`;
  const budgetText = memory && budget !== null ? `budget ${gb(budget)} of ${memory.source}: ${gb(memory.totalBytes)} total, ${gb(memory.availableBytes)} free` : '';
  const fits = (e: ModeEstimate) => budget === null || e.largest.peakBytes <= budget;
  const plan = (estimate: ModeEstimate, forced: boolean, reason: string): MemoryPlan => ({ recompute: estimate.mode, precision: estimate.precision, forced, estimate, budgetBytes: budget, reason });

  if (request.preference !== 'auto') {
    const mode = request.preference;
    const tried: ModeEstimate[] = [];
    for (const precision of precisions) {
      tried.push(estimateMode(mode, graphs, precision));
      if (fits(tried[tried.length - 1]!)) break;
    }
    const estimate = tried[tried.length - 1]!;
    const halved = estimate.precision !== request.precision ? `; with float32 weights it would not fit (${describe(tried[0]!)})` : '';
    const reason = `memory policy ${name(estimate)} (set by the user): ${describe(estimate)}${budget !== null ? `, ${budgetText}${fits(estimate) ? halved : ' — it may not fit'}` : ''}`;
    return plan(estimate, true, reason);
  }
  if (budget === null || memory === null) {
    return {
      recompute: 'attention',
      precision: request.precision,
      forced: false,
      estimate: null,
      budgetBytes: null,
      reason: `memory policy "attention" (default): the ${request.device} device reports no memory figure to check against`,
    };
  }
  const estimates: ModeEstimate[] = [];
  for (const precision of precisions) {
    for (const mode of ['attention', 'blocks'] as const) {
      const estimate = estimateMode(mode, graphs, precision);
      estimates.push(estimate);
      if (fits(estimate)) {
        const why = estimates.length === 1 ? 'it fits' : `${name(estimates[estimates.length - 2]!)} would not (${describe(estimates[estimates.length - 2]!)})`;
        return plan(estimate, false, `memory policy ${name(estimate)} (auto): ${describe(estimate)}, ${budgetText}; ${why}`);
      }
    }
  }
  const least = estimates[estimates.length - 1]!;
  const { width, height } = request.workingSize;
  const onGpu = memory.source.startsWith('GPU');
  const advice = [
    `edit at a smaller working width (now ${width}×${height}; the activations shrink with the area)`,
    ...(request.precision === 'fp32' && onGpu ? ['use fp16 precision (half the weights and most activations)'] : []),
    ...(request.precision === 'fp32' && !onGpu && !precisions.includes('fp16-weights') ? ['use fp16-weights precision (half the weight memory, float32 arithmetic)'] : []),
    onGpu ? 'use a GPU with more memory' : 'close other programs or use a machine with more memory',
  ];
  throw new MemoryBudgetError(
    `This edit does not fit in memory: even recomputing whole blocks${least.precision !== request.precision ? ` with float16 weights` : ''}, ${describe(least)}, over the ${budgetText}. ` +
      `Nothing was run. To make it fit: ${advice.join('; ')}.`,
  );
}
