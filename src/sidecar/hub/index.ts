// Model store: Stable Diffusion and CLIP weights from the Hugging Face hub (into the standard HF cache, shared
// with Python tools) or from local folders, with resume, integrity checks, progress and cancellation.
export { ensureModel, verifyModel } from './model-store';
export { parseModelSource, formatModelSource, validateRepoId, validateRevision, isCommitHash, DEFAULT_REVISION } from './model-source';
export type { ModelSource, ParseModelSourceOptions } from './model-source';
export { selectModelFiles, pickLpipsFiles, LPIPS_FILES, MODEL_KINDS } from './file-selection';
export type { ModelKind, FilePrecision, FileSelection } from './file-selection';
export { resolveHubSettings, defaultCacheDir, DEFAULT_ENDPOINT } from './hub-settings';
export type { HubSettings, HubSettingsOverrides } from './hub-settings';
export { ModelStoreError, isModelStoreError, formatBytes } from './errors';
export type { ModelStoreErrorCode } from './errors';
export type { ModelStoreEvent, ModelStoreListener, TransferPhase } from './events';
export type { ModelRequest, ModelFileRecord, ResolvedModel, VerifyRequest, VerifyReport, VerifiedFile, VerifiedFileStatus } from './types';

/** The models CLIPDrag uses by default. */
export const DEFAULT_MODELS = {
  stableDiffusion: 'stable-diffusion-v1-5/stable-diffusion-v1-5',
  clip: 'openai/clip-vit-base-patch16',
} as const;

/**
 * The models of DragBench's evaluation (DragDiffusion's scripts): SD-2.1 for DIFT, CLIP ViT-B/32, and LPIPS v0.1 with
 * the AlexNet trunk — pyiqa's weight repo, which publishes both `.pth` files (docs/evaluation.md).
 */
export const EVAL_DEFAULT_MODELS = {
  dift: 'stabilityai/stable-diffusion-2-1',
  clip: 'openai/clip-vit-base-patch32',
  lpips: 'chaofengc/IQA-PyTorch-Weights',
} as const;
