/**
 * DDIM inversion as DragDiffusion runs it (`DragPipeline.invert`): from the clean latent z0 up the
 * schedule's last k timesteps in ascending order (t = 1, 21, …, t*), each step evaluating the UNet at
 * the target timestep on the previous level's latent.
 */
import { inversionStep, type DdimSchedule } from './ddim';
import type { EpsFunction } from '../models/unet-runner';

export interface InversionProgress {
  /** Steps done (1-based) and their total. */
  readonly step: number;
  readonly total: number;
  readonly timestep: number;
  readonly latent: Float32Array;
}

/**
 * Inverts `z0` through `timesteps` (ascending, as `inversionPlan(...).inversion`). Returns the latent
 * at the last timestep (t*).
 */
export async function ddimInvert(
  schedule: DdimSchedule,
  timesteps: readonly number[],
  z0: Float32Array,
  eps: EpsFunction,
  onStep?: (progress: InversionProgress) => void,
): Promise<Float32Array> {
  let z = z0;
  for (const [i, t] of timesteps.entries()) {
    z = inversionStep(schedule, await eps(z, t), t, z).sample;
    onStep?.({ step: i + 1, total: timesteps.length, timestep: t, latent: z });
  }
  return z;
}
