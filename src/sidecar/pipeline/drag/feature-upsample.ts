/**
 * The drag losses work on the UNet's up_blocks[2] feature bilinearly resized to the supervision grid,
 * half the image size: `F.interpolate(feat, (int(H/2), int(W/2)), mode='bilinear')`.
 *
 * `upsampleFeatures` materialises that map (its adjoint comes from the engine's VJP). The per-iteration
 * drag graph does not call it: its patch sampler folds the same matrices into each patch
 * (`featureGrid` in patch-sampler.ts), so the full-size map is never built.
 */
import type { Value } from '../../engine/graph';
import { resizeBilinear } from '../../engine/ops';

/** (int(H/2), int(W/2)) for an image of H×W pixels: where handle and target points live. */
export function supervisionSize(imageHeight: number, imageWidth: number): [number, number] {
  return [Math.trunc(0.5 * imageHeight), Math.trunc(0.5 * imageWidth)];
}

/** [1, C, h, w] → [1, C, Hs, Ws], bilinear with align_corners=False. */
export function upsampleFeatures(features: Value, supervision: readonly [number, number]): Value {
  return resizeBilinear(features, supervision);
}
