// The recipe: the JSON written next to every result (`cat.clipdrag.json` beside `cat.clipdrag.png`), with what is
// needed to reproduce it and to tell two results apart. Types only; the sidecar writes it.
import type { ImagePoint, ResolvedEditSpec } from './edit-spec';
import type { DevicePreference } from './protocol';

export const RECIPE_VERSION = 1;

export interface RecipeModelFile {
  /** Path inside the model folder, `/`-separated. */
  path: string;
  size: number;
  sha256: string;
}

export interface RecipeModel {
  role: 'stable-diffusion' | 'clip';
  /** As requested: a hub id (`owner/name`, optionally `@revision`) or a folder path. */
  id: string;
  /** `owner/name` for hub models; null for plain folders. */
  repoId: string | null;
  /** The revision asked for; null for plain folders. */
  revision: string | null;
  /** The commit the files came from; null for plain folders. */
  commit: string | null;
  files: RecipeModelFile[];
}

/** Wall time of one pipeline stage (`decode`, `lora`, `inversion`, `drag`, `denoise`, `encode`, ...). */
export interface RecipeStageTiming {
  stage: string;
  ms: number;
}

export interface Recipe {
  recipeVersion: typeof RECIPE_VERSION;
  /** ISO 8601 time at which the result was written. */
  createdAt: string;
  software: {
    name: string;
    version: string;
    node: string;
    onnxruntime: string;
    sharp: string;
    /** `process.platform`-`process.arch`. */
    platform: string;
  };
  source: {
    /** File name of the source image, in the same folder as the result. */
    file: string;
    /** Size after EXIF orientation. */
    width: number;
    height: number;
    sha256: string;
  };
  result: {
    /** File name of the result image, in the same folder. */
    file: string;
    width: number;
    height: number;
  };
  /** The spec as it ran: every parameter filled in and the mask inline as RLE, whichever file it came from. */
  spec: ResolvedEditSpec;
  /** The PNG the mask was read from, relative to the spec, when the spec named one. */
  maskFile?: string;
  seed: number;
  models: RecipeModel[];
  device: {
    preference: DevicePreference;
    /** onnxruntime's name of the execution provider that ran the edit (cpu, cuda, webgpu, dml, coreml). */
    executionProvider: string;
    /** The adapter or CPU in words, when known. */
    description?: string;
  };
  timings: RecipeStageTiming[];
  drag: {
    /** Drag iterations actually run (at most `parameters.dragSteps`). */
    iterations: number;
    /** Every handle ended within the stop distance of its target. */
    reachedTargets: boolean;
    /** Where the handles ended, in source-image pixels (same order as `spec.points`). */
    finalHandles: ImagePoint[];
    /** The same in the supervision grid the tracking runs in, as [row, col]. */
    finalHandlesSupervision: [row: number, col: number][];
  };
  lora?: {
    /** The LoRA came from the cache instead of being trained for this run. */
    fromCache: boolean;
    steps: number;
  };
  notes?: string[];
}
