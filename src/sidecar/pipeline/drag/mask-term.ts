/**
 * The background ("mask") term of the drag loss: `λ·Σ |x_prev − x_prev_0|·(1 − mask)` over the latent,
 * with the editable-region mask (1 = editable) nearest-resized to latent size. The reference adds it
 * only when that resized mask is non-empty.
 *
 * The mask depends on the edit alone, so JS resizes it once and hands the graph the weights
 * λ·(1 − mask) (all zero when the term is off); the graph keeps one shape for every edit.
 */
import type { Value } from '../../engine/graph';
import { abs, mul, reduceSum, sub } from '../../engine/ops';

const f32 = Math.fround;

/**
 * `F.interpolate(mask, size, mode='nearest')` of a [H, W] map: source cell floor(dst·in/out), with
 * the scale in float32 as PyTorch computes it.
 */
export function resizeMaskNearest(mask: Float32Array, from: readonly [number, number], to: readonly [number, number]): Float32Array {
  const [inH, inW] = from;
  const [outH, outW] = to;
  if (mask.length !== inH * inW) throw new RangeError(`mask of ${mask.length} values is not ${inH}x${inW}`);
  const rows = nearestSources(inH, outH);
  const cols = nearestSources(inW, outW);
  const out = new Float32Array(outH * outW);
  for (let r = 0; r < outH; r++) for (let c = 0; c < outW; c++) out[r * outW + c] = mask[rows[r]! * inW + cols[c]!]!;
  return out;
}

function nearestSources(input: number, output: number): number[] {
  const scale = f32(input / output);
  return Array.from({ length: output }, (_, d) => Math.min(Math.floor(f32(d * scale)), input - 1));
}

/**
 * The graph's weights for a latent-size mask: λ·(1 − mask) where the mask has an editable cell, and
 * all zeros (no background term) where it is empty, as the reference's `using_mask`.
 */
export function backgroundWeights(latentMask: Float32Array, lam: number): Float32Array {
  const out = new Float32Array(latentMask.length);
  if (!latentMask.some((v) => v !== 0)) return out;
  for (let i = 0; i < out.length; i++) out[i] = lam * (1 - latentMask[i]!);
  return out;
}

/** Σ |xPrev − xPrev0| · weights ([1, 1, h, w] weights broadcast over the latent's channels). */
export function maskTerm(xPrev: Value, xPrev0: Value, weights: Value): Value {
  const all = xPrev.shape.map((_, i) => i);
  return reduceSum(mul(abs(sub(xPrev, xPrev0)), weights), all, false);
}

/**
 * FreeDrag's background term is a mean, `λ·mean(|x_prev − x_prev_0|·(1 − mask))` over the whole latent: the
 * same weighted sum with the weights divided by the latent's element count (`channels`·h·w).
 */
export function meanTermWeights(weights: Float32Array, channels: number): Float32Array {
  const count = channels * weights.length;
  return weights.map((v) => v / count);
}
