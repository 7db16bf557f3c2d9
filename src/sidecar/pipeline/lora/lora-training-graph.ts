/**
 * The LoRA fine-tuning step as one graph: the UNet on a batch of noisy latents (one timestep per row)
 * with LoRA adapters as inputs, the denoising loss MSE(ε̂, ε) (mean over every element, as
 * `F.mse_loss`), and its gradient with respect to every adapter tensor.
 */
import { vjp } from '../../engine/autodiff';
import { Graph } from '../../engine/graph';
import { mul, reduceMean, sub } from '../../engine/ops';
import { buildUNetGraph, type UNetModel } from '../../models/unet/unet';
import { gradientMemoryPolicy, unetRecomputeSegment } from '../runtime/gradient-memory';

export const TRAINING_IO = {
  target: 'target_noise',
  loss: 'loss',
  /** Prefix of the gradient outputs: `grad.<adapter input name>`. */
  gradPrefix: 'grad.',
} as const;

export interface LoraTrainingGraphSpec {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly tokens: number;
  readonly rank: number;
  /**
   * Recompute each UNet block in the backward pass instead of keeping its activations (less memory, more
   * time); otherwise only the self-attention probabilities are recomputed (see gradient-memory.ts).
   */
  readonly rematerialize: boolean;
}

export interface LoraTrainingGraph {
  readonly graph: Graph;
  /** Adapter input name → shape, in execution order. */
  readonly adapters: ReadonlyMap<string, readonly number[]>;
}

export function loraTrainingGraph(unet: UNetModel, spec: LoraTrainingGraphSpec): LoraTrainingGraph {
  const { graph, forward } = buildUNetGraph(
    unet,
    { batch: spec.batch, height: spec.height, width: spec.width, tokens: spec.tokens, timestep: 'batch', outputs: [], lora: { rank: spec.rank } },
    new Graph('unet lora training'),
  );
  const target = graph.input(TRAINING_IO.target, 'float32', forward.eps.shape);
  const diff = sub(forward.eps, target);
  const loss = reduceMean(mul(diff, diff), [0, 1, 2, 3], false);
  graph.output(TRAINING_IO.loss, loss);
  const inputs = forward.lora.flatMap((a) => [a.down, a.up]);
  const grads = vjp(graph, [{ value: loss, cotangent: graph.constant([1], [], 'float32') }], inputs, {
    recompute: unetRecomputeSegment(gradientMemoryPolicy(spec.rematerialize)),
  });
  const adapters = new Map<string, readonly number[]>();
  inputs.forEach((input, i) => {
    const g = grads[i];
    if (!g) throw new Error(`LoRA training: the loss does not depend on ${input.name}`);
    graph.output(`${TRAINING_IO.gradPrefix}${input.name}`, g);
    adapters.set(input.name, input.shape);
  });
  return { graph, adapters };
}
