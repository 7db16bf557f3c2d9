// DragBench evaluation over a folder, as the RPC front door and the extension see it (`eval/run`,
// docs/protocol.md). The numbers and files are those of `clipdrag eval` (docs/evaluation.md).
import type { DevicePreference } from './protocol';

export interface EvalOptions {
  /** Absolute path of the DragBench-layout folder (`<category>/<sample>/original_image.png` + `meta_data.pkl`). */
  folder: string;
  /**
   * The result sets, one column each: `ours` (the batch runner's results next to each sample) or the absolute path
   * of a folder in the reference layout `<dir>/<category>/<sample>/dragged_image.png`. Default `['ours']`.
   */
  results?: string[];
  /** Stable Diffusion 2.1 for DIFT: hub id (`owner/name[@revision]`) or folder. Default stabilityai/stable-diffusion-2-1. */
  diftModel?: string;
  /** CLIP ViT-B/32: hub id or folder. Default openai/clip-vit-base-patch32. */
  clipModel?: string;
  /** LPIPS-AlexNet: hub id or folder. Default chaofengc/IQA-PyTorch-Weights. */
  lpipsModel?: string;
  device?: DevicePreference;
  /** Base seed of the DIFT noise (default 42, the reference's). */
  seed?: number;
  /** Where hub downloads go; default the standard Hugging Face cache. */
  hubCacheDirectory?: string;
}

/** One entry (a sample in one result set) done: scored, kept from the last report, or not scorable. */
export interface EvalProgress {
  readonly done: number;
  readonly total: number;
  readonly sample: string;
  readonly set: string;
  /** Seconds left at the mean time per scored entry so far; null before the first. */
  readonly secondsLeft: number | null;
  readonly reused: boolean;
}

export interface EvalMeans {
  readonly samples: number;
  readonly meanDistance: number;
  readonly imageFidelity: number;
  readonly clipSimilarity: number;
}

export interface EvalSetSummary {
  readonly set: string;
  readonly overall: EvalMeans | null;
  readonly categories: Readonly<Record<string, EvalMeans>>;
  /** Entries of this set that have no score (no result file, or it could not be scored: the report says why). */
  readonly failed: number;
}

/** What `eval/run` answers: the means and where the report is (also when cancelled: what was scored so far). */
export interface EvalOutcome {
  readonly folder: string;
  readonly state: 'completed' | 'cancelled';
  /** The models the numbers come from, as named. */
  readonly models: Readonly<Record<string, string>>;
  readonly summary: readonly EvalSetSummary[];
  /** Entries in the report; of them, scored ones. */
  readonly entries: number;
  readonly scored: number;
  /** Absolute paths of the report files (Markdown, JSON and the two plots). */
  readonly reportFiles: { readonly markdown: string; readonly json: string; readonly scatter: string; readonly categories: string };
}
