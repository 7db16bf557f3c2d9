/**
 * Denoising from t* with DDIMScheduler.step (eta 0), and the reference-guided variant DragDiffusion
 * uses for the result: the inverted source latent and the edited latent denoised as a batch of two,
 * the edited row's self-attention in the late transformer blocks reading the source row's keys and
 * values (MasaCtrl's mutual self-attention), from a given denoising step on.
 */
import type { UNetModel } from '../../models/unet/unet';
import { schedulerStep, type DdimSchedule } from './ddim';
import type { GraphSession } from '../runtime/graph-session';
import type { LoraWeights } from '../lora/lora-weights';
import { UNetRunner, type EpsFunction } from '../models/unet-runner';

export interface DenoiseProgress {
  readonly step: number;
  readonly total: number;
  readonly timestep: number;
  readonly latent: Float32Array;
}

/** ε for denoising step `index` (0-based) at timestep t. */
export type StepEpsFunction = (sample: Float32Array, t: number, index: number) => Promise<Float32Array>;

/** Runs `DDIMScheduler.step` over `timesteps` (descending, from t*). Works on any batch: the step is elementwise. */
export async function ddimDenoise(
  schedule: DdimSchedule,
  timesteps: readonly number[],
  z: Float32Array,
  eps: StepEpsFunction,
  onStep?: (progress: DenoiseProgress) => void,
): Promise<Float32Array> {
  let x = z;
  for (const [i, t] of timesteps.entries()) {
    x = schedulerStep(schedule, await eps(x, t, i), t, x).sample;
    onStep?.({ step: i + 1, total: timesteps.length, timestep: t, latent: x });
  }
  return x;
}

export interface MutualSelfAttention {
  /** First denoising step (0-based) with mutual self-attention (MasaCtrl `start_step`). */
  readonly startStep: number;
  /** First transformer block (execution order) with mutual self-attention (`start_layer`). */
  readonly startLayer: number;
}

export interface ReferenceGuidedSpec {
  readonly unet: UNetModel;
  /** Latent height and width. */
  readonly height: number;
  readonly width: number;
  readonly tokens: number;
  /** Text embedding of one row [1, tokens, D]; both rows use it. */
  readonly context: Float32Array;
  readonly lora: LoraWeights | null;
  readonly masa: MutualSelfAttention;
}

/**
 * ε for the batch [source, edited]: the mutual-self-attention graph from `startStep` on, the plain
 * batch-2 graph before it (or throughout, when `startLayer` is past the last transformer block).
 */
export async function referenceGuidedEps(session: GraphSession, spec: ReferenceGuidedSpec): Promise<StepEpsFunction> {
  const rows = new Float32Array(spec.context.length * 2);
  rows.set(spec.context, 0);
  rows.set(spec.context, spec.context.length);
  const common = { batch: 2, height: spec.height, width: spec.width, tokens: spec.tokens, context: rows, lora: spec.lora };
  const blocks = spec.unet.plan.transformerBlocks;
  const usesMasa = spec.masa.startLayer < blocks;
  const mutual: EpsFunction | null = usesMasa
    ? (await UNetRunner.create(session, spec.unet, { ...common, mutualFromBlock: spec.masa.startLayer, label: 'unet denoise (mutual self-attention)' })).eps
    : null;
  let plain: EpsFunction | null = null;
  if (!usesMasa || spec.masa.startStep > 0) plain = (await UNetRunner.create(session, spec.unet, { ...common, label: 'unet denoise' })).eps;
  return (sample, t, index) => (mutual && index >= spec.masa.startStep ? mutual(sample, t) : plain!(sample, t));
}

/** Concatenates two single-row latents into a batch of two. */
export function stackRows(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Row `index` of a batch of equal rows. */
export function rowOf(batch: Float32Array, rows: number, index: number): Float32Array {
  const size = batch.length / rows;
  return batch.slice(index * size, (index + 1) * size);
}
