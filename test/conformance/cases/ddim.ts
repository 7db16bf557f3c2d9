/**
 * DDIM: the schedule tables and the single steps (scheduler step, the drag
 * pipeline's step and its inversion step). The chained inversion/denoising
 * outputs need the UNet and VAE and are not produced here yet.
 *
 * The reference constructs its DDIMScheduler explicitly with SD-1.5's
 * settings (whatever the model folder ships), so the same constant is used.
 */
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../src/sidecar/models/config';
import { createDdimSchedule, dragStep, inversionPlan, inversionStep, schedulerStep } from '../../../src/sidecar/pipeline/ddim';
import { float32Tensor, int64Tensor, numberSetting, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['ddim'] as const;

export const run: CaseRun = async (entry, golden) => {
  const steps = numberSetting(entry.settings, 'num_inference_steps', entry.name);
  const actual = numberSetting(entry.settings, 'num_actual_inference_steps', entry.name);
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, steps);
  const outputs: Record<string, HostTensor> = {
    alphas_cumprod: float32Tensor([schedule.alphasCumprod.length], schedule.alphasCumprod),
    timesteps: int64Tensor([schedule.timesteps.length], schedule.timesteps),
    t_inv: int64Tensor([1], [inversionPlan(schedule, actual).tStar]),
  };

  // Single steps at every timestep the case provides inputs for (step_t<T>_eps / step_t<T>_x).
  const stepTimesteps = Object.keys(entry.inputs)
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
  return { outputs };
};
