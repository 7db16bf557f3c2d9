/**
 * transformers' CLIPModel: image and text embeddings in the shared projection space (not normalised),
 * float32 whatever the weights' dtype (the guidance loss and its normalisation run in float32).
 */
import type { Graph, Value } from '../../engine/graph';
import { cast } from '../../engine/ops';
import type { ClipModelConfig } from '../config';
import type { CheckpointWeights } from '../weights';
import { clipLinear } from './encoder';
import { CLIP_TEXT_PREFIX, clipTextTransformer, isClipPositionIdsBuffer, pooledAtEos } from './text-model';
import { CLIP_VISION_PREFIX, clipVisionTransformer } from './vision-model';

export interface ClipModelWeights {
  readonly config: ClipModelConfig;
  readonly weights: CheckpointWeights;
}

/** `get_image_features`: visual_projection(post_layernorm(CLS)) → [B, projection_dim]. */
export function clipImageEmbeds(model: ClipModelWeights, pixelValues: Value): Value {
  const pooled = clipVisionTransformer(model.weights, model.config.visionConfig, pixelValues);
  return cast(clipLinear(model.weights.scoped(pixelValues.graph), 'visual_projection', pooled, model.config.projectionDim, false), 'float32');
}

/** `get_text_features`: text_projection(final_layer_norm(h) at the EOS token) → [B, projection_dim]. */
export function clipTextEmbeds(model: ClipModelWeights, ids: Value): Value {
  const graph = ids.graph;
  const hidden = clipTextTransformer(model.weights, model.config.textConfig, ids);
  // The transformer's output is float32; back to the weights' dtype for the projection (exact).
  const pooled = graph.scope('text_model', () => pooledAtEos(graph, cast(hidden, model.weights.dtype), ids));
  return cast(clipLinear(model.weights.scoped(graph), 'text_projection', pooled, model.config.projectionDim, false), 'float32');
}

/** Checkpoint prefixes each tower reads, for the "unused tensor" check of a built graph. */
export const CLIP_IMAGE_PREFIXES = [CLIP_VISION_PREFIX, 'visual_projection.'] as const;
export const CLIP_TEXT_PREFIXES = [CLIP_TEXT_PREFIX, 'text_projection.'] as const;

/**
 * Throws naming the tensors under `prefixes` that the graph did not bind (position-id buffers and
 * `logit_scale`, which the embeddings do not use, are exempt).
 */
export function assertClipPartBound(weights: CheckpointWeights, graph: Graph, prefixes: readonly string[]): void {
  weights.assertAllBound(graph, (key) => isClipPositionIdsBuffer(key) || !prefixes.some((p) => key.startsWith(p)));
}
