/**
 * Timestep conditioning: the sinusoidal embedding of the timestep and the TimestepEmbedding MLP
 * (linear → SiLU → linear) that turns it into the vector every resnet receives.
 */
import type { Graph, Value } from '../../engine/graph';
import { concat, cos, linear, mul, pad, reshape, silu, sin } from '../../engine/ops';
import type { ScopedWeights } from '../weights';

/**
 * The embedding's frequencies exp(−ln(10000) · i / (half − shift)), computed in float32 steps as the
 * reference does, so the products with the timestep round the same way.
 */
export function timestepFrequencies(dim: number, freqShift: number, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const scale = Math.fround(-Math.log(maxPeriod));
  const divisor = Math.fround(half - freqShift);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = Math.exp(Math.fround(Math.fround(scale * i) / divisor));
  return out;
}

/**
 * Sinusoidal embedding [rows, dim] of `timestep` (float32 [B], or a scalar giving one row that
 * broadcasts over the batch): [sin, cos] of t·frequency, or [cos, sin] with `flipSinToCos`.
 */
export function sinusoidalTimestepEmbedding(timestep: Value, dim: number, flipSinToCos: boolean, freqShift: number): Value {
  const graph: Graph = timestep.graph;
  if (timestep.rank > 1) throw new Error(`timestep must be a scalar or a [batch] vector, got rank ${timestep.rank}`);
  const rows = timestep.rank === 0 ? 1 : timestep.shape[0]!;
  const freqs = timestepFrequencies(dim, freqShift);
  const args = mul(reshape(timestep, [rows, 1]), graph.constant(freqs, [1, freqs.length]));
  const [s, c] = [sin(args), cos(args)];
  const emb = concat(flipSinToCos ? [c, s] : [s, c], 1);
  return dim % 2 === 1 ? pad(emb, [0, 0, 0, 1], 0) : emb;
}

/** TimestepEmbedding: linear_1 → SiLU → linear_2, under the current module path. */
export function timestepEmbeddingMlp(x: Value, w: ScopedWeights, outDim: number): Value {
  const graph = x.graph;
  const inDim = x.shape[1]!;
  const h = graph.scope('linear_1', () => linear(x, w('weight', [outDim, inDim]), w('bias', [outDim])));
  return graph.scope('linear_2', () => linear(silu(h), w('weight', [outDim, outDim]), w('bias', [outDim])));
}
