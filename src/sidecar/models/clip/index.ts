/** CLIP on the graph engine: SD's text encoder, CLIPModel (ViT) embeddings, CLIPDrag's guidance loss. */
export {
  assertClipPartBound,
  CLIP_IMAGE_PREFIXES,
  CLIP_TEXT_PREFIXES,
  clipImageEmbeds,
  clipTextEmbeds,
  type ClipModelWeights,
} from './clip-model';
export { clipTextTransformer, isClipPositionIdsBuffer, pooledAtEos, CLIP_TEXT_PREFIX } from './text-model';
export { clipVisionTransformer, CLIP_VISION_PREFIX } from './vision-model';
export {
  clipPreprocess,
  CLIPDRAG_REFERENCE_REMAP,
  IDENTITY_REMAP,
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  type ClipPreprocessOptions,
  type PixelRemap,
} from './preprocess';
export {
  clipGuidanceGradients,
  clipGuidanceLoss,
  CLIPDRAG_CLIP_LOSS_COEFFICIENT,
  type ClipGuidanceGradients,
  type ClipGuidanceLoss,
  type ClipGuidanceOptions,
} from './guidance';
