/**
 * The UNet's noise prediction as a callable: one graph compiled once for a latent shape, the timestep,
 * the text embedding and the LoRA tensors fed at every call.
 */
import type { UNetModel } from '../../models/unet/unet';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { IO, unetEpsGraph, type UNetEpsSpec } from './graphs';
import type { CompiledGraph } from '../../engine/runtime/engine';
import type { Feeds } from '../../engine/runtime/types';
import { loraFeeds, type LoraWeights } from '../lora/lora-weights';

/** ε(sample, t): the UNet's noise prediction for a latent (batch as the runner was built for). */
export type EpsFunction = (sample: Float32Array, t: number) => Promise<Float32Array>;

export interface UNetRunnerSpec extends Omit<UNetEpsSpec, 'loraRank' | 'timestep'> {
  /** Text embedding [batch, tokens, D] (every call uses it). */
  readonly context: Float32Array;
  readonly lora?: LoraWeights | null;
  /** A name for logs and errors. */
  readonly label: string;
}

export class UNetRunner {
  private constructor(
    private readonly session: GraphSession,
    private readonly graph: CompiledGraph,
    private readonly fixed: Feeds,
    readonly label: string,
  ) {}

  static async create(session: GraphSession, unet: UNetModel, spec: UNetRunnerSpec): Promise<UNetRunner> {
    const rank = spec.lora?.rank;
    const graph = unetEpsGraph(unet, { ...spec, timestep: 'scalar', ...(rank ? { loraRank: rank } : {}) });
    const compiled = await session.compile(graph, spec.label);
    const fixed: Feeds = { [IO.context]: spec.context, ...(spec.lora ? loraFeeds(spec.lora, graph) : {}) };
    return new UNetRunner(session, compiled, fixed, spec.label);
  }

  readonly eps: EpsFunction = async (sample, t) => {
    const out = await this.session.run(this.graph, { ...this.fixed, [IO.sample]: sample, [IO.timestep]: new Float32Array([t]) }, [IO.eps], this.label);
    return float32Output(out, IO.eps);
  };
}
