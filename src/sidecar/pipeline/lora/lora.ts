/**
 * Identity-preserving LoRA fine-tuning on the source image, as DragDiffusion's `train_lora` does it:
 * rank-r adapters on to_q/to_k/to_v/to_out.0 of every attention module (down ~ N(0, 1/r), up = 0),
 * AdamW (β 0.9/0.999, ε 1e-8, weight decay 1e-2, constant learning rate), batches of the image
 * repeated with the reference augmentation (shorter side resized to the crop size with Pillow's
 * bilinear filter, then a random crop), `latent_dist.sample() · scaling_factor`, DDPM noise at
 * t ~ U{0..T−1}, loss MSE(ε̂, ε). The gradient comes from the training graph's VJP; the optimiser runs
 * in JS on the adapter tensors. Every random draw comes from the edit's seed.
 *
 * Memory: the training graph computes `microBatchSize` rows of the batch per run and the step averages
 * the runs' losses and gradients (the loss is a mean over rows, so this is the whole batch's gradient up
 * to float rounding). Activations scale with the rows of one run; the full SD-1.5 UNet does not fit a
 * batch of 4 at 256² in 24 GB in one run (docs/benchmarks.md).
 */
import { resizeBilinearLikePil } from '../../io/resize';
import type { RgbImage } from '../../io/image';
import { rgbToSignedChw } from '../../io/image';
import type { UNetModel } from '../../models/unet/unet';
import type { VaeModel } from '../../models/vae';
import { throwIfCancelled } from '../edit/cancellation';
import type { DdimSchedule } from '../diffusion/ddim';
import { adamStep, initialAdamState, type AdamState } from '../drag/adam';
import { gradientMemoryPolicy, gradientSessionOptions } from '../runtime/gradient-memory';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { IO, vaeEncodeGraph } from '../models/graphs';
import { loraTrainingGraph, TRAINING_IO } from './lora-training-graph';
import { loraFeeds, type LoraWeights } from './lora-weights';
import { SeededRandom } from '../runtime/random';
import type { CompiledGraph } from '../../engine/runtime/engine';

const f32 = Math.fround;

export interface LoraTrainingSettings {
  readonly rank: number;
  readonly steps: number;
  readonly learningRate: number;
  readonly batchSize: number;
  readonly seed: number;
  /** Side of the square training crops (the reference: 512, the pipeline's working width). */
  readonly cropSize: number;
  /** AdamW weight decay (the reference: 1e-2). */
  readonly weightDecay: number;
  /** Recompute UNet blocks in the backward pass (less memory); otherwise only the self-attention probabilities. */
  readonly rematerialize: boolean;
  /** Rows of the batch one training-graph run computes (a divisor of `batchSize`). Default 1: least memory. */
  readonly microBatchSize?: number;
}

export const DEFAULT_LORA_MICRO_BATCH = 1;

export interface LoraTrainingProgress {
  readonly step: number;
  readonly total: number;
  readonly loss: number;
}

export interface LoraTrainingRequest {
  readonly unet: UNetModel;
  readonly vae: VaeModel;
  /** The training scheduler's ᾱ table (DDPM add_noise). */
  readonly schedule: DdimSchedule;
  readonly image: RgbImage;
  /** Text embedding of the prompt [1, tokens, D]. */
  readonly context: Float32Array;
  readonly tokens: number;
  readonly settings: LoraTrainingSettings;
  readonly signal?: AbortSignal;
  readonly onStep?: (progress: LoraTrainingProgress) => void;
}

/** Random streams of the training (one per kind of draw, so changing one leaves the others alone). */
const STREAM = { init: 1, crop: 2, posterior: 3, timestep: 4, noise: 5 } as const;

export async function trainLora(session: GraphSession, request: LoraTrainingRequest): Promise<LoraWeights> {
  const { unet, vae, settings, schedule } = request;
  checkSettings(settings);
  const crop = settings.cropSize;
  const factor = 2 ** (vae.config.blockOutChannels.length - 1);
  if (crop % factor !== 0) throw new RangeError(`LoRA crop size ${crop} is not a multiple of the VAE factor ${factor}`);
  const latentSide = crop / factor;
  const channels = unet.plan.config.inChannels;
  const latentSize = channels * latentSide * latentSide;
  const batch = settings.batchSize;
  const rows = settings.microBatchSize ?? DEFAULT_LORA_MICRO_BATCH;
  const runs = batch / rows;

  const training = loraTrainingGraph(unet, {
    batch: rows,
    height: latentSide,
    width: latentSide,
    tokens: request.tokens,
    rank: settings.rank,
    rematerialize: settings.rematerialize,
  });
  const lora = initialLora(training.adapters, settings);
  if (settings.steps === 0) return lora;
  const trainStep = await session.compile(training.graph, 'unet LoRA training step', gradientSessionOptions(gradientMemoryPolicy(settings.rematerialize)));
  const encoder = await session.compile(vaeEncodeGraph(vae, 1, crop, crop), 'vae encode (LoRA crops)');

  const resized = resizeShorterSide(request.image, crop);
  const crops = new CropPosteriors(session, encoder, resized, crop);
  const context = repeatRows(request.context, rows);
  const random = {
    crop: new SeededRandom(settings.seed, STREAM.crop),
    posterior: new SeededRandom(settings.seed, STREAM.posterior),
    timestep: new SeededRandom(settings.seed, STREAM.timestep),
    noise: new SeededRandom(settings.seed, STREAM.noise),
  };
  const states = new Map<string, AdamState>([...lora.tensors].map(([name, data]) => [name, initialAdamState(data.length)]));
  const tensors = new Map(lora.tensors);
  const scaling = vae.config.scalingFactor;

  for (let step = 1; step <= settings.steps; step++) {
    throwIfCancelled(request.signal, 'LoRA training');
    const noisy = new Float32Array(batch * latentSize);
    const noise = new Float32Array(batch * latentSize);
    const timesteps = new Float32Array(batch);
    for (let b = 0; b < batch; b++) {
      const top = random.crop.integer(resized.height - crop + 1);
      const left = random.crop.integer(resized.width - crop + 1);
      const { mean, logvar } = await crops.at(top, left);
      const t = random.timestep.integer(schedule.alphasCumprod.length);
      timesteps[b] = t;
      const alpha = schedule.alphasCumprod[t]!;
      const sqrtAlpha = f32(Math.sqrt(alpha));
      const sqrtOneMinus = f32(Math.sqrt(f32(1 - alpha)));
      for (let i = 0; i < latentSize; i++) {
        // latent_dist.sample() = mean + std · N(0, 1), std = exp(logvar / 2); then · scaling_factor.
        const z = f32(f32(mean[i]! + f32(f32(Math.exp(f32(logvar[i]! * 0.5))) * f32(random.posterior.normal()))) * scaling);
        const e = f32(random.noise.normal());
        noise[b * latentSize + i] = e;
        noisy[b * latentSize + i] = f32(f32(sqrtAlpha * z) + f32(sqrtOneMinus * e));
      }
    }
    const adapters = loraFeeds({ ...lora, tensors }, training.graph);
    const { loss, grads } = await meanOverRuns(runs, async (run) => {
      const part = (all: Float32Array, size: number) => all.subarray(run * rows * size, (run + 1) * rows * size);
      const feeds = { ...adapters, [IO.sample]: part(noisy, latentSize), [IO.timestep]: part(timesteps, 1), [IO.context]: context, [TRAINING_IO.target]: part(noise, latentSize) };
      const out = await session.run(trainStep, feeds, undefined, 'LoRA training');
      return { loss: float32Output(out, TRAINING_IO.loss)[0]!, grads: new Map([...tensors.keys()].map((name) => [name, float32Output(out, `${TRAINING_IO.gradPrefix}${name}`)])) };
    });
    for (const [name, data] of tensors) {
      const grad = grads.get(name)!;
      // AdamW: decoupled weight decay first (param ← param·(1 − lr·wd)), then the Adam step.
      const decay = f32(1 - settings.learningRate * settings.weightDecay);
      const decayed = data.map((v) => f32(v * decay));
      const next = adamStep(decayed, grad, states.get(name)!, { lr: settings.learningRate });
      tensors.set(name, next.param);
      states.set(name, next.state);
    }
    request.onStep?.({ step, total: settings.steps, loss });
  }
  return { rank: settings.rank, tensors, shapes: lora.shapes };
}

function checkSettings(s: LoraTrainingSettings): void {
  const positiveInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!positiveInt(s.rank)) throw new RangeError(`LoRA rank must be a positive integer, got ${s.rank}`);
  if (!Number.isInteger(s.steps) || s.steps < 0) throw new RangeError(`LoRA steps must be an integer >= 0, got ${s.steps}`);
  if (!positiveInt(s.batchSize)) throw new RangeError(`LoRA batch size must be a positive integer, got ${s.batchSize}`);
  if (!(s.learningRate > 0)) throw new RangeError(`LoRA learning rate must be > 0, got ${s.learningRate}`);
  const rows = s.microBatchSize ?? DEFAULT_LORA_MICRO_BATCH;
  if (!positiveInt(rows) || s.batchSize % rows !== 0) throw new RangeError(`LoRA micro-batch size must be a positive divisor of the batch size ${s.batchSize}, got ${rows}`);
  if (!positiveInt(s.cropSize)) throw new RangeError(`LoRA crop size must be a positive integer, got ${s.cropSize}`);
}

interface RunResult {
  readonly loss: number;
  readonly grads: ReadonlyMap<string, Float32Array>;
}

/** The mean loss and gradients of `count` runs (one run: its own, unchanged). */
async function meanOverRuns(count: number, run: (index: number) => Promise<RunResult>): Promise<RunResult> {
  const first = await run(0);
  if (count === 1) return first;
  let loss = first.loss;
  const sums = new Map([...first.grads].map(([name, g]) => [name, Float64Array.from(g)]));
  for (let i = 1; i < count; i++) {
    const next = await run(i);
    loss += next.loss;
    for (const [name, sum] of sums) {
      const g = next.grads.get(name)!;
      for (let k = 0; k < sum.length; k++) sum[k]! += g[k]!;
    }
  }
  return { loss: f32(loss / count), grads: new Map([...sums].map(([name, sum]) => [name, Float32Array.from(sum, (v) => v / count)])) };
}

/** diffusers' LoRALinearLayer initialisation: down ~ N(0, (1/rank)²), up = 0. */
export function initialLora(adapters: ReadonlyMap<string, readonly number[]>, settings: Pick<LoraTrainingSettings, 'rank' | 'seed'>): LoraWeights {
  const random = new SeededRandom(settings.seed, STREAM.init);
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of adapters) {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, name.endsWith('.lora_A.weight') ? random.normals(size, 1 / settings.rank) : new Float32Array(size));
  }
  return { rank: settings.rank, tensors, shapes: adapters };
}

/** torchvision `Resize(size)` of a PIL image: the shorter side becomes `size`, the longer int(size·long/short). */
export function resizeShorterSide(image: RgbImage, size: number): RgbImage {
  const { width, height } = image;
  const target = width <= height ? { width: size, height: Math.trunc((size * height) / width) } : { width: Math.trunc((size * width) / height), height: size };
  return resizeBilinearLikePil(image, target.width, target.height);
}

function repeatRows(row: Float32Array, count: number): Float32Array {
  const out = new Float32Array(row.length * count);
  for (let i = 0; i < count; i++) out.set(row, i * row.length);
  return out;
}

/** The VAE posterior of each crop position, encoded once (the encoder is deterministic; only sampling is random). */
class CropPosteriors {
  private readonly cache = new Map<string, Promise<{ mean: Float32Array; logvar: Float32Array }>>();

  constructor(
    private readonly session: GraphSession,
    private readonly encoder: CompiledGraph,
    private readonly image: RgbImage,
    private readonly crop: number,
  ) {}

  at(top: number, left: number): Promise<{ mean: Float32Array; logvar: Float32Array }> {
    const key = `${top},${left}`;
    let found = this.cache.get(key);
    if (!found) {
      found = this.encode(top, left);
      // Bounded: a long image has many crop positions, and each posterior is small but not free.
      if (this.cache.size >= 64) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, found);
    }
    return found;
  }

  private async encode(top: number, left: number): Promise<{ mean: Float32Array; logvar: Float32Array }> {
    const { image, crop } = this;
    const data = new Uint8Array(crop * crop * 3);
    for (let y = 0; y < crop; y++) data.set(image.data.subarray(((top + y) * image.width + left) * 3, ((top + y) * image.width + left + crop) * 3), y * crop * 3);
    const pixels = rgbToSignedChw({ width: crop, height: crop, channels: 3, data });
    const out = await this.session.run(this.encoder, { [IO.image]: pixels }, [IO.mean, IO.logvar], 'LoRA training');
    return { mean: float32Output(out, IO.mean), logvar: float32Output(out, IO.logvar) };
  }
}
