/**
 * Preview images of a running edit: the decoded x0 prediction as a small PNG (at most 256 pixels
 * wide), base64-encoded so that it travels inside a progress notification without temporary files.
 */
import { encodePng, unitChwToRgb, type RgbImage } from '../../io/image';
import { resizeBilinearLikePil } from '../../io/resize';

export const PREVIEW_MAX_WIDTH = 256;

/** A [1, 3, H, W] image in [0, 1] as a base64 PNG no wider than `maxWidth`. */
export async function previewPng(image: Float32Array, width: number, height: number, maxWidth = PREVIEW_MAX_WIDTH): Promise<string> {
  let rgb: RgbImage = unitChwToRgb(image, width, height);
  if (width > maxWidth) rgb = resizeBilinearLikePil(rgb, maxWidth, Math.max(1, Math.round((height * maxWidth) / width)));
  return (await encodePng(rgb)).toString('base64');
}
