// The JSON-RPC protocol between the extension and the sidecar process (vscode-jsonrpc over stdio).
// Only types and method descriptors live here: both processes import this file, and so does the
// webview's type-check, so nothing node-only may be imported.
import { ProgressType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { BatchOptions, BatchPlan, BatchProgress, BatchReport } from './batch';
import type { EvalOptions, EvalOutcome, EvalProgress } from './evaluation';
import type { EditParameters } from './edit-parameters';
import type { EditMode, EditSpec, ImagePoint, PointPair } from './edit-spec';
import type { RecipeStageTiming } from './recipe';

/** The extension sets this to its own pid, so the sidecar notices when the extension host is gone. */
export const SIDECAR_PARENT_PID_ENV = 'CLIPDRAG_PARENT_PID';

/** Device preference as the user sets it (`clipdrag.device`). `auto` picks the best available provider. */
export const DEVICE_PREFERENCES = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export type DevicePreference = (typeof DEVICE_PREFERENCES)[number];

export function isDevicePreference(value: unknown): value is DevicePreference {
  return typeof value === 'string' && (DEVICE_PREFERENCES as readonly string[]).includes(value);
}

/**
 * Numeric precision of the models as the user sets it (`clipdrag.precision`): `fp16` computes in half
 * precision with float32 where numerics need it (less GPU memory); `fp16-weights` holds the weights in half
 * precision and computes in float32 (half the weight memory on any device, float32 arithmetic); `auto` is
 * fp32, or fp16-weights where the memory policy finds that only it fits.
 */
export const PRECISION_PREFERENCES = ['auto', 'fp32', 'fp16', 'fp16-weights'] as const;
export type PrecisionPreference = (typeof PRECISION_PREFERENCES)[number];
/** The precision an edit runs in. */
export type Precision = Exclude<PrecisionPreference, 'auto'>;

export function isPrecisionPreference(value: unknown): value is PrecisionPreference {
  return typeof value === 'string' && (PRECISION_PREFERENCES as readonly string[]).includes(value);
}

/** One execution provider that onnxruntime-node offers on this machine, and whether it can run. */
export interface ExecutionProviderReport {
  /** onnxruntime's name for it: cpu, cuda, webgpu, dml, coreml, tensorrt, ... */
  name: string;
  /** Ships inside the onnxruntime-node package. */
  bundled: boolean;
  /** Its provider libraries are present (always true for bundled ones). */
  installed: boolean;
  /** A session on this provider could actually be created here. */
  usable: boolean;
  /** Why it is not usable, and what to do about it. */
  problem?: string;
}

/** The provider the engine will use for the requested preference, or why the request cannot be met. */
export type ExecutionProviderChoiceReport =
  | { ok: true; preference: DevicePreference; provider: string; reason: string }
  | { ok: false; preference: DevicePreference; error: string };

export interface InitializeParams {
  /** Who is asking, for the sidecar's log ("CLIPDrag VS Code extension 0.1.0"). */
  client: string;
  devicePreference: DevicePreference;
}

export interface InitializeResult {
  /** Version of the sidecar (the extension's package version). */
  version: string;
  pid: number;
  nodeVersion: string;
  onnxruntimeVersion: string;
  executionProviders: ExecutionProviderReport[];
  executionProvider: ExecutionProviderChoiceReport;
}

/** `initialize`: the first request after spawning; reports versions and the execution provider choice. */
export const InitializeRequest = new RequestType<InitializeParams, InitializeResult, void>('initialize');

/** `shutdown`: the sidecar answers, then closes its connection and exits. */
export const ShutdownRequest = new RequestType0<void, void>('shutdown');

/** Error codes of ResponseErrors the sidecar sends (JSON-RPC reserves -32768..-32000 for itself). */
export const SidecarErrorCodes = {
  /** The request was cancelled through `$/cancelRequest` (same number LSP uses). */
  RequestCancelled: -32800,
  /** An edit failed while running (the message says where and why). */
  EditFailed: 1,
  /** The image, spec, mask or output path of an edit cannot be used (nothing ran); `data.issues` lists spec problems. */
  InvalidEditInput: 2,
  /** A model could not be found, downloaded, verified or opened; `data` is a `ModelUnavailableData`. */
  ModelUnavailable: 3,
} as const;

/** What a `ModelUnavailable` error says beyond its message. */
export interface ModelUnavailableData {
  /** The model store's reason (OFFLINE: the hub cannot be reached or offline mode is on, and it is not cached). */
  storeCode?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Edits and models. Progress of a request that carries a `progressToken` arrives as `$/progress` notifications
// with that token (`EditProgressType` / `ModelsProgressType` values); `$/cancelRequest` cancels the request.

/** Stage ids of an edit, in order: `decode` (reading image and spec), `load` (models, text), `lora`, `encode`, `inversion`, `drag`, `denoise`, `write` (decoding and writing the result). */
export const EDIT_STAGES = ['decode', 'load', 'lora', 'encode', 'inversion', 'drag', 'denoise', 'write'] as const;
export type EditStage = (typeof EDIT_STAGES)[number];

/** One progress report of a running edit. */
export interface EditProgress {
  stage: EditStage;
  /** Steps done in this stage and their total (the drag total is the iteration cap; it may end earlier). */
  step: number;
  total: number;
  /** Estimated seconds left in this stage. */
  etaSeconds?: number;
  /** Loss values of the step: `lora`, `motion`, `mask`, `clip`. */
  losses?: Record<string, number>;
  /** Current handle positions in source-image pixels (drag stage). */
  handles?: ImagePoint[];
  /** A small preview of the current x0 prediction (drag stage): PNG bytes, base64-encoded, at most 256 pixels wide. */
  previewPngBase64?: string;
  /** A remark (a model download, a cached LoRA, ...). */
  message?: string;
}

/** Values the spec may leave out, from the user's settings. */
export type MemoryPolicyPreference = 'auto' | 'attention' | 'blocks';

export function isMemoryPolicyPreference(value: unknown): value is MemoryPolicyPreference {
  return value === 'auto' || value === 'attention' || value === 'blocks';
}

export interface EditSettings {
  /** Stable Diffusion 1.5 model when the spec names none (default: the sidecar's default model). */
  model?: string;
  clipModel?: string;
  /**
   * For a single-file checkpoint: a folder in the diffusers layout whose `unet/`, `vae/`, `text_encoder/` config.json
   * (and `scheduler/scheduler_config.json`) replace what is inferred from the tensors (diffusers' `config=`). Ignored
   * for model folders and hub ids. Relative to the working folder.
   */
  modelConfig?: string;
  /** Execution provider preference (default: the one given at `initialize`). */
  device?: DevicePreference;
  /** Model precision (default `auto`). */
  precision?: PrecisionPreference;
  /**
   * What the gradient graphs recompute to save memory: `auto` (default) chooses from the image size, the
   * precision and the device's memory; `attention` or `blocks` force a mode (docs/runtime.md, "Memory policy").
   */
  memoryPolicy?: MemoryPolicyPreference;
  /** Hugging Face cache folder (the `hub` folder); default the standard one. */
  hubCacheDirectory?: string;
}

/** Fields of the spec replaced for this run (the CLI's flags). */
export interface EditOverrides {
  mode?: EditMode;
  prompt?: string;
  editPrompt?: string;
  points?: PointPair[];
  parameters?: Partial<EditParameters>;
  model?: string;
  clipModel?: string;
}

export interface EditRunParams {
  /** The source image (absolute path). */
  imagePath: string;
  /** The spec to run (a mask inline or relative to `specPath`); absent: the image's saved spec file. */
  spec?: EditSpec;
  /** Where the spec lives (for a mask path); default `<image>.clipdrag-edit.json`. */
  specPath?: string;
  overrides?: EditOverrides;
  settings?: EditSettings;
  /** Write the result here instead of `<name>.clipdrag[-n].png` next to the source (the recipe goes beside it). */
  outPath?: string;
  /** Width the image is edited at (default 512, as the reference; smaller is faster and coarser). */
  workingWidth?: number;
  progressToken?: string | number;
}

export interface EditRunResult {
  imagePath: string;
  recipePath: string;
  /** Drag iterations run, and whether every handle reached its target. */
  iterations: number;
  reachedTargets: boolean;
  /** Final handle positions in source-image pixels, in the order of the spec's points. */
  finalHandles: ImagePoint[];
  timings: RecipeStageTiming[];
  executionProvider: string;
  loraFromCache: boolean;
}

/** `edit/run`: runs one edit and writes its result and recipe; fails with a ResponseError (cancelled: RequestCancelled). */
export const EditRunRequestType = new RequestType<EditRunParams, EditRunResult, void>('edit/run');
export const EditProgressType = new ProgressType<EditProgress>();

export interface ModelsEnsureParams {
  /** Default: the settings' or the sidecar's default models. */
  model?: string;
  clipModel?: string;
  hubCacheDirectory?: string;
  /**
   * The precision the edits will run in (default `auto`): fp16 fetches the `*.fp16.safetensors` variants where a
   * repo has them (half the bytes), fp32 the full-precision files; either falls back to the other with a note.
   */
  precision?: PrecisionPreference;
  /** Also re-hash every file and compare with the published hashes (corrupt cached files are removed). */
  verify?: boolean;
  progressToken?: string | number;
}

export interface EnsuredModel {
  role: 'stable-diffusion' | 'clip';
  /** As requested. */
  id: string;
  folder: string;
  commit: string | null;
  fileCount: number;
  totalBytes: number;
  downloadedBytes: number;
  /** Precision of the weight files chosen; `mixed` when some component fell back to the other precision. */
  weightsPrecision: Precision | 'mixed';
  /** `hub`: checked with the hub; `cache`: from the cache; `local`: a folder. */
  origin: 'hub' | 'cache' | 'local';
  /** With `verify`: files whose hash did not match (removed so that the next ensure downloads them again). */
  corruptFiles?: string[];
  notes: string[];
}

export interface ModelsEnsureResult {
  models: EnsuredModel[];
}

/** Progress of `models/ensure`: which model, what is happening, and bytes done of the phase's total. */
export interface ModelsProgress {
  role: 'stable-diffusion' | 'clip';
  model: string;
  phase: 'resolve' | 'download' | 'hash' | 'verify' | 'done';
  file?: string;
  bytes?: number;
  totalBytes?: number;
  message?: string;
}

/** `models/ensure`: downloads (or finds) the models and optionally verifies them. */
export const ModelsEnsureRequestType = new RequestType<ModelsEnsureParams, ModelsEnsureResult, void>('models/ensure');
export const ModelsProgressType = new ProgressType<ModelsProgress>();

// ---------------------------------------------------------------------------------------------------------------
// Batches over a folder (types in batch.ts). `batch/plan` says what a run would do; `batch/run` does it, with
// `BatchProgressType` values as `$/progress` for the request's token; `$/cancelRequest` stops it after the current
// step (the report then says `cancelled`, and a later run continues where it stopped).

export interface BatchRunParams extends BatchOptions {
  progressToken?: string | number;
}

/** `batch/plan`: the items of a folder, which are already done, which cannot run, and a time estimate. */
export const BatchPlanRequestType = new RequestType<BatchOptions, BatchPlan, void>('batch/plan');
/** `batch/run`: runs the folder and writes its report; resolves with the report (also when cancelled). */
export const BatchRunRequestType = new RequestType<BatchRunParams, BatchReport, void>('batch/run');
export const BatchProgressType = new ProgressType<BatchProgress>();

// ---------------------------------------------------------------------------------------------------------------
// DragBench evaluation of a folder (types in evaluation.ts). `eval/run` scores every sample for each result set and
// writes the report into the folder; one `EvalProgressType` value per entry as `$/progress` for the request's token;
// `$/cancelRequest` stops it after the current entry (the answer then says `cancelled` and the report holds what was
// scored, which a later run keeps). It runs on the device queue shared with edits and batches.

export interface EvalRunParams extends EvalOptions {
  progressToken?: string | number;
}

/** `eval/run`: scores the folder and writes its report; resolves with the means and the report's files. */
export const EvalRunRequestType = new RequestType<EvalRunParams, EvalOutcome, void>('eval/run');
export const EvalProgressType = new ProgressType<EvalProgress>();
