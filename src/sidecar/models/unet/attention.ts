/**
 * Multi-head attention (diffusers `Attention`: to_q, to_k, to_v without bias, to_out.0 with bias) and
 * its mutual self-attention variant.
 *
 * Heads are split from channels and attention runs as two batched MatMuls with a Softmax between, the
 * pattern onnxruntime optimises. Tokens travel as 2-D rows [batch·tokens, channels], so every projection
 * is one Gemm with no reshapes around it.
 *
 * Mutual self-attention (DragDiffusion's MutualSelfAttentionControl): the batch holds pairs of rows
 * [source, edited]; both rows of a pair attend to the SOURCE row's keys and values. The source row is
 * therefore unchanged, and keys/values are only computed for source rows.
 */
import type { Value } from '../../engine/graph';
import { matmul, reshape, slice, softmax, transpose } from '../../engine/ops';
import type { UNetBuildContext } from './context';
import { adaptableLinear } from './lora';

/** Token rows of `batch` sequences, flattened: value [batch·tokens, channels]. */
export interface TokenRows {
  readonly value: Value;
  readonly batch: number;
  readonly tokens: number;
}

export interface AttentionSpec {
  readonly heads: number;
  readonly headDim: number;
  /** Cross-attention context; null for self-attention. */
  readonly context: TokenRows | null;
  /** Use the source rows' keys and values for every row of a [source, edited] pair (self-attention only). */
  readonly mutual: boolean;
}

/** Sequences 0, 2, 4, … of token rows whose batch holds [source, edited] pairs. */
function sourceRows({ value, batch, tokens }: TokenRows): TokenRows {
  if (batch % 2 !== 0) throw new Error(`mutual self-attention needs [source, edited] row pairs, got batch ${batch}`);
  const channels = value.shape[1]!;
  const pairs = reshape(value, [batch / 2, 2, tokens, channels]);
  return { value: reshape(slice(pairs, [0], [1], [1]), [(batch / 2) * tokens, channels]), batch: batch / 2, tokens };
}

/** [rows·tokens, h·d] → [rows, h, tokens, d] (or [rows, h, d, tokens] for keys, so scores need no transpose). */
function splitHeads(x: Value, { batch, tokens }: TokenRows, heads: number, headDim: number, keys = false): Value {
  return transpose(reshape(x, [batch, tokens, heads, headDim]), keys ? [0, 2, 3, 1] : [0, 2, 1, 3]);
}

/** Attention under the current module path (attn1 / attn2) on token rows [B·N, C] → [B·N, C]. */
export function attention(ctx: UNetBuildContext, x: TokenRows, spec: AttentionSpec): Value {
  const { graph, w, lora } = ctx;
  const { batch, tokens } = x;
  const channels = x.value.shape[1]!;
  const { heads, headDim } = spec;
  const inner = heads * headDim;
  if (spec.mutual && spec.context) throw new Error('mutual attention applies to self-attention only');
  const kv = spec.context ?? (spec.mutual ? sourceRows(x) : x);

  // The softmax scale is folded into to_q (a constant-folded weight scale) instead of scaling scores.
  const q = graph.scope('to_q', () => adaptableLinear(x.value, w, inner, false, lora, headDim ** -0.5));
  const k = graph.scope('to_k', () => adaptableLinear(kv.value, w, inner, false, lora));
  const v = graph.scope('to_v', () => adaptableLinear(kv.value, w, inner, false, lora));
  const qh = splitHeads(q, x, heads, headDim);
  const kh = splitHeads(k, kv, heads, headDim, true);
  const vh = splitHeads(v, kv, heads, headDim);

  let out: Value;
  if (spec.mutual) {
    // Pairs as a leading axis; the source's keys/values broadcast over the pair's two rows.
    const pairs = batch / 2;
    const qp = reshape(qh, [pairs, 2, heads, tokens, headDim]);
    const kp = reshape(kh, [pairs, 1, heads, headDim, kv.tokens]);
    const vp = reshape(vh, [pairs, 1, heads, kv.tokens, headDim]);
    out = reshape(matmul(softmax(matmul(qp, kp), -1), vp), [batch, heads, tokens, headDim]);
  } else {
    out = matmul(softmax(matmul(qh, kh), -1), vh);
  }
  const merged = reshape(transpose(out, [0, 2, 1, 3]), [batch * tokens, inner]);
  return graph.scope('to_out', () => graph.scope(0, () => adaptableLinear(merged, w, channels, true, lora)));
}
