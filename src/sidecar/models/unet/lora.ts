/**
 * LoRA adapters as graph inputs: y = W x + b + scale · B (A x), with A [rank, in] and B [out, rank]
 * fed at run time (float32 whatever the model's dtype). Training differentiates the graph w.r.t. these inputs; inference feeds a cached LoRA,
 * so one compiled graph serves every LoRA of the same rank.
 */
import type { Graph, Value } from '../../engine/graph';
import { add, cast, linear, mul } from '../../engine/ops';
import type { ScopedWeights } from '../weights';

export interface LoraOptions {
  readonly rank: number;
  /** Multiplier of the adapter's output (diffusers' LoRA scale; 1 when no network alpha is set). */
  readonly scale?: number;
}

export interface LoraAdapter {
  /** Module path of the adapted linear layer, e.g. `mid_block.attentions.0.transformer_blocks.0.attn1.to_q`. */
  readonly module: string;
  /** Graph input `<module>.lora_A.weight` [rank, in]. */
  readonly down: Value;
  /** Graph input `<module>.lora_B.weight` [out, rank]. */
  readonly up: Value;
}

export function loraInputNames(module: string): { down: string; up: string } {
  return { down: `${module}.lora_A.weight`, up: `${module}.lora_B.weight` };
}

/** Creates adapter inputs as the model is built and remembers them in creation (execution) order. */
export class LoraInputs {
  readonly adapters: LoraAdapter[] = [];
  readonly rank: number;
  readonly scale: number;

  constructor(
    private readonly graph: Graph,
    options: LoraOptions,
  ) {
    if (!Number.isInteger(options.rank) || options.rank < 1) throw new Error(`LoRA rank must be a positive integer, got ${options.rank}`);
    this.rank = options.rank;
    this.scale = options.scale ?? 1;
  }

  /** The adapter of the linear layer at the graph's current module path. */
  create(inFeatures: number, outFeatures: number): LoraAdapter {
    const module = this.graph.currentScope;
    const names = loraInputNames(module);
    const adapter: LoraAdapter = {
      module,
      down: this.graph.input(names.down, 'float32', [this.rank, inFeatures]),
      up: this.graph.input(names.up, 'float32', [outFeatures, this.rank]),
    };
    this.adapters.push(adapter);
    return adapter;
  }
}

/**
 * A linear layer under the current module path (`weight` [out, in], optional `bias`), with a LoRA
 * adapter added when `lora` is given. `outputScale` multiplies the whole output; it is applied to the
 * weights (onnxruntime folds that into the stored weight) rather than to the activations.
 */
export function adaptableLinear(
  x: Value,
  w: ScopedWeights,
  outFeatures: number,
  bias: boolean,
  lora: LoraInputs | null,
  outputScale = 1,
): Value {
  const inFeatures = x.shape[x.rank - 1]!;
  const scaled = (v: Value, s: number): Value => (s === 1 ? v : mul(v, s));
  const weight = scaled(w('weight', [outFeatures, inFeatures]), outputScale);
  const y = linear(x, weight, bias ? scaled(w('bias', [outFeatures]), outputScale) : undefined);
  if (!lora) return y;
  const { down, up } = lora.create(inFeatures, outFeatures);
  // The adapters are float32 inputs (trained in float32); a float16 model casts them to its dtype.
  return add(y, linear(linear(x, cast(down, x.dtype)), scaled(cast(up, x.dtype), lora.scale * outputScale)));
}
