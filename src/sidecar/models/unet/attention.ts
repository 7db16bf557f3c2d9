/**
 * Multi-head attention (diffusers `Attention`: to_q, to_k, to_v without bias, to_out.0 with bias) and
 * its mutual self-attention variant.
 *
 * Heads are split from channels and attention runs as two batched MatMuls with a Softmax between, the
 * pattern onnxruntime optimises. Tokens travel as 2-D rows [batch·tokens, channels], so every projection
 * is one Gemm with no reshapes around it.
 *
 * Long sequences run in query chunks: each chunk's scores [.., chunk, M] stay small enough to live in
 * cache between the score MatMul, the Softmax and the value MatMul (one [h, N, N] score tensor of a
 * 64×64 latent is 512 MB), which makes attention faster on CPU and caps its transient memory.
 *
 * Mutual self-attention (DragDiffusion's MutualSelfAttentionControl): the batch holds pairs of rows
 * [source, edited]; both rows of a pair attend to the SOURCE row's keys and values. The source row is
 * therefore unchanged, and keys/values are only computed for source rows.
 */
import type { Value } from '../../engine/graph';
import { concat, matmul, reshape, slice, softmax, split, transpose } from '../../engine/ops';
import type { UNetBuildContext } from './context';
import { adaptableLinear } from './lora';

/** Token rows of `batch` sequences, flattened: value [batch·tokens, channels]. */
export interface TokenRows {
  readonly value: Value;
  readonly batch: number;
  readonly tokens: number;
}

/** Score-tensor size per query chunk that keeps a chunk's scores cache-resident (measured best on CPU). */
export const DEFAULT_ATTENTION_CHUNK_BYTES = 4 * 2 ** 20;
/** Below this many query rows per chunk, per-op overheads outweigh the cache benefit. */
const MIN_CHUNK_ROWS = 32;

export interface AttentionSpec {
  readonly heads: number;
  readonly headDim: number;
  /** Cross-attention context; null for self-attention. */
  readonly context: TokenRows | null;
  /** Use the source rows' keys and values for every row of a [source, edited] pair (self-attention only). */
  readonly mutual: boolean;
  /** Largest score tensor computed at once, in bytes; longer query sequences run in chunks. 0: never chunk. */
  readonly chunkBytes: number;
}

/** Query-chunk sizes along the token axis so that one chunk's scores stay near `chunkBytes`. */
function queryChunks(tokens: number, scoreBytesPerRow: number, chunkBytes: number): number[] {
  if (chunkBytes <= 0 || tokens * scoreBytesPerRow <= chunkBytes) return [tokens];
  let rows = 2 ** Math.floor(Math.log2(Math.max(1, chunkBytes / scoreBytesPerRow)));
  rows = Math.max(MIN_CHUNK_ROWS, rows);
  if (rows >= tokens) return [tokens];
  const sizes: number[] = [];
  for (let t = 0; t < tokens; t += rows) sizes.push(Math.min(rows, tokens - t));
  return sizes;
}

/** softmax(q kᵀ) v with q [..., N, d], kᵀ [..., d, M], v [..., M, d], in query chunks along axis `rank − 2`. */
function scaledDotProduct(q: Value, kT: Value, v: Value, chunkBytes: number): Value {
  const axis = q.rank - 2;
  const scoreBytesPerRow = (q.size / q.shape[axis]! / q.shape[q.rank - 1]!) * kT.shape[kT.rank - 1]! * 4;
  const sizes = queryChunks(q.shape[axis]!, scoreBytesPerRow, chunkBytes);
  const core = (qc: Value) => matmul(softmax(matmul(qc, kT), -1), v);
  return sizes.length === 1 ? core(q) : concat(split(q, sizes, axis).map(core), axis);
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
    out = reshape(scaledDotProduct(qp, kp, vp, spec.chunkBytes), [batch, heads, tokens, headDim]);
  } else {
    out = scaledDotProduct(qh, kh, vh, spec.chunkBytes);
  }
  const merged = reshape(transpose(out, [0, 2, 1, 3]), [batch * tokens, inner]);
  return graph.scope('to_out', () => graph.scope(0, () => adaptableLinear(merged, w, channels, true, lora)));
}
