/**
 * The precision an edit runs in, from the user's preference, and what each precision means for the models:
 *
 * | precision      | weights held in | arithmetic                          | weight files             |
 * |----------------|-----------------|-------------------------------------|--------------------------|
 * | `fp32`         | float32         | float32                             | full precision           |
 * | `fp16`         | float16         | float16, float32 islands (models.md)| `*.fp16` (or a copy)     |
 * | `fp16-weights` | float16         | float32 (a cast per weight and use) | `*.fp16` (or a copy)     |
 *
 * `auto` is fp32 here; the memory policy turns it into fp16-weights when only that fits (edit-memory.ts). fp16 is
 * implemented and tested for its numerics on the CPU provider, but its memory and speed on GPU providers have
 * not been measured yet (docs/gpu.md says how), so it stays opt-in. The CPU gains nothing from fp16 arithmetic
 * (onnxruntime's CPU kernels mostly convert to float32 and back); fp16-weights is what saves memory there.
 */
import type { Precision, PrecisionPreference } from '../../../shared/protocol';
import type { FilePrecision } from '../../hub';
import type { WeightsVariant } from '../../models/checkpoint/layout';
import type { ComputeDType } from '../../models/weights';

/** The precision of an explicit preference; `auto` starts from fp32 (the memory policy may lower the weights). */
export function resolvePrecision(preference: PrecisionPreference | undefined): Precision {
  return preference === 'fp16' || preference === 'fp16-weights' ? preference : 'fp32';
}

export function computeDtype(precision: Precision): ComputeDType {
  return precision === 'fp16' ? 'float16' : 'float32';
}

/** The dtype the weights are held in while an edit runs. */
export function weightStorageDtype(precision: Precision): ComputeDType {
  return precision === 'fp32' ? 'float32' : 'float16';
}

/** The weight files to fetch from a hub: the fp16 variants wherever the weights are held in float16. */
export function weightFilesPrecision(precision: Precision): FilePrecision {
  return precision === 'fp32' ? 'fp32' : 'fp16';
}

/**
 * Which weight files a model folder is loaded from: half-precision weights take the `*.fp16.safetensors` variants
 * where they exist (half the bytes, and no float16 copy to write), fp32 the full-precision files, each falling
 * back to the other.
 */
export function weightsVariantFor(precision: Precision): WeightsVariant {
  return precision === 'fp32' ? 'auto' : 'auto-fp16';
}
