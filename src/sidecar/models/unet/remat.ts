/**
 * Rematerialisation policy for differentiating through the UNet (`vjp(..., { recompute })`): every
 * resnet and every Transformer2DModel is one segment whose insides are recomputed in the backward pass
 * from the values entering it, instead of being kept from the forward. The drag step's VJP w.r.t. the
 * latent then holds only block boundaries (plus one block's insides at a time), at the cost of running
 * most of the forward a second time.
 */
import type { Node } from '../../engine/graph';

const BLOCK = /^((?:down_blocks|up_blocks)\.\d+\.(?:resnets|attentions)\.\d+|mid_block\.(?:resnets|attentions)\.\d+)(?:\.|$)/;

export function unetBlockSegment(node: Pick<Node, 'scope'>): string | null {
  return BLOCK.exec(node.scope)?.[1] ?? null;
}
