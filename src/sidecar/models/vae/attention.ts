/**
 * The VAE mid block's spatial self-attention (diffusers `Attention` with a GroupNorm in front and a
 * residual connection): every pixel attends to every pixel of the same image.
 *
 * Checkpoints name its tensors in two ways: current diffusers uses `group_norm`, `to_q`, `to_k`,
 * `to_v`, `to_out.0`; older hub VAEs use `query`, `key`, `value`, `proj_attn`. Some conversions store
 * the projections as 1×1 convolution kernels [C, C, 1, 1]. All of these bind to the same graph.
 */
import type { Value } from '../../engine/graph';
import { add, cast, linear, matmul, mul, reshape, softmax, transpose } from '../../engine/ops';
import type { CheckpointWeights } from '../weights';
import { norm, type VaeBlockContext } from './layers';

type Projection = 'q' | 'k' | 'v' | 'out';

const CURRENT_NAMES: Record<Projection, string> = { q: 'to_q', k: 'to_k', v: 'to_v', out: 'to_out.0' };
const LEGACY_NAMES: Record<Projection, string> = { q: 'query', k: 'key', v: 'value', out: 'proj_attn' };

export interface VaeAttentionContext extends VaeBlockContext {
  readonly checkpoint: CheckpointWeights;
}

/** Which naming scheme the checkpoint uses for the attention at the current module path. */
function projectionNames(ctx: VaeAttentionContext, scope: string): Record<Projection, string> {
  const has = (name: string): boolean => ctx.checkpoint.has(`${scope}.${name}.weight`);
  if (has(CURRENT_NAMES.q)) return CURRENT_NAMES;
  if (has(LEGACY_NAMES.q)) return LEGACY_NAMES;
  throw new Error(
    `${ctx.checkpoint.source}: no attention weights at ${scope} ` +
      `(looked for ${scope}.${CURRENT_NAMES.q}.weight and ${scope}.${LEGACY_NAMES.q}.weight)`,
  );
}

/**
 * The [C, C] weight of the projection whose module path is the current scope; 1×1 convolution kernels
 * [C, C, 1, 1] are viewed as [C, C].
 */
function projectionWeight(ctx: VaeAttentionContext, x: Value, c: number): Value {
  const shape = ctx.checkpoint.info(`${x.graph.currentScope}.weight`).shape;
  const isConvKernel = shape.length === 4 && shape[2] === 1 && shape[3] === 1;
  const weight = ctx.w('weight', isConvKernel ? [c, c, 1, 1] : [c, c]);
  return isConvKernel ? reshape(weight, [c, c]) : weight;
}

/**
 * softmax(q·kᵀ/√d). In float16 the scale is applied to q before the product (unscaled 512-wide dot
 * products can pass half precision's 65504) and the softmax runs in float32.
 */
function attentionProbabilities(q: Value, kT: Value, d: number): Value {
  const scale = 1 / Math.sqrt(d);
  if (q.dtype !== 'float16') return softmax(mul(matmul(q, kT), scale), -1);
  return cast(softmax(cast(matmul(mul(q, scale), kT), 'float32'), -1), 'float16');
}

/** Self-attention over the H·W positions of `x` [B, C, H, W], with `heads` heads; returns x + attention. */
export function spatialSelfAttention(ctx: VaeAttentionContext, x: Value, heads: number): Value {
  const graph = x.graph;
  const [b, c, h, w] = x.shape as [number, number, number, number];
  if (c % heads !== 0) throw new Error(`${graph.currentScope}: ${c} channels cannot be split into ${heads} heads`);
  const d = c / heads;
  const n = h * w;
  const scope = graph.currentScope;
  const names = projectionNames(ctx, scope);

  const normed = norm(ctx, 'group_norm', x);
  // [B, C, H, W] -> [B, H·W, C]: tokens along rows, channels along columns, as the linear layers expect.
  const tokens = transpose(reshape(normed, [b, c, n]), [0, 2, 1]);
  const project = (p: Projection, input: Value): Value =>
    graph.scope(names[p], () => linear(input, projectionWeight(ctx, input, c), ctx.w('bias', [c])));

  const q = project('q', tokens);
  const k = project('k', tokens);
  const v = project('v', tokens);

  let attended: Value;
  if (heads === 1) {
    // The SD VAE's case: one head, no head split.
    attended = matmul(attentionProbabilities(q, transpose(k, [0, 2, 1]), d), v);
  } else {
    const split = (t: Value): Value => transpose(reshape(t, [b, n, heads, d]), [0, 2, 1, 3]);
    const perHead = matmul(attentionProbabilities(split(q), transpose(reshape(k, [b, n, heads, d]), [0, 2, 3, 1]), d), split(v));
    attended = reshape(transpose(perHead, [0, 2, 1, 3]), [b, n, c]);
  }
  const out = project('out', attended);
  const spatial = reshape(transpose(out, [0, 2, 1]), [b, c, h, w]);
  return add(spatial, x);
}
