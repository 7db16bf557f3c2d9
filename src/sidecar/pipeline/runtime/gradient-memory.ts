/**
 * How the pipeline's gradient graphs (the drag step's VJPs, the LoRA training step) trade time for
 * memory. A backward pass needs forward values; each policy says which it recomputes instead of
 * keeping, and whether onnxruntime's memory pattern plans the session's buffers.
 *
 * - `attention` (default): the UNet's self-attention probabilities are recomputed — the largest saved
 *   activations, cheap to recompute (one score MatMul and Softmax each) — and the session runs without
 *   the memory pattern, which on gradient graphs costs peak memory and gains no measurable speed.
 *   Quarter-width UNet at a 32×32 latent, forward + VJP: peak RSS 1334 MB → 840 MB for 6–7 % more run time
 *   (docs/benchmarks.md, "UNet").
 * - `blocks`: every UNet resnet and transformer (and, in the CLIPDrag step, every VAE-decoder block and
 *   CLIP encoder layer) is recomputed: the backward holds only block boundaries, for most of a second
 *   forward pass. The choice for large images or small machines (`rematerialize: true`).
 */
import type { Node } from '../../engine/graph';
import { unetAttentionSegment, unetBlockSegment } from '../../models/unet/remat';
import type { GraphMemoryOptions } from './graph-session';

export type GradientRecompute = 'attention' | 'blocks';

export interface GradientMemoryPolicy {
  readonly recompute: GradientRecompute;
  /** onnxruntime's memory pattern for the graph's session. */
  readonly memPattern: boolean;
}

export const DEFAULT_GRADIENT_MEMORY: GradientMemoryPolicy = { recompute: 'attention', memPattern: false };
export const BLOCK_GRADIENT_MEMORY: GradientMemoryPolicy = { recompute: 'blocks', memPattern: false };

/** The policy of the pipeline's `rematerialize` setting: true recomputes whole blocks. */
export function gradientMemoryPolicy(rematerialize: boolean): GradientMemoryPolicy {
  return rematerialize ? BLOCK_GRADIENT_MEMORY : DEFAULT_GRADIENT_MEMORY;
}

/** The UNet's recompute segments under `policy` (for `vjp(…, { recompute })`). */
export function unetRecomputeSegment(policy: GradientMemoryPolicy): (node: Node) => string | null {
  return policy.recompute === 'blocks' ? unetBlockSegment : unetAttentionSegment;
}

/** The session options of a graph built under `policy`. */
export function gradientSessionOptions(policy: GradientMemoryPolicy): GraphMemoryOptions {
  return { enableMemPattern: policy.memPattern };
}
