/**
 * The precision an edit runs in, from the user's preference.
 *
 * `auto` is fp32 on every device for now: fp16 is implemented and tested for its numerics on the CPU
 * provider, but its memory and speed on GPU providers have not been measured yet (docs/gpu.md says how),
 * so it stays opt-in. The CPU gains nothing from fp16 (onnxruntime's CPU kernels mostly convert to float32
 * and back), so `auto` will stay fp32 there.
 */
import type { Precision, PrecisionPreference } from '../../../shared/protocol';
import type { WeightsVariant } from '../../models/checkpoint/layout';
import type { ComputeDType } from '../../models/weights';

/** The same on every device for now (see above); the device joins the decision once GPU measurements exist. */
export function resolvePrecision(preference: PrecisionPreference | undefined): Precision {
  return preference === 'fp16' ? 'fp16' : 'fp32';
}

export function computeDtype(precision: Precision): ComputeDType {
  return precision === 'fp16' ? 'float16' : 'float32';
}

/**
 * Which weight files a model folder is loaded from: fp16 takes the `*.fp16.safetensors` variants where they exist
 * (half the bytes, and no float16 copy to write), fp32 the full-precision files, each falling back to the other.
 */
export function weightsVariantFor(precision: Precision): WeightsVariant {
  return precision === 'fp16' ? 'auto-fp16' : 'auto';
}
