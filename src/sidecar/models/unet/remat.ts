/**
 * Rematerialisation policies for differentiating through the UNet (`vjp(..., { recompute })`): forward
 * values in a segment are not kept for the backward pass but recomputed from the values entering the
 * segment when the backward pass reaches it.
 *
 * - `unetAttentionSegment`: the self-attention probabilities (score MatMul + Softmax of every attn1).
 *   They are by far the largest saved activations ([heads, N, N] per attention: 512 MB per attention
 *   of SD-1.5 at a 64×64 latent); recomputing them costs one score MatMul and Softmax per attention.
 * - `unetBlockSegment`: every resnet and every Transformer2DModel. The backward then holds only block
 *   boundaries (plus one block's insides at a time), at the cost of running most of the forward again.
 */
import type { Node } from '../../engine/graph';

const BLOCK = /^((?:down_blocks|up_blocks)\.\d+\.(?:resnets|attentions)\.\d+|mid_block\.(?:resnets|attentions)\.\d+)(?:\.|$)/;

export function unetBlockSegment(node: Pick<Node, 'scope'>): string | null {
  return BLOCK.exec(node.scope)?.[1] ?? null;
}

/**
 * The attention core of every attn1 (score MatMul, Softmax, value MatMul). The value MatMul belongs to
 * the segment so that its backward rule reads the recomputed probabilities; only what the backward
 * pass asks for is recomputed (scores and Softmax, not the value product).
 */
export function unetAttentionSegment(node: Pick<Node, 'scope' | 'op'>): string | null {
  return node.scope.endsWith('.attn1') && (node.op === 'MatMul' || node.op === 'Softmax') ? node.scope : null;
}
