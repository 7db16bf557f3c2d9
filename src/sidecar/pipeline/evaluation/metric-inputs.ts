/**
 * The image preparation of DragDiffusion's DragBench evaluation (drag_bench_evaluation/run_eval_similarity.py and
 * run_eval_point_matching.py), in plain TypeScript on 8-bit RGB pixels so that the metrics see the reference's
 * exact numbers:
 *
 * - the result is first resized to the source's size with PIL BILINEAR (every metric compares at that size);
 * - LPIPS takes both images in [−1, 1] (x / 127.5 − 1), DIFT as (x / 255 − 0.5) · 2;
 * - CLIP takes OpenAI CLIP's `_transform(224)`: PIL BICUBIC resize of the short side to 224, a centre crop, then
 *   (x / 255 − mean) / std per channel.
 */
import { OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../../models/clip';
import { resizeBicubicLikePil, resizeBilinearLikePil, type Pixels8 } from '../../io/resize';

const f32 = Math.fround;

/** The result at the source's size, as the reference resizes it before computing any metric. */
export function resultAtSourceSize(result: Pixels8, source: { readonly width: number; readonly height: number }): Pixels8 {
  requireRgb(result);
  return resizeBilinearLikePil(result, source.width, source.height);
}

/** [3, H, W] planes of x / 127.5 − 1 (run_eval_similarity's `preprocess_image`). */
export function lpipsInput(image: Pixels8): Float32Array {
  return planes(image, (v) => f32(f32(v / 127.5) - 1));
}

/** [3, H, W] planes of (x / 255 − 0.5) · 2 (run_eval_point_matching's image tensor). */
export function diftInput(image: Pixels8): Float32Array {
  return planes(image, (v) => f32(f32(f32(v / 255) - 0.5) * 2));
}

/** [3, size, size] pixel values as OpenAI CLIP's preprocessing makes them from an RGB image. */
export function clipInput(image: Pixels8, size = 224): Float32Array {
  requireRgb(image);
  const { width, height } = image;
  // torchvision Resize(size) on a PIL image: the short side becomes `size`, the long side int(size · long / short).
  const [resizedWidth, resizedHeight] =
    width <= height ? [size, Math.trunc((size * height) / width)] : [Math.trunc((size * width) / height), size];
  const resized = Math.min(width, height) === size ? image : resizeBicubicLikePil(image, resizedWidth, resizedHeight);
  // CenterCrop: int(round((H − size) / 2.0)) with Python's round half to even.
  const top = roundHalfEven((resized.height - size) / 2);
  const left = roundHalfEven((resized.width - size) / 2);
  const out = new Float32Array(3 * size * size);
  const mean = OPENAI_CLIP_MEAN.map(f32);
  const std = OPENAI_CLIP_STD.map(f32);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = resized.data[((top + y) * resized.width + left + x) * 3 + c]!;
        out[(c * size + y) * size + x] = f32(f32(f32(v / 255) - mean[c]!) / std[c]!);
      }
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

function planes(image: Pixels8, map: (value: number) => number): Float32Array {
  requireRgb(image);
  const n = image.width * image.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) for (let i = 0; i < n; i++) out[c * n + i] = map(image.data[i * 3 + c]!);
  return out;
}

function requireRgb(image: Pixels8): void {
  if (image.channels !== 3) throw new Error(`the evaluation needs RGB images, got ${image.channels} channels`);
}
