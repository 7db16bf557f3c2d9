/**
 * transformers' CLIPTextTransformer (Stable Diffusion's text encoder, and CLIPModel's text tower):
 * token + position embeddings, a causally masked transformer, final_layer_norm.
 */
import type { Graph, Value } from '../../engine/graph';
import { add, argmax, cast, equal, gather, matmul, reshape, slice } from '../../engine/ops';
import type { ClipTextConfig } from '../config';
import type { CheckpointWeights } from '../weights';
import { causalMask, clipEncoder, clipLayerNorm } from './encoder';

/** The checkpoint prefix of the text tower, in CLIPTextModel and CLIPModel checkpoints alike. */
export const CLIP_TEXT_PREFIX = 'text_model.';

/** A buffer some transformers versions save with the weights; the graph computes positions itself. */
export function isClipPositionIdsBuffer(key: string): boolean {
  return key.endsWith('embeddings.position_ids');
}

/**
 * `text_model(input_ids).last_hidden_state`: ids int64 [B, L] (L ≤ max_position_embeddings) →
 * [B, L, hidden_size]. No padding mask: Stable Diffusion and CLIP use the causal mask alone.
 */
export function clipTextTransformer(weights: CheckpointWeights, config: ClipTextConfig, ids: Value): Value {
  const graph = ids.graph;
  if (ids.dtype !== 'int64' || ids.rank !== 2 || ids.shape[1]! > config.maxPositionEmbeddings) {
    throw new Error(
      `CLIP text model: expected int64 token ids [B, L] with L ≤ ${config.maxPositionEmbeddings}, got ${ids.dtype}[${ids.shape.join(', ')}]`,
    );
  }
  const length = ids.shape[1]!;
  const w = weights.scoped(graph);
  const d = config.hiddenSize;
  return graph.scope('text_model', () => {
    const embedded = graph.scope('embeddings', () => {
      const tokens = graph.scope('token_embedding', () => gather(w('weight', [config.vocabSize, d]), ids, 0));
      const positions = graph.scope('position_embedding', () =>
        slice(w('weight', [config.maxPositionEmbeddings, d]), [0], [length], [0]),
      );
      return add(tokens, positions);
    });
    const hidden = clipEncoder(w, config, embedded, causalMask(graph, length, weights.dtype));
    // last_hidden_state leaves in float32 whatever the weights' dtype.
    return cast(clipLayerNorm(w, 'final_layer_norm', hidden, config.layerNormEps), 'float32');
  });
}

/**
 * The hidden state at each sequence's end-of-text token, found as CLIP finds it: the first position of
 * the largest id (the EOS id 49407 is the largest in CLIP's vocabulary). [B, L, D] → [B, D].
 */
export function pooledAtEos(graph: Graph, hidden: Value, ids: Value): Value {
  const [b, length, d] = hidden.shape as [number, number, number];
  // ArgMax on int32 ids: every runtime implements it (ids < 2^31 by construction of the vocabulary).
  const eos = argmax(cast(ids, 'int32'), 1, true);
  const positions = graph.constant(
    Array.from({ length }, (_, i) => i),
    [1, length],
    'int64',
  );
  // A one-hot row per sequence picks the EOS position with a batched MatMul (also differentiable).
  const oneHot = reshape(cast(equal(positions, eos), hidden.dtype), [b, 1, length]);
  return reshape(matmul(oneHot, hidden), [b, d]);
}
