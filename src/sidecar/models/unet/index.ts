/** The SD-1.x UNet on the graph engine: loading, architecture plan, graph building. */
export { loadUNet, type LoadedUNet } from './load';
export { featureNames, featureShapes, loraTargets, planUNet, transformerBlockSites, type LoraTarget, type UNetPlan } from './plan';
export { unetAttentionSegment, unetBlockSegment } from './remat';
export { loraInputNames, type LoraAdapter, type LoraOptions } from './lora';
export {
  buildUNetGraph,
  unetForward,
  type MutualSelfAttentionOptions,
  type UNetForward,
  type UNetForwardOptions,
  type UNetGraph,
  type UNetGraphSpec,
  type UNetInputs,
  type UNetModel,
} from './unet';
