/**
 * Runs the drag loop's graphs: compiles the reference graph and runs it once on z* (keeping the f0 samples
 * and x_prev_0 as feeds of every later step), releases it, compiles the step graph, then runs it once per
 * iteration with the small per-iteration point inputs `drag/drag-plan.ts` computes. One graph over the UNet
 * is alive at a time; `close()` releases the step graph.
 */
import type { TypedArray } from '../../engine/dtype';
import type { Graph } from '../../engine/graph';
import type { CompiledGraph } from '../../engine/runtime/engine';
import type { Feeds } from '../../engine/runtime/types';
import { dragStep, dragStepCoefficients, type DdimSchedule } from '../diffusion/ddim';
import { referenceOutputSpecs, type DragGraphConfig } from './drag-config';
import { referenceFeeds, stepFeeds, type DragPoints, type TrackingMode } from './drag-plan';
import type { Point } from './tracking';
import { STEP_INPUT } from './drag-config';
import { DRAG_IO, dragReferenceGraph, dragStepGraph, type DragGraphSpec, type LatentGraphSpec } from './drag-step-graph';
import { gradientMemoryPolicy, gradientSessionOptions } from '../runtime/gradient-memory';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { IO } from '../models/graphs';
import { loraFeeds, type LoraWeights } from '../lora/lora-weights';
import type { ClipModelWeights, PixelRemap } from '../../models/clip';
import type { UNetModel } from '../../models/unet/unet';
import type { VaeModel } from '../../models/vae';

/** What every stepper over a latent step graph is built from (the drag stepper and the latent stepper alike). */
export interface LatentStepSpec {
  readonly unet: UNetModel;
  readonly vae: VaeModel;
  readonly latentHeight: number;
  readonly latentWidth: number;
  /** SD text conditioning [1, tokens, D]. */
  readonly context: Float32Array;
  readonly tokens: number;
  readonly lora: LoraWeights | null;
  readonly schedule: DdimSchedule;
  /** t*, the timestep the latent is optimised at. */
  readonly timestep: number;
  /** The background term's weights at latent size [1, 1, h, w] (λ·(1 − mask), scaled as the mode's term wants), or null. */
  readonly backgroundWeights: Float32Array | null;
  /** CLIP guidance: the model, CLIP's text embedding of the guidance text, the loss coefficient. Null: no global term. */
  readonly guidance: { readonly clip: ClipModelWeights; readonly textEmbeds: Float32Array; readonly coefficient: number; readonly remap?: PixelRemap } | null;
  readonly rematerialize: boolean;
}

export interface DragStepperSpec extends LatentStepSpec {
  readonly drag: DragGraphConfig;
}

/** The graph-building part of a stepper's spec. */
export function latentGraphSpec(spec: LatentStepSpec): LatentGraphSpec {
  return {
    unet: spec.unet,
    latentHeight: spec.latentHeight,
    latentWidth: spec.latentWidth,
    tokens: spec.tokens,
    loraRank: spec.lora?.rank ?? null,
    step: dragStepCoefficients(spec.schedule, spec.timestep),
    guidance: spec.guidance ? { clip: spec.guidance.clip, vae: spec.vae, coefficient: spec.guidance.coefficient, ...(spec.guidance.remap ? { remap: spec.guidance.remap } : {}) } : null,
    rematerialize: spec.rematerialize,
  };
}

/** What the reference run found at z*. */
export interface DragReference {
  readonly eps: Float32Array;
  /** DragPipeline.step(ε(z*), t*, z*)[0]: the background term's anchor. */
  readonly xPrev0: Float32Array;
  /** F0 at latent resolution [1, C, h, w]. */
  readonly feature: Float32Array;
}

export interface DragStepResult {
  /** Handles after this iteration's tracking ([row, col], supervision grid). */
  readonly handles: Point[];
  readonly motionLoss: number;
  readonly maskLoss: number | null;
  readonly gradLocal: Float32Array;
  readonly gradGlobal: Float32Array | null;
  readonly clipLoss: number | null;
  /** Every other output that was asked for, by name. */
  readonly extra: Readonly<Record<string, TypedArray>>;
}

export class DragStepper {
  private referenceFeeds: Feeds | null = null;
  private stepGraph: CompiledGraph | null = null;

  private constructor(
    private readonly session: GraphSession,
    private readonly spec: DragStepperSpec,
    private readonly referenceGraph: CompiledGraph,
    /** Compiled after the reference run, once the reference graph's session is gone. */
    private readonly compileStep: () => Promise<CompiledGraph>,
    /** Feeds of both graphs (timestep, text conditioning, LoRA). */
    private readonly fixed: Feeds,
    /** Feeds of the step graph only (guidance text, mask weights). */
    private readonly stepOnly: Feeds,
  ) {}

  static async create(session: GraphSession, spec: DragStepperSpec): Promise<DragStepper> {
    const graphSpec: DragGraphSpec = { ...latentGraphSpec(spec), drag: spec.drag, maskTerm: spec.backgroundWeights !== null };
    const reference = dragReferenceGraph(graphSpec);
    const step = dragStepGraph(graphSpec);
    const referenceGraph = await session.compile(reference, 'drag reference (UNet at z*)');
    const compileStep = () =>
      session.compile(
        step,
        spec.guidance ? 'CLIPDrag step (UNet, drag loss, VAE decoder, CLIP, two VJPs)' : 'drag step (UNet, drag loss, VJP)',
        gradientSessionOptions(gradientMemoryPolicy(spec.rematerialize)),
      );
    const { fixed, stepOnly } = stepGraphFeeds(spec, step);
    return new DragStepper(session, spec, referenceGraph, compileStep, fixed, stepOnly);
  }

  get config(): DragGraphConfig {
    return this.spec.drag;
  }

  /** Whether the step computes CLIPDrag's global term (and the decoded x0 image with it). */
  get hasGuidance(): boolean {
    return this.spec.guidance !== null;
  }

  /** Runs the reference graph on z* at the initial handles (once: its session is released after); must come before `step`. */
  async reference(zStar: Float32Array, handlesInit: readonly Point[]): Promise<DragReference> {
    const { drag, schedule, timestep } = this.spec;
    const out = await this.session.run(this.referenceGraph, { ...this.fixed, [IO.sample]: zStar, ...referenceFeeds(drag, handlesInit) }, undefined, 'dragging');
    await this.session.release(this.referenceGraph);
    this.stepGraph ??= await this.compileStep();
    const eps = float32Output(out, IO.eps);
    const xPrev0 = dragStep(schedule, eps, timestep, zStar).sample;
    const feeds: Record<string, TypedArray> = {};
    for (const spec of referenceOutputSpecs(drag)) feeds[spec.name] = float32Output(out, spec.name);
    if (this.spec.backgroundWeights) feeds[STEP_INPUT.xPrev0] = xPrev0;
    this.referenceFeeds = feeds;
    return { eps, xPrev0, feature: float32Output(out, DRAG_IO.feature) };
  }

  /** Releases the step graph (the drag loop is over). */
  async close(): Promise<void> {
    if (this.stepGraph) await this.session.release(this.stepGraph);
    this.stepGraph = null;
  }

  /**
   * One iteration's graph run at latent z: tracking (per `mode`), losses and gradients.
   *
   * `atStart`: z is z* itself (the loop's first iteration). The reference computes x_prev and x_prev_0 there by
   * the same kernels, so |x_prev − x_prev_0| is exactly 0 and so is its subgradient (sign(0) = 0); here the
   * two come from different graphs and may differ by rounding, which would turn into a full-size sign
   * gradient. The background term is therefore fed zero weights at the start: 0, with no gradient, as there.
   */
  async step(z: Float32Array, points: DragPoints, mode: TrackingMode, extraOutputs: readonly string[] = [], atStart = false): Promise<DragStepResult> {
    if (!this.referenceFeeds || !this.stepGraph) throw new Error('DragStepper: run reference() before step() (and not after close())');
    const guided = this.spec.guidance !== null;
    const masked = this.spec.backgroundWeights !== null;
    const wanted = [
      DRAG_IO.newHandles,
      DRAG_IO.motionLoss,
      DRAG_IO.gradLocal,
      ...(masked ? [DRAG_IO.maskLoss] : []),
      ...(guided ? [DRAG_IO.gradGlobal, DRAG_IO.clipLoss] : []),
      ...extraOutputs,
    ];
    const feeds = {
      ...this.fixed,
      ...this.stepOnly,
      ...(masked && atStart ? { [STEP_INPUT.backgroundWeights]: new Float32Array(this.spec.backgroundWeights!.length) } : {}),
      ...this.referenceFeeds,
      ...stepFeeds(this.spec.drag, points, mode),
      [IO.sample]: z,
    };
    const out = await this.session.run(this.stepGraph, feeds, [...new Set(wanted)], 'dragging');
    const handlesData = float32Output(out, DRAG_IO.newHandles);
    const handles: Point[] = [];
    for (let i = 0; i < handlesData.length; i += 2) handles.push([handlesData[i]!, handlesData[i + 1]!]);
    return {
      handles,
      motionLoss: float32Output(out, DRAG_IO.motionLoss)[0]!,
      maskLoss: masked ? float32Output(out, DRAG_IO.maskLoss)[0]! : null,
      gradLocal: float32Output(out, DRAG_IO.gradLocal),
      gradGlobal: guided ? float32Output(out, DRAG_IO.gradGlobal) : null,
      clipLoss: guided ? float32Output(out, DRAG_IO.clipLoss)[0]! : null,
      extra: out,
    };
  }
}

/** What a latent step graph is fed on every run: `fixed` (every graph over the UNet), `stepOnly` (the step graph). */
export function stepGraphFeeds(spec: LatentStepSpec, step: Graph): { fixed: Feeds; stepOnly: Feeds } {
  return {
    fixed: {
      [IO.timestep]: new Float32Array([spec.timestep]),
      [IO.context]: spec.context,
      ...(spec.lora ? loraFeeds(spec.lora, step) : {}),
    },
    stepOnly: {
      ...(spec.guidance ? { [DRAG_IO.textEmbeds]: spec.guidance.textEmbeds } : {}),
      ...(spec.backgroundWeights ? { [STEP_INPUT.backgroundWeights]: spec.backgroundWeights } : {}),
    },
  };
}
