/**
 * DDIM as the reference code runs it on SD-1.5:
 * - the schedule tables of diffusers' DDIMScheduler (betas built in float32,
 *   cumulative product accumulated in float64 and stored as float32);
 * - `DDIMScheduler.step` with eta 0 (final sampling);
 * - DragDiffusion's `DragPipeline.step` (the deterministic step inside the
 *   drag loss; it tests `t_prev > 0` where the scheduler tests `>= 0`);
 * - DragDiffusion's inversion step `DragPipeline.inv_step`.
 * Steps are pure functions over float32 latents. Each arithmetic operation is
 * rounded to float32 in the reference's order, so results match the
 * reference's float32 tensors to within an ulp or two.
 */
import type { DdimSchedulerConfig } from '../../models/config';

const f32 = Math.fround;

export interface DdimSchedule {
  readonly config: DdimSchedulerConfig;
  readonly numInferenceSteps: number;
  /** num_train_timesteps // num_inference_steps: the distance to the previous timestep. */
  readonly stepRatio: number;
  /** Inference timesteps, descending (SD-1.5 with 50 steps: 981, 961, ..., 1). */
  readonly timesteps: readonly number[];
  /** ᾱ_t for t = 0 .. num_train_timesteps-1. */
  readonly alphasCumprod: Float32Array;
  /** ᾱ used past the end of the schedule: 1 when set_alpha_to_one, else ᾱ_0. */
  readonly finalAlphaCumprod: number;
}

/**
 * torch.linspace in float32 as its CPU kernel computes it (the golden tables
 * come from there): values are produced in vectors of 8 whose first lane is
 * `start + step·i` for the first half of the range and `end − step·(n−1−i)`
 * for the second, each with a single rounding (fused multiply-add), and whose
 * other lanes add `step` multiples to that first lane; the tail left after
 * whole pairs of vectors is computed lane by lane.
 */
function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // step·k is exact in float64 for these magnitudes, so rounding the sum once is the fused result.
  const at = (i: number): number => (i < halfway ? f32(s + step * i) : f32(e - step * (steps - i - 1)));
  const lanes = 8;
  const vectorEnd = Math.floor(steps / (2 * lanes)) * 2 * lanes;
  for (let i = 0; i < vectorEnd; i += lanes) {
    const first = at(i);
    for (let lane = 0; lane < lanes; lane++) out[i + lane] = f32(first + f32(lane * step));
  }
  for (let i = vectorEnd; i < steps; i++) out[i] = at(i);
  return out;
}

/** Betas of the configured schedule, as float32. */
export function computeBetas(config: DdimSchedulerConfig): Float32Array {
  const n = config.numTrainTimesteps;
  if (config.trainedBetas !== null) return Float32Array.from(config.trainedBetas);
  switch (config.betaSchedule) {
    case 'linear':
      return linspaceFloat32(config.betaStart, config.betaEnd, n);
    case 'scaled_linear': {
      const roots = linspaceFloat32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n);
      return roots.map((r) => f32(r * r));
    }
    case 'squaredcos_cap_v2': {
      // Glide's cosine schedule, computed in float64 and then stored as float32.
      const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      const betas = new Float32Array(n);
      for (let i = 0; i < n; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999);
      return betas;
    }
  }
}

/** ᾱ_t = Π (1 − β_i), accumulated in float64 like torch's CPU cumprod, stored as float32. */
export function computeAlphasCumprod(config: DdimSchedulerConfig): Float32Array {
  if (config.rescaleBetasZeroSnr) throw new Error('DDIM: rescale_betas_zero_snr schedules are not supported');
  const betas = computeBetas(config);
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** numpy's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Inference timesteps (descending) for the configured spacing. */
export function ddimTimesteps(config: DdimSchedulerConfig, numInferenceSteps: number): number[] {
  const n = config.numTrainTimesteps;
  if (!Number.isSafeInteger(numInferenceSteps) || numInferenceSteps < 1 || numInferenceSteps > n) {
    throw new RangeError(`DDIM: num_inference_steps must be an integer in 1..${n}, got ${numInferenceSteps}`);
  }
  const steps: number[] = [];
  switch (config.timestepSpacing) {
    case 'leading': {
      const ratio = Math.floor(n / numInferenceSteps);
      for (let i = numInferenceSteps - 1; i >= 0; i--) steps.push(i * ratio + config.stepsOffset);
      break;
    }
    case 'trailing': {
      const ratio = n / numInferenceSteps;
      for (let i = 0; i < numInferenceSteps; i++) steps.push(roundHalfEven(n - i * ratio) - 1);
      break;
    }
    case 'linspace': {
      // numpy.linspace(0, n-1, k): i * ((n-1)/(k-1)), last value exactly n-1; then reversed.
      const delta = numInferenceSteps === 1 ? 0 : (n - 1) / (numInferenceSteps - 1);
      for (let i = numInferenceSteps - 1; i >= 0; i--) {
        steps.push(roundHalfEven(i === numInferenceSteps - 1 && i > 0 ? n - 1 : i * delta));
      }
      break;
    }
  }
  return steps;
}

export function createDdimSchedule(config: DdimSchedulerConfig, numInferenceSteps: number): DdimSchedule {
  const alphasCumprod = computeAlphasCumprod(config);
  return {
    config,
    numInferenceSteps,
    stepRatio: Math.floor(config.numTrainTimesteps / numInferenceSteps),
    timesteps: ddimTimesteps(config, numInferenceSteps),
    alphasCumprod,
    finalAlphaCumprod: config.setAlphaToOne ? 1 : alphasCumprod[0]!,
  };
}

function alphaAt(schedule: DdimSchedule, t: number): number {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.alphasCumprod.length) {
    throw new RangeError(`DDIM: timestep ${t} is outside 0..${schedule.alphasCumprod.length - 1}`);
  }
  return schedule.alphasCumprod[t]!;
}

/**
 * Coefficients of one deterministic DDIM move from level `alpha` to level
 * `alphaTarget`: x0 = (x − sqrtBeta·ε) / sqrtAlpha, x' = sqrtAlphaTarget·x0 + sqrtBetaTarget·ε.
 * All values are float32 numbers, so graphs that embed them compute what the
 * pure functions here compute.
 */
export interface StepCoefficients {
  readonly sqrtAlpha: number;
  readonly sqrtBeta: number;
  readonly sqrtAlphaTarget: number;
  readonly sqrtBetaTarget: number;
}

function coefficients(alpha: number, alphaTarget: number): StepCoefficients {
  return {
    sqrtAlpha: f32(Math.sqrt(alpha)),
    sqrtBeta: f32(Math.sqrt(f32(1 - alpha))),
    sqrtAlphaTarget: f32(Math.sqrt(alphaTarget)),
    sqrtBetaTarget: f32(Math.sqrt(f32(1 - alphaTarget))),
  };
}

/** Coefficients of `DDIMScheduler.step` at t (eta 0): target ᾱ[t − ratio], or the final ᾱ when that is negative. */
export function schedulerStepCoefficients(schedule: DdimSchedule, t: number): StepCoefficients {
  const prev = t - schedule.stepRatio;
  return coefficients(alphaAt(schedule, t), prev >= 0 ? alphaAt(schedule, prev) : schedule.finalAlphaCumprod);
}

/** Coefficients of `DragPipeline.step` at t: like the scheduler, but the final ᾱ is used unless t − ratio > 0. */
export function dragStepCoefficients(schedule: DdimSchedule, t: number): StepCoefficients {
  const prev = t - schedule.stepRatio;
  return coefficients(alphaAt(schedule, t), prev > 0 ? alphaAt(schedule, prev) : schedule.finalAlphaCumprod);
}

/**
 * Coefficients of `DragPipeline.inv_step` towards t: from level min(t − ratio, T−1)
 * (the final ᾱ when negative) up to level t.
 */
export function inversionStepCoefficients(schedule: DdimSchedule, t: number): StepCoefficients {
  const from = Math.min(t - schedule.stepRatio, schedule.alphasCumprod.length - 1);
  return coefficients(from >= 0 ? alphaAt(schedule, from) : schedule.finalAlphaCumprod, alphaAt(schedule, t));
}

export interface StepResult {
  /** The latent at the target level. */
  readonly sample: Float32Array;
  /** The predicted clean latent x0. */
  readonly predX0: Float32Array;
}

function checkSameLength(eps: Float32Array, x: Float32Array): void {
  if (eps.length !== x.length) throw new RangeError(`DDIM: model output has ${eps.length} values, latent has ${x.length}`);
}

/** Applies epsilon-parameterised coefficients elementwise, in the reference's operation order. */
export function applyStep(c: StepCoefficients, eps: Float32Array, x: Float32Array): StepResult {
  checkSameLength(eps, x);
  const sample = new Float32Array(x.length);
  const predX0 = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const e = eps[i]!;
    const x0 = f32(f32(x[i]! - f32(c.sqrtBeta * e)) / c.sqrtAlpha);
    predX0[i] = x0;
    sample[i] = f32(f32(c.sqrtAlphaTarget * x0) + f32(c.sqrtBetaTarget * e));
  }
  return { sample, predX0 };
}

/**
 * `DDIMScheduler.step` with eta 0 (no noise). Supports the epsilon, sample
 * and v-prediction parameterisations and `clip_sample`.
 */
export function schedulerStep(schedule: DdimSchedule, modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
  const cfg = schedule.config;
  if (cfg.thresholding) throw new Error('DDIM: dynamic thresholding is not supported');
  const c = schedulerStepCoefficients(schedule, t);
  if (cfg.predictionType === 'epsilon' && !cfg.clipSample) return applyStep(c, modelOutput, sample);
  checkSameLength(modelOutput, sample);
  const out = new Float32Array(sample.length);
  const predX0 = new Float32Array(sample.length);
  const range = cfg.clipSampleRange;
  for (let i = 0; i < sample.length; i++) {
    const m = modelOutput[i]!;
    const x = sample[i]!;
    let x0: number;
    let e: number;
    if (cfg.predictionType === 'epsilon') {
      x0 = f32(f32(x - f32(c.sqrtBeta * m)) / c.sqrtAlpha);
      e = m;
    } else if (cfg.predictionType === 'sample') {
      x0 = m;
      e = f32(f32(x - f32(c.sqrtAlpha * x0)) / c.sqrtBeta);
    } else {
      x0 = f32(f32(c.sqrtAlpha * x) - f32(c.sqrtBeta * m));
      e = f32(f32(c.sqrtAlpha * m) + f32(c.sqrtBeta * x));
    }
    // Clipping x0 leaves epsilon as predicted (diffusers' default use_clipped_model_output=False).
    if (cfg.clipSample) x0 = Math.min(Math.max(x0, -range), range);
    predX0[i] = x0;
    out[i] = f32(f32(c.sqrtAlphaTarget * x0) + f32(c.sqrtBetaTarget * e));
  }
  return { sample: out, predX0 };
}

/** `DragPipeline.step(eps, t, x)`: returns (x_prev, pred_x0). */
export function dragStep(schedule: DdimSchedule, eps: Float32Array, t: number, x: Float32Array): StepResult {
  return applyStep(dragStepCoefficients(schedule, t), eps, x);
}

/** `DragPipeline.inv_step(eps, t, x)`: one inversion step up to level t; returns (x_next, pred_x0). */
export function inversionStep(schedule: DdimSchedule, eps: Float32Array, t: number, x: Float32Array): StepResult {
  return applyStep(inversionStepCoefficients(schedule, t), eps, x);
}

/**
 * The drag pipeline's schedule split for a number of actual steps k:
 * inversion visits the last k timesteps in ascending order, ending at t*;
 * denoising starts at t* and runs the same k timesteps descending.
 */
export function inversionPlan(schedule: DdimSchedule, actualSteps: number): { inversion: number[]; denoising: number[]; tStar: number } {
  const n = schedule.timesteps.length;
  if (!Number.isSafeInteger(actualSteps) || actualSteps < 1 || actualSteps > n) {
    throw new RangeError(`DDIM: the number of inversion steps must be an integer in 1..${n}, got ${actualSteps}`);
  }
  const denoising = schedule.timesteps.slice(n - actualSteps);
  return { inversion: [...denoising].reverse(), denoising, tStar: denoising[0]! };
}
