/**
 * transformers' CLIPVisionTransformer (ViT): patch embedding, class token, position embedding,
 * `pre_layrnorm` (sic, the checkpoint's spelling), transformer, `post_layernorm` of the class token.
 */
import type { Value } from '../../engine/graph';
import { add, cast, concat, conv2d, expand, reshape, slice, transpose } from '../../engine/ops';
import type { ClipVisionConfig } from '../config';
import type { CheckpointWeights } from '../weights';
import { clipEncoder, clipLayerNorm } from './encoder';

export const CLIP_VISION_PREFIX = 'vision_model.';

/**
 * pixel_values [B, num_channels, image_size, image_size] (float32) → pooled output [B, hidden_size], in
 * the weights' dtype.
 */
export function clipVisionTransformer(weights: CheckpointWeights, config: ClipVisionConfig, pixelValues: Value): Value {
  const graph = pixelValues.graph;
  const { imageSize, patchSize, numChannels, hiddenSize: d } = config;
  const [b, c, h, wd] = pixelValues.shape as [number, number, number, number];
  if (pixelValues.rank !== 4 || c !== numChannels || h !== imageSize || wd !== imageSize) {
    throw new Error(
      `CLIP vision model: expected pixel_values [B, ${numChannels}, ${imageSize}, ${imageSize}], got [${pixelValues.shape.join(', ')}]`,
    );
  }
  const grid = imageSize / patchSize;
  const patches = grid * grid;
  const w = weights.scoped(graph);
  return graph.scope('vision_model', () => {
    const embedded = graph.scope('embeddings', () => {
      const conv = graph.scope('patch_embedding', () =>
        conv2d(cast(pixelValues, weights.dtype), w('weight', [d, numChannels, patchSize, patchSize]), undefined, { stride: patchSize, padding: 0 }),
      );
      // [B, D, g, g] -> [B, g·g, D]: one token per patch, row-major over the grid.
      const tokens = transpose(reshape(conv, [b, d, patches]), [0, 2, 1]);
      const cls = expand(reshape(w('class_embedding', [d]), [1, 1, d]), [b, 1, d]);
      const positions = graph.scope('position_embedding', () => w('weight', [patches + 1, d]));
      return add(concat([cls, tokens], 1), positions);
    });
    const hidden = clipEncoder(w, config, clipLayerNorm(w, 'pre_layrnorm', embedded, config.layerNormEps), null);
    const cls = reshape(slice(hidden, [0], [1], [1]), [b, d]);
    return clipLayerNorm(w, 'post_layernorm', cls, config.layerNormEps);
  });
}
