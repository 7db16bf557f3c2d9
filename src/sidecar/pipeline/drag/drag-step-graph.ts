/**
 * The two graphs of the drag loop, built on the drag-graph pieces (`drag/drag-graph.ts`):
 *
 * - the reference graph, run once on the inverted latent z*: the UNet's noise prediction and the
 *   f0 samples of its features F0 at the initial handles;
 * - the step graph, run every iteration on the current latent z: one UNet forward with the feature
 *   tap, point tracking and motion supervision (+ the background term when a mask is drawn), the
 *   local gradient G_l = ∂L/∂z, and — for CLIPDrag — the predicted x0 decoded by the VAE, CLIP's loss
 *   against the guidance text and the global gradient G_g = ∂L_g/∂z. Both gradients come from one
 *   forward (two VJPs), so activations never leave the runtime.
 */
import { vjp, type RecomputePolicy } from '../../engine/autodiff';
import { Graph, type Node, type Value } from '../../engine/graph';
import { add, div, mul, sub } from '../../engine/ops';
import { clipGuidanceLoss, type ClipModelWeights, type PixelRemap } from '../../models/clip';
import { featureNames } from '../../models/unet/plan';
import { unetBlockSegment } from '../../models/unet/remat';
import { unetForward, type UNetModel } from '../../models/unet/unet';
import { vaeDecodeImage, vaeDecoderBlockScopes, type VaeModel } from '../../models/vae';
import type { StepCoefficients } from '../diffusion/ddim';
import type { DragGraphConfig } from './drag-config';
import {
  buildDragStep,
  buildReferenceFeatures,
  maskInputs,
  outputDragStep,
  outputReferenceFeatures,
  referenceFeatureInputs,
  STEP_OUTPUT,
} from './drag-graph';
import { featureGrid } from './patch-sampler';
import { DEFAULT_GRADIENT_MEMORY, unetRecomputeSegment } from '../runtime/gradient-memory';
import { IO } from '../models/graphs';

/** The UNet feature DragDiffusion and CLIPDrag supervise: `unet_feature_idx = [3]`, up_blocks[2]'s output. */
export const DRAG_FEATURE_INDEX = 3;

export const DRAG_IO = {
  ...STEP_OUTPUT,
  textEmbeds: 'clip_text_embeds',
  feature: 'drag_feature',
  xPrev: 'drag_x_prev',
  predX0: 'drag_pred_x0',
  gradLocal: 'drag_grad_local',
  gradGlobal: 'drag_grad_global',
  clipLoss: 'drag_clip_loss',
  predImage: 'drag_pred_image',
  imageEmbeds: 'drag_image_embeds',
} as const;

export interface ClipGuidanceSpec {
  readonly clip: ClipModelWeights;
  /** CLIP loss coefficient (`clip_loss_coef`). */
  readonly coefficient: number;
  /** The remap before CLIP's normalisation (the reference's `(x + 1) / 2` by default). */
  readonly remap?: PixelRemap;
}

/** The step graph's parts every mode shares: the UNet at the latent, DDIM's step, CLIP guidance, memory policy. */
export interface LatentGraphSpec {
  readonly unet: UNetModel;
  /** Latent height and width. */
  readonly latentHeight: number;
  readonly latentWidth: number;
  readonly tokens: number;
  readonly loraRank: number | null;
  /** DragPipeline.step's coefficients at t* (x0 and x_prev of the current latent). */
  readonly step: StepCoefficients;
  /** CLIPDrag's global term (also text mode's); null for the drag-only modes (or when there is no guidance text). */
  readonly guidance: (ClipGuidanceSpec & { readonly vae: VaeModel }) | null;
  /**
   * Recompute each UNet / VAE-decoder / CLIP block in the backward passes instead of keeping its
   * activations; otherwise only the UNet's self-attention probabilities are recomputed (gradient-memory.ts).
   */
  readonly rematerialize: boolean;
}

export interface DragGraphSpec extends LatentGraphSpec {
  readonly drag: DragGraphConfig;
  /** Add the background term (inputs x_prev_0 and λ·(1 − mask) weights). */
  readonly maskTerm: boolean;
}

/** What a mode's local term is built from: the step graph's latent, UNet feature and x_prev. */
export interface LocalTermContext {
  readonly graph: Graph;
  readonly sample: Value;
  /** The UNet feature (up_blocks[2]) at latent resolution [1, C, h, w]. */
  readonly feature: Value;
  readonly xPrev: Value;
}

export interface UNetPart {
  readonly graph: Graph;
  readonly sample: Value;
  readonly eps: Value;
  readonly feature: Value;
}

export function unetPart(name: string, spec: LatentGraphSpec): UNetPart {
  const graph = new Graph(name);
  const { unet } = spec;
  const config = unet.plan.config;
  const sample = graph.input(IO.sample, 'float32', [1, config.inChannels, spec.latentHeight, spec.latentWidth]);
  const timestep = graph.input(IO.timestep, 'float32', []);
  const context = graph.input(IO.context, 'float32', [1, spec.tokens, config.crossAttentionDim[0]!]);
  const forward = unetForward(graph, unet, { sample, timestep, encoderHiddenStates: context }, spec.loraRank ? { lora: { rank: spec.loraRank } } : {});
  unet.weights.assertAllBound(graph);
  const feature = forward.features[featureNames(unet.plan)[DRAG_FEATURE_INDEX]!];
  if (!feature) throw new Error(`the UNet has no feature tap ${DRAG_FEATURE_INDEX} (up_blocks[2])`);
  return { graph, sample, eps: forward.eps, feature };
}

/** Inputs: sample (z*), timestep, context (+ LoRA, reference point feeds). Outputs: eps, the f0 samples, the feature map. */
export function dragReferenceGraph(spec: DragGraphSpec): Graph {
  const { graph, eps, feature } = unetPart('drag reference', spec);
  graph.output(IO.eps, eps);
  graph.output(DRAG_IO.feature, feature);
  outputReferenceFeatures(buildReferenceFeatures(featureGrid(feature, spec.drag.supervision), spec.drag));
  return graph;
}

/** The per-iteration graph (see the module comment). */
export function dragStepGraph(spec: DragGraphSpec): Graph {
  return latentStepGraph(spec.guidance ? 'clipdrag step' : 'drag step', spec, ({ graph, sample, feature, xPrev }) => {
    const reference = referenceFeatureInputs(graph, spec.drag, 'float32');
    const mask = spec.maskTerm ? { xPrev, inputs: maskInputs(graph, sample.shape, 'float32') } : undefined;
    const drag = buildDragStep(featureGrid(feature, spec.drag.supervision), reference, spec.drag, mask ? { mask } : {});
    outputDragStep(drag);
    return drag.loss;
  });
}

/**
 * One iteration of latent optimisation for any mode: the UNet forward with the feature tap, DDIM's x0 and
 * x_prev, the mode's local loss (`local`; null: none) with G_l = ∂loss/∂z (zeros without a loss), and the CLIP
 * branch with G_g when the spec has guidance. Both gradients come from one forward.
 */
export function latentStepGraph(name: string, spec: LatentGraphSpec, local: (context: LocalTermContext) => Value | null): Graph {
  const { graph, sample, eps, feature } = unetPart(name, spec);
  const c = spec.step;
  // DragPipeline.step: x0 = (z − √(1−ᾱ)·ε)/√ᾱ, x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε.
  const predX0 = graph.scope('ddim_step', () => div(sub(sample, mul(eps, c.sqrtBeta)), c.sqrtAlpha));
  const xPrev = graph.scope('ddim_step', () => add(mul(predX0, c.sqrtAlphaTarget), mul(eps, c.sqrtBetaTarget)));
  const localLoss = local({ graph, sample, feature, xPrev });
  graph.output(DRAG_IO.feature, feature);
  graph.output(DRAG_IO.xPrev, xPrev);
  graph.output(DRAG_IO.predX0, predX0);

  const recompute = { recompute: spec.rematerialize ? blockSegments(spec) : unetRecomputeSegment(DEFAULT_GRADIENT_MEMORY) };
  const one = () => graph.constant([1], [], 'float32');
  const [gradLocal] = localLoss ? vjp(graph, [{ value: localLoss, cotangent: one() }], [sample], recompute) : [undefined];
  graph.output(DRAG_IO.gradLocal, gradLocal ?? zerosLike(graph, sample));

  if (spec.guidance) {
    const { clip, vae, coefficient, remap } = spec.guidance;
    const textEmbeds = graph.input(DRAG_IO.textEmbeds, 'float32', [1, clip.config.projectionDim]);
    const image = vaeDecodeImage(vae, predX0);
    const guidance = clipGuidanceLoss(clip, image, textEmbeds, { coefficient, ...(remap ? { remap } : {}) });
    const [gradGlobal] = vjp(graph, [{ value: guidance.loss, cotangent: one() }], [sample], recompute);
    if (!gradGlobal) throw new Error('CLIP guidance: the loss does not depend on the latent');
    graph.output(DRAG_IO.gradGlobal, gradGlobal);
    graph.output(DRAG_IO.clipLoss, guidance.loss);
    graph.output(DRAG_IO.predImage, image);
    graph.output(DRAG_IO.imageEmbeds, guidance.imageEmbeds);
  }
  return graph;
}

function zerosLike(graph: Graph, v: Value): Value {
  return graph.constant(new Float32Array(v.size), v.shape);
}

/** Recompute segments: every UNet resnet/transformer, every VAE-decoder block, every CLIP encoder layer. */
function blockSegments(spec: LatentGraphSpec): RecomputePolicy {
  const decoder = spec.guidance ? [...vaeDecoderBlockScopes(spec.guidance.vae.config)].sort((a, b) => b.length - a.length) : [];
  const clipLayer = /^(vision_model\.encoder\.layers\.\d+)(?:\.|$)/;
  return (node: Node) => {
    const unet = unetBlockSegment(node);
    if (unet) return unet;
    const vae = decoder.find((s) => node.scope === s || node.scope.startsWith(`${s}.`));
    if (vae) return vae;
    return clipLayer.exec(node.scope)?.[1] ?? null;
  };
}
