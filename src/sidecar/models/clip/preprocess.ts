/**
 * CLIPDrag's image preprocessing in front of CLIP's vision tower (`cal_global_grad`): average-pool the
 * [0, 1] image to CLIP's input size, remap it, then normalise per channel.
 */
import type { Value } from '../../engine/graph';
import { adaptiveAvgPool2d, add, mul } from '../../engine/ops';

/** OpenAI CLIP's per-channel normalisation statistics (RGB). */
export const OPENAI_CLIP_MEAN: readonly number[] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly number[] = [0.26862954, 0.26130258, 0.27577711];

/** An affine remap `x·scale + offset` applied to the pooled image before normalisation. */
export interface PixelRemap {
  readonly scale: number;
  readonly offset: number;
}

/**
 * The reference code's `(x + 1) / 2` after pooling: it maps the [0, 1] image to [0.5, 1] before CLIP's
 * normalisation (it looks unintended, but it shapes the reference's gradients, so it is the default).
 */
export const CLIPDRAG_REFERENCE_REMAP: PixelRemap = Object.freeze({ scale: 0.5, offset: 0.5 });
/** No remap: the [0, 1] image goes to the normalisation as CLIP's own preprocessing would send it. */
export const IDENTITY_REMAP: PixelRemap = Object.freeze({ scale: 1, offset: 0 });

export interface ClipPreprocessOptions {
  /** Default: CLIPDRAG_REFERENCE_REMAP. */
  readonly remap?: PixelRemap;
  /** Per-channel mean and std; default OpenAI CLIP's. */
  readonly mean?: readonly number[];
  readonly std?: readonly number[];
}

/**
 * image [B, C, H, W] in [0, 1] (any H, W) → pixel_values [B, C, size, size]. The pool follows
 * torch's AdaptiveAvgPool2d: it also enlarges smaller images and does not keep the aspect ratio.
 */
export function clipPreprocess(image: Value, size: number, options: ClipPreprocessOptions = {}): Value {
  const graph = image.graph;
  const remap = options.remap ?? CLIPDRAG_REFERENCE_REMAP;
  const mean = options.mean ?? OPENAI_CLIP_MEAN;
  const std = options.std ?? OPENAI_CLIP_STD;
  const channels = image.shape[1]!;
  if (image.rank !== 4 || mean.length !== channels || std.length !== channels) {
    throw new Error(
      `CLIP preprocessing: expected an image [B, ${mean.length}, H, W] matching ${mean.length} mean/std entries, got [${image.shape.join(', ')}] with ${std.length} std entries`,
    );
  }
  return graph.scope('clip_preprocess', () => {
    const pooled = adaptiveAvgPool2d(image, [size, size]);
    // ((x·scale + offset) − mean) / std, folded into one per-channel multiply and add.
    const gain = graph.constant(std.map((s) => remap.scale / s), [1, channels, 1, 1]);
    const bias = graph.constant(
      std.map((s, c) => (remap.offset - mean[c]!) / s),
      [1, channels, 1, 1],
    );
    return add(mul(pooled, gain), bias);
  });
}
