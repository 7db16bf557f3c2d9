/**
 * CLIPDrag's global (CLIP) guidance loss as a graph (`cal_global_grad` in the reference):
 *
 *     pixel_values = Normalize(mean, std)(remap(AdaptiveAvgPool2d(size)(image)))
 *     loss         = coefficient · (1 − cos(image_embeds(pixel_values), text_embeds))
 *
 * The text embedding is an input (it is computed once per edit), so the graph holds only the vision
 * tower. `clipGuidanceGradients` appends d loss / d pixel_values and d loss / d image; the pipeline
 * differentiates the same `loss` further back (through the VAE decoder and the UNet) with `vjp`.
 */
import { grad, type VjpOptions } from '../../engine/autodiff';
import type { Graph, Value } from '../../engine/graph';
import { div, maximum, mul, reduceSum, sqrt, sub } from '../../engine/ops';
import { clipImageEmbeds, type ClipModelWeights } from './clip-model';
import { clipPreprocess, type ClipPreprocessOptions } from './preprocess';

/** The reference's loss weight (CLIPDrag's HEAD UI and its DragBench script). */
export const CLIPDRAG_CLIP_LOSS_COEFFICIENT = 300;

export interface ClipGuidanceOptions extends ClipPreprocessOptions {
  /** Default: CLIPDRAG_CLIP_LOSS_COEFFICIENT. */
  readonly coefficient?: number;
}

export interface ClipGuidanceLoss {
  readonly pixelValues: Value;
  /** [B, projection_dim], not normalised. */
  readonly imageEmbeds: Value;
  /** coefficient · (1 − cos) per image, [B]. */
  readonly perImage: Value;
  /** Sum of `perImage` (a scalar): each image's gradient is that of its own loss. */
  readonly loss: Value;
}

/** x / max(‖x‖, 1e-12) along the last axis, as torch's F.normalize. */
function normalize(x: Value): Value {
  return div(x, maximum(sqrt(reduceSum(mul(x, x), [-1], true)), 1e-12));
}

/**
 * image [B, 3, H, W] in [0, 1] (any H, W); textEmbeds [B or 1, projection_dim] (CLIPModel's
 * `text_embeds`, normalised here). Builds the loss chain at the graph's root module path (weights are
 * bound by their checkpoint keys).
 */
export function clipGuidanceLoss(model: ClipModelWeights, image: Value, textEmbeds: Value, options: ClipGuidanceOptions = {}): ClipGuidanceLoss {
  const graph: Graph = image.graph;
  const projection = model.config.projectionDim;
  const batch = image.shape[0]!;
  if (textEmbeds.rank !== 2 || textEmbeds.shape[1] !== projection || (textEmbeds.shape[0] !== 1 && textEmbeds.shape[0] !== batch)) {
    throw new Error(`CLIP guidance: expected text embeddings [1 or ${batch}, ${projection}], got [${textEmbeds.shape.join(', ')}]`);
  }
  const pixelValues = clipPreprocess(image, model.config.visionConfig.imageSize, options);
  const imageEmbeds = clipImageEmbeds(model, pixelValues);
  const coefficient = options.coefficient ?? CLIPDRAG_CLIP_LOSS_COEFFICIENT;
  return graph.scope('clip_loss', () => {
    const cosine = reduceSum(mul(normalize(imageEmbeds), normalize(textEmbeds)), [-1], false);
    const perImage = mul(sub(1, cosine), coefficient);
    return { pixelValues, imageEmbeds, perImage, loss: reduceSum(perImage, [0], false) };
  });
}

export interface ClipGuidanceGradients {
  readonly gradPixelValues: Value;
  readonly gradImage: Value;
}

/** Appends the loss's gradients with respect to pixel_values and to the [0, 1] image it came from. */
export function clipGuidanceGradients(guidance: ClipGuidanceLoss, image: Value, options: VjpOptions = {}): ClipGuidanceGradients {
  const [gradPixelValues, gradImage] = grad(guidance.loss, [guidance.pixelValues, image], options);
  if (!gradPixelValues || !gradImage) throw new Error('CLIP guidance: the loss does not depend on the image');
  return { gradPixelValues, gradImage };
}
