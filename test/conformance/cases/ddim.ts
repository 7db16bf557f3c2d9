/**
 * DDIM: the schedule tables, the single steps (scheduler step, the drag pipeline's step and its
 * inversion step), and the chained runs through the pipeline's own loops on the engine: the latent of
 * the image (VAE encoder), the inversion to t* (35 of 50 steps), plain denoising back from t*, and the
 * reference-guided denoising of [z_inv, z_inv] and [z_inv, z_edit] with mutual self-attention.
 *
 * The reference constructs its DDIMScheduler explicitly with SD-1.5's settings (whatever the model
 * folder ships), so the same constant is used.
 */
import * as path from 'node:path';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { loadStableDiffusionModel } from '../../../src/sidecar/models/checkpoint/layout';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../src/sidecar/models/config';
import { planUNet } from '../../../src/sidecar/models/unet/plan';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { createDdimSchedule, dragStep, inversionPlan, inversionStep, schedulerStep, type DdimSchedule } from '../../../src/sidecar/pipeline/diffusion/ddim';
import { ddimDenoise, referenceGuidedEps, stackRows } from '../../../src/sidecar/pipeline/diffusion/denoise';
import { GraphSession, float32Output } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { IO, vaeEncodeGraph } from '../../../src/sidecar/pipeline/models/graphs';
import { ddimInvert } from '../../../src/sidecar/pipeline/diffusion/inversion';
import { UNetRunner } from '../../../src/sidecar/pipeline/models/unet-runner';
import { concatFloat32, float32Tensor, int64Tensor, modelFolders, numberSetting, type CaseRun } from '../case';
import type { GoldenTensors, HostTensor } from '../golden';

export const cases = ['ddim'] as const;

/** MasaCtrl settings of the case (`MutualSelfAttentionControl(start_step=0, start_layer=10)`). */
const MASA = { startStep: 0, startLayer: 10 } as const;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const steps = numberSetting(entry.settings, 'num_inference_steps', entry.name);
  const actual = numberSetting(entry.settings, 'num_actual_inference_steps', entry.name);
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, steps);
  const outputs: Record<string, HostTensor> = {
    alphas_cumprod: float32Tensor([schedule.alphasCumprod.length], schedule.alphasCumprod),
    timesteps: int64Tensor([schedule.timesteps.length], schedule.timesteps),
    t_inv: int64Tensor([1], [inversionPlan(schedule, actual).tStar]),
    ...(await singleSteps(entry.inputs, golden, schedule)),
  };
  const [folder] = modelFolders(entry, fixtureDir);
  if (!folder) throw new Error(`case ${entry.name}: no model folder in "${entry.model}"`);
  Object.assign(outputs, await chainedRuns(folder, golden, schedule, actual));
  return { outputs };
};

/** Single steps at every timestep the case provides inputs for (step_t<T>_eps / step_t<T>_x). */
async function singleSteps(inputs: Readonly<Record<string, unknown>>, golden: GoldenTensors, schedule: DdimSchedule): Promise<Record<string, HostTensor>> {
  const outputs: Record<string, HostTensor> = {};
  const stepTimesteps = Object.keys(inputs)
    .map((name) => /^step_t(\d+)_eps$/.exec(name)?.[1])
    .filter((t): t is string => t !== undefined)
    .map(Number);
  for (const t of stepTimesteps) {
    const eps = await golden.float32(`step_t${t}_eps`);
    const x = await golden.float32(`step_t${t}_x`);
    const shape = golden.shape(`step_t${t}_x`);
    const drag = dragStep(schedule, eps, t, x);
    const inv = inversionStep(schedule, eps, t, x);
    outputs[`step_t${t}_x_prev`] = float32Tensor(shape, drag.sample);
    outputs[`step_t${t}_pred_x0`] = float32Tensor(shape, drag.predX0);
    outputs[`inv_step_t${t}_x_next`] = float32Tensor(shape, inv.sample);
    outputs[`inv_step_t${t}_pred_x0`] = float32Tensor(shape, inv.predX0);
    outputs[`scheduler_step_t${t}`] = float32Tensor(shape, schedulerStep(schedule, eps, t, x).sample);
  }
  return outputs;
}

/** The image's latent, the inversion, plain denoising and the two mutual-self-attention denoisings. */
async function chainedRuns(folder: string, golden: GoldenTensors, schedule: DdimSchedule, actual: number): Promise<Record<string, HostTensor>> {
  const sd = await loadStableDiffusionModel(path.resolve(folder));
  const unet = { plan: planUNet(sd.unet), weights: await CheckpointWeights.open(sd.layout.unet.weightsPaths) };
  const vae = { config: sd.vae, weights: await CheckpointWeights.open(sd.layout.vae.weightsPaths) };
  const [, , height, width] = golden.shape('image') as [number, number, number, number];
  const latentShape = golden.shape('z_edit') as [number, number, number, number];
  const [, channels, h, w] = latentShape;
  const context = await golden.float32('encoder_hidden_states');
  const tokens = golden.shape('encoder_hidden_states')[1]!;
  const plan = inversionPlan(schedule, actual);

  const engine = new Engine();
  const session = new GraphSession(engine, { device: 'cpu' });
  try {
    const encoder = await session.compile(vaeEncodeGraph(vae, 1, height, width), 'vae encode');
    const mean = float32Output(await session.run(encoder, { [IO.image]: await golden.float32('image') }, [IO.mean]), IO.mean);
    const z0 = mean.map((v) => Math.fround(v * sd.vae.scalingFactor));

    const single = await UNetRunner.create(session, unet, { batch: 1, height: h, width: w, tokens, context, label: 'unet eps' });
    const inversion: Float32Array[] = [z0];
    const zInv = await ddimInvert(schedule, plan.inversion, z0, single.eps, ({ latent }) => inversion.push(latent));
    const denoising: Float32Array[] = [zInv];
    await ddimDenoise(schedule, plan.denoising, zInv, (x, t) => single.eps(x, t), ({ latent }) => denoising.push(latent));

    const guided = await referenceGuidedEps(session, { unet, height: h, width: w, tokens, context, lora: null, masa: MASA });
    const masaSame = await ddimDenoise(schedule, plan.denoising, stackRows(zInv, zInv), guided);
    const masaEdit = await ddimDenoise(schedule, plan.denoising, stackRows(zInv, await golden.float32('z_edit')), guided);

    const stacked = (list: Float32Array[]) => float32Tensor([list.length, channels, h, w], concatFloat32(list));
    return {
      z0: float32Tensor(latentShape, z0),
      inversion_latents: stacked(inversion),
      z_inv: float32Tensor(latentShape, zInv),
      denoise_latents: stacked(denoising),
      denoise_final: float32Tensor(latentShape, denoising[denoising.length - 1]!),
      masa_same_final: float32Tensor([2, channels, h, w], masaSame),
      masa_edit_final: float32Tensor([2, channels, h, w], masaEdit),
    };
  } finally {
    await session.dispose();
    await engine.close();
  }
}
