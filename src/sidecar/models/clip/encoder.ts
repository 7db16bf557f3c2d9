/**
 * The transformer both CLIP towers share (transformers' CLIPEncoderLayer): pre-LayerNorm blocks of
 * multi-head self-attention and a two-layer MLP, each added back to the residual stream.
 */
import type { Graph, Value } from '../../engine/graph';
import { add, gelu, layerNorm, linear, matmul, mul, quickGelu, reshape, softmax, transpose } from '../../engine/ops';
import type { ScopedWeights } from '../weights';

export interface ClipEncoderSpec {
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  readonly hiddenAct: string;
  readonly layerNormEps: number;
}

/** The activations transformers' ACT2FN maps CLIP's `hidden_act` to. */
export function clipActivation(hiddenAct: string): (x: Value) => Value {
  switch (hiddenAct) {
    case 'quick_gelu':
      return quickGelu;
    case 'gelu':
      return (x) => gelu(x, 'none');
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return (x) => gelu(x, 'tanh');
    default:
      throw new Error(`CLIP hidden_act "${hiddenAct}" is not supported (expected quick_gelu, gelu, gelu_new or gelu_pytorch_tanh)`);
  }
}

/** LayerNorm over the last axis, named `name` under the current module path. */
export function clipLayerNorm(w: ScopedWeights, name: string, x: Value, eps: number): Value {
  const d = x.shape[x.rank - 1]!;
  return x.graph.scope(name, () => layerNorm(x, w('weight', [d]), w('bias', [d]), eps, -1));
}

/** A linear layer `name` with weight [out, in] (and a bias unless `bias` is false). */
export function clipLinear(w: ScopedWeights, name: string, x: Value, out: number, bias = true): Value {
  const inFeatures = x.shape[x.rank - 1]!;
  return x.graph.scope(name, () => linear(x, w('weight', [out, inFeatures]), bias ? w('bias', [out]) : undefined));
}

/**
 * An additive causal mask [L, L]: 0 where a query may see a key (key ≤ query), the dtype's minimum
 * elsewhere (as transformers does), so masked scores vanish after the softmax.
 */
export function causalMask(graph: Graph, length: number, dtype: 'float32' | 'float16' = 'float32'): Value {
  const lowest = dtype === 'float16' ? -65504 : -3.4028234663852886e38;
  const data = new Float32Array(length * length);
  for (let q = 0; q < length; q++) for (let k = q + 1; k < length; k++) data[q * length + k] = lowest;
  return graph.constant(data, [length, length], dtype);
}

/** CLIPAttention: q scaled by head_dim^-0.5, softmax(q kᵀ + mask) v per head, then out_proj. */
function selfAttention(w: ScopedWeights, spec: ClipEncoderSpec, x: Value, mask: Value | null): Value {
  const [b, n, d] = x.shape as [number, number, number];
  const heads = spec.numAttentionHeads;
  const headDim = d / heads;
  const q = mul(clipLinear(w, 'q_proj', x, d), headDim ** -0.5);
  const k = clipLinear(w, 'k_proj', x, d);
  const v = clipLinear(w, 'v_proj', x, d);
  // [B, N, D] -> [B, heads, N, head_dim]; keys go straight to [B, heads, head_dim, N] for q·kᵀ.
  const qh = transpose(reshape(q, [b, n, heads, headDim]), [0, 2, 1, 3]);
  const khT = transpose(reshape(k, [b, n, heads, headDim]), [0, 2, 3, 1]);
  const vh = transpose(reshape(v, [b, n, heads, headDim]), [0, 2, 1, 3]);
  let scores = matmul(qh, khT);
  if (mask) scores = add(scores, mask);
  const attended = matmul(softmax(scores, -1), vh);
  const merged = reshape(transpose(attended, [0, 2, 1, 3]), [b, n, d]);
  return clipLinear(w, 'out_proj', merged, d);
}

function encoderLayer(w: ScopedWeights, spec: ClipEncoderSpec, x: Value, mask: Value | null): Value {
  const graph = x.graph;
  const act = clipActivation(spec.hiddenAct);
  const normed1 = clipLayerNorm(w, 'layer_norm1', x, spec.layerNormEps);
  const h = add(x, graph.scope('self_attn', () => selfAttention(w, spec, normed1, mask)));
  const normed2 = clipLayerNorm(w, 'layer_norm2', h, spec.layerNormEps);
  const mlp = graph.scope('mlp', () => clipLinear(w, 'fc2', act(clipLinear(w, 'fc1', normed2, spec.intermediateSize)), spec.hiddenSize));
  return add(h, mlp);
}

/** `encoder.layers.N` for N in 0..num_hidden_layers−1 over x [B, N, D]; `mask` is additive [N, N] or null. */
export function clipEncoder(w: ScopedWeights, spec: ClipEncoderSpec, x: Value, mask: Value | null): Value {
  const graph = x.graph;
  if (x.shape[2] !== spec.hiddenSize) {
    throw new Error(`${graph.currentScope}: hidden states [${x.shape.join(', ')}] do not have hidden_size ${spec.hiddenSize}`);
  }
  return graph.scope('encoder', () =>
    graph.scope('layers', () => {
      let h = x;
      for (let i = 0; i < spec.numHiddenLayers; i++) h = graph.scope(i, () => encoderLayer(w, spec, h, mask));
      return h;
    }),
  );
}
