/**
 * Multi-head attention (diffusers `Attention`: to_q, to_k, to_v without bias, to_out.0 with bias) and
 * its mutual self-attention variant.
 *
 * Heads are split from channels and attention runs as two batched MatMuls with a Softmax between, the
 * pattern onnxruntime optimises. Queries are scaled by head_dim^-0.5 before the first MatMul, which costs
 * one multiply per query element instead of one per score.
 *
 * Mutual self-attention (DragDiffusion's MutualSelfAttentionControl): the batch holds pairs of rows
 * [source, edited]; both rows of a pair attend to the SOURCE row's keys and values. The source row is
 * therefore unchanged, and keys/values are only computed for source rows.
 */
import type { Value } from '../../engine/graph';
import { matmul, mul, reshape, slice, softmax, transpose } from '../../engine/ops';
import type { UNetBuildContext } from './context';
import { adaptableLinear } from './lora';

export interface AttentionSpec {
  readonly heads: number;
  readonly headDim: number;
  /** Cross-attention context [B, M, D]; null for self-attention. */
  readonly context: Value | null;
  /** Use the source rows' keys and values for every row of a [source, edited] pair (self-attention only). */
  readonly mutual: boolean;
}

/** Rows 0, 2, 4, … of a [B, …] tensor whose batch holds [source, edited] pairs: [B/2, …]. */
function sourceRows(x: Value): Value {
  const [b, ...rest] = x.shape;
  if (b! % 2 !== 0) throw new Error(`mutual self-attention needs [source, edited] row pairs, got batch ${b}`);
  const pairs = reshape(x, [b! / 2, 2, ...rest]);
  return reshape(slice(pairs, [0], [1], [1]), [b! / 2, ...rest]);
}

/** Attention under the current module path (attn1 / attn2). x: [B, N, C] → [B, N, C]. */
export function attention(ctx: UNetBuildContext, x: Value, spec: AttentionSpec): Value {
  const { graph, w, lora } = ctx;
  const [batch, tokens, channels] = x.shape as [number, number, number];
  const { heads, headDim } = spec;
  const inner = heads * headDim;
  if (spec.mutual && spec.context) throw new Error('mutual attention applies to self-attention only');

  const keySource = spec.context ?? (spec.mutual ? sourceRows(x) : x);
  const kvBatch = keySource.shape[0]!;
  const kvTokens = keySource.shape[1]!;

  const q = graph.scope('to_q', () => adaptableLinear(x, w, inner, false, lora));
  const k = graph.scope('to_k', () => adaptableLinear(keySource, w, inner, false, lora));
  const v = graph.scope('to_v', () => adaptableLinear(keySource, w, inner, false, lora));

  // [B, N, h·d] → [B, h, N, d]; keys go straight to [B, h, d, M] so the score MatMul needs no transpose.
  const qh = transpose(reshape(mul(q, headDim ** -0.5), [batch, tokens, heads, headDim]), [0, 2, 1, 3]);
  const kh = transpose(reshape(k, [kvBatch, kvTokens, heads, headDim]), [0, 2, 3, 1]);
  const vh = transpose(reshape(v, [kvBatch, kvTokens, heads, headDim]), [0, 2, 1, 3]);

  let out: Value;
  if (spec.mutual) {
    // Pairs as a leading axis; the source's keys/values broadcast over the pair's two rows.
    const pairs = batch / 2;
    const qp = reshape(qh, [pairs, 2, heads, tokens, headDim]);
    const kp = reshape(kh, [pairs, 1, heads, headDim, kvTokens]);
    const vp = reshape(vh, [pairs, 1, heads, kvTokens, headDim]);
    out = reshape(matmul(softmax(matmul(qp, kp), -1), vp), [batch, heads, tokens, headDim]);
  } else {
    out = matmul(softmax(matmul(qh, kh), -1), vh);
  }
  const merged = reshape(transpose(out, [0, 2, 1, 3]), [batch, tokens, inner]);
  return graph.scope('to_out', () => graph.scope(0, () => adaptableLinear(merged, w, channels, true, lora)));
}
