/**
 * Runs the graphs of the modes without point tracking (`freedrag`, `text`): a features graph (the UNet at a
 * latent: ε and the up_blocks[2] feature, no gradient) and one step graph per edit (`latentStepGraph` with the
 * mode's local term), compiled once and run once per iteration.
 */
import type { TypedArray } from '../../engine/dtype';
import type { CompiledGraph } from '../../engine/runtime/engine';
import type { Feeds } from '../../engine/runtime/types';
import { dragStep } from '../diffusion/ddim';
import { IO } from '../models/graphs';
import { gradientMemoryPolicy, gradientSessionOptions } from '../runtime/gradient-memory';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { STEP_INPUT } from './drag-config';
import { maskInputs } from './drag-graph';
import { DRAG_IO, latentStepGraph, unetPart } from './drag-step-graph';
import { latentGraphSpec, stepGraphFeeds, type LatentStepSpec } from './drag-stepper';
import { buildFreeDragLoss, FREEDRAG_OUTPUT, type FreeDragGraphConfig } from './freedrag-graph';
import { featureGrid } from './patch-sampler';
import { maskTerm } from './mask-term';
import { add } from '../../engine/ops';

/** The local term of a mode: FreeDrag's template loss, or none (text mode: the background term alone). */
export type LocalTerm = { readonly kind: 'freedrag'; readonly config: FreeDragGraphConfig } | { readonly kind: 'none' };

export interface LatentStepperSpec extends LatentStepSpec {
  readonly local: LocalTerm;
}

export interface LatentStepResult {
  readonly gradLocal: Float32Array;
  readonly gradGlobal: Float32Array | null;
  /** FreeDrag: each pair's L1 against its template. */
  readonly pairLosses: Float32Array | null;
  readonly motionLoss: number | null;
  readonly maskLoss: number | null;
  readonly clipLoss: number | null;
  readonly extra: Readonly<Record<string, TypedArray>>;
}

export class LatentStepper {
  private xPrev0: Float32Array | null = null;

  private constructor(
    private readonly session: GraphSession,
    private readonly spec: LatentStepperSpec,
    private readonly featuresGraph: CompiledGraph,
    private readonly stepGraph: CompiledGraph,
    private readonly fixed: Feeds,
    private readonly stepOnly: Feeds,
  ) {}

  static async create(session: GraphSession, spec: LatentStepperSpec): Promise<LatentStepper> {
    const graphSpec = latentGraphSpec(spec);
    const features = unetPart('latent features', graphSpec);
    features.graph.output(IO.eps, features.eps);
    features.graph.output(DRAG_IO.feature, features.feature);
    const masked = spec.backgroundWeights !== null;
    const local = spec.local;
    const step = latentStepGraph(local.kind === 'freedrag' ? 'freedrag step' : 'text step', graphSpec, ({ graph, sample, feature, xPrev }) => {
      const mask = masked ? maskInputs(graph, sample.shape, 'float32') : null;
      const maskLoss = mask ? maskTerm(xPrev, mask.xPrev0, mask.backgroundWeights) : null;
      if (maskLoss) graph.output(DRAG_IO.maskLoss, maskLoss);
      if (local.kind === 'none') return maskLoss;
      const loss = buildFreeDragLoss(featureGrid(feature, local.config.supervision), local.config);
      graph.output(FREEDRAG_OUTPUT.pairLosses, loss.pairLosses);
      graph.output(DRAG_IO.motionLoss, loss.motionLoss);
      return maskLoss ? add(loss.motionLoss, maskLoss) : loss.motionLoss;
    });
    const label = local.kind === 'freedrag' ? 'FreeDrag step (UNet, template loss, VJP)' : 'text step (UNet, VAE decoder, CLIP, VJP)';
    const featuresGraph = await session.compile(features.graph, 'UNet features');
    const stepGraph = await session.compile(step, label, gradientSessionOptions(gradientMemoryPolicy(spec.rematerialize)));
    const { fixed, stepOnly } = stepGraphFeeds(spec, step);
    return new LatentStepper(session, spec, featuresGraph, stepGraph, fixed, stepOnly);
  }

  get hasGuidance(): boolean {
    return this.spec.guidance !== null;
  }

  /** Releases both graphs (the loop is over): nothing of this stage stays alive into denoising. */
  async close(): Promise<void> {
    await this.session.release(this.featuresGraph);
    await this.session.release(this.stepGraph);
  }

  /** The UNet feature [1, C, h, w] at latent z (no gradient). */
  async features(z: Float32Array): Promise<{ eps: Float32Array; feature: Float32Array }> {
    const out = await this.session.run(this.featuresGraph, { ...this.fixed, [IO.sample]: z }, undefined, 'dragging');
    return { eps: float32Output(out, IO.eps), feature: float32Output(out, DRAG_IO.feature) };
  }

  /** Runs the features graph at z* and keeps x_prev_0 for the background term; returns F0. Must come before `step`. */
  async reference(zStar: Float32Array): Promise<Float32Array> {
    const { eps, feature } = await this.features(zStar);
    this.xPrev0 = dragStep(this.spec.schedule, eps, this.spec.timestep, zStar).sample;
    return feature;
  }

  /** One iteration's graph run at z with the local term's inputs (FreeDrag: positions and templates). */
  async step(z: Float32Array, localFeeds: Feeds, extraOutputs: readonly string[] = []): Promise<LatentStepResult> {
    if (!this.xPrev0) throw new Error('LatentStepper: run reference() before step()');
    const guided = this.spec.guidance !== null;
    const masked = this.spec.backgroundWeights !== null;
    const freedrag = this.spec.local.kind === 'freedrag';
    const wanted = [
      DRAG_IO.gradLocal,
      ...(masked ? [DRAG_IO.maskLoss] : []),
      ...(freedrag ? [FREEDRAG_OUTPUT.pairLosses, DRAG_IO.motionLoss] : []),
      ...(guided ? [DRAG_IO.gradGlobal, DRAG_IO.clipLoss] : []),
      ...extraOutputs,
    ];
    const feeds: Feeds = { ...this.fixed, ...this.stepOnly, ...(masked ? { [STEP_INPUT.xPrev0]: this.xPrev0 } : {}), ...localFeeds, [IO.sample]: z };
    const out = await this.session.run(this.stepGraph, feeds, [...new Set(wanted)], 'dragging');
    return {
      gradLocal: float32Output(out, DRAG_IO.gradLocal),
      gradGlobal: guided ? float32Output(out, DRAG_IO.gradGlobal) : null,
      pairLosses: freedrag ? float32Output(out, FREEDRAG_OUTPUT.pairLosses) : null,
      motionLoss: freedrag ? float32Output(out, DRAG_IO.motionLoss)[0]! : null,
      maskLoss: masked ? float32Output(out, DRAG_IO.maskLoss)[0]! : null,
      clipLoss: guided ? float32Output(out, DRAG_IO.clipLoss)[0]! : null,
      extra: out,
    };
  }
}
