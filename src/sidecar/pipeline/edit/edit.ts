/**
 * One edit of one image in any mode (CLIPDrag, DragDiffusion, FreeDrag, text), end to end:
 *
 *   read image + spec → models (hub or folders) → text conditioning → LoRA (cached) → VAE encode →
 *   DDIM inversion to t* → drag loop → reference-guided denoising with mutual self-attention →
 *   VAE decode → resize back to the source size → `<name>.clipdrag[-n].png` + recipe next to the source.
 *
 * Progress is reported per step of every stage (time left, losses, handle positions and, every
 * `previewInterval` drag iterations, a small preview). Cancellation is checked around every engine run;
 * a cancelled edit writes nothing. The source file is only ever read.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import sharp from 'sharp';
import { inversionStepCount, type EditParameters } from '../../../shared/edit-parameters';
import { hasText, type EditMode, type EditSpec, type ImagePoint, type ResolvedEditSpec } from '../../../shared/edit-spec';
import type { EditOverrides, EditProgress, EditRunResult, EditSettings, Precision } from '../../../shared/protocol';
import type { Recipe, RecipeStageTiming } from '../../../shared/recipe';
import { Engine } from '../../engine/runtime/engine';
import { onnxruntimeVersion } from '../../engine/runtime/providers';
import type { HubSettingsOverrides } from '../../hub/hub-settings';
import { rgbToSignedChw, unitChwToRgb, type RgbImage } from '../../io/image';
import { resizeBilinearLikePil } from '../../io/resize';
import { describeSourceFile, writeEditResult, writeNamedResult, type RecipeDraft } from '../../io/results';
import { specWithInlineMask } from '../../io/spec-file';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../models/config';
import { featureNames } from '../../models/unet/plan';
import { featureShapes } from '../../models/unet/unet';
import { vaeScaleFactor } from '../../models/vae';
import { SIDECAR_VERSION } from '../../version';
import { defaultPipelineCacheDir } from '../runtime/cache-dir';
import { throwIfCancelled } from './cancellation';
import { createDdimSchedule, inversionPlan, type DdimSchedule } from '../diffusion/ddim';
import { ddimDenoise, referenceGuidedEps, rowOf, stackRows, type DenoiseProgress } from '../diffusion/denoise';
import { runDragLoop, type DragIteration, type DragLoopResult } from '../drag/drag-loop';
import { DRAG_FEATURE_INDEX } from '../drag/drag-step-graph';
import { DragStepper } from '../drag/drag-stepper';
import { runFreeDragLoop } from '../drag/freedrag-loop';
import { LatentStepper } from '../drag/latent-stepper';
import { meanTermWeights } from '../drag/mask-term';
import { runTextLoop } from '../drag/text-loop';
import { DEFAULT_WORKING_WIDTH, readEditInput, toImagePixels, workingGeometry, type EditInput, type WorkingGeometry } from './edit-input';
import { DEFAULT_MODELS, assertLoadedAsRecorded, modelIdentity, recipeModel, resolveEditModels, type ResolvedEditModel } from './edit-models';
import { EditProgressReporter } from './edit-progress';
import type { EditSession } from './edit-session';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { IO, vaeDecodeGraph, vaeEncodeGraph } from '../models/graphs';
import { ddimInvert, type InversionProgress } from '../diffusion/inversion';
import { trainLora, type LoraTrainingSettings } from '../lora/lora';
import { cachedLora, loraCacheKey } from '../lora/lora-cache';
import type { LoraWeights } from '../lora/lora-weights';
import { openPipelineModels, type PipelineModels } from '../models/models';
import type { DeviceMemory, MemoryPlan } from '../runtime/memory-policy';
import { resolvePrecision } from '../runtime/precision';
import { keepsGraphs, planEditMemory } from './edit-memory';
import { previewPng } from './preview';
import { encodeGuidanceText, encodePrompt, type EncodedPrompt } from '../models/text-conditioning';
import { UNetRunner } from '../models/unet-runner';
import type { ErrorKind } from '../../../shared/error-kind';

const f32 = Math.fround;

/** An output path that cannot be used (it would overwrite the source or its spec, or it is not a .png). */
export class OutputPathError extends Error {
  override readonly name = 'OutputPathError';
  readonly kind: ErrorKind = 'invalid-input';
}

export interface EditRequest {
  /** The source image. */
  readonly imagePath: string;
  /** The spec to run; absent: the image's spec file (`<image>.clipdrag-edit.json`). */
  readonly spec?: EditSpec;
  /** Where the spec lives (a mask path is relative to it); default the image's spec file. */
  readonly specPath?: string;
  /** Spec fields replaced for this run. */
  readonly overrides?: EditOverrides;
  /** Models and device the spec leaves open (the user's settings). */
  readonly settings?: EditSettings;
  /** Write the result here (recipe beside it, `.json`) instead of next to the source. */
  readonly outPath?: string;
  /** Trained LoRAs and onnxruntime session folders; default `defaultPipelineCacheDir()`. */
  readonly cacheDir?: string;
  readonly hub?: HubSettingsOverrides;
  /** Relative model folders are resolved against this folder (default: the working directory). */
  readonly modelBaseDir?: string;
  /** A folder with CLIP's vocab.json + merges.txt, for model folders that ship no tokenizer. */
  readonly tokenizerFolder?: string;
  /** An engine to use (kept open); default: one created and closed by this edit. */
  readonly engine?: Engine;
  /**
   * Shared with other edits (a batch): its engine, the models it opened and the graphs it compiled are used and
   * kept open instead of being opened and released by this edit. Edits of one session run one at a time.
   */
  readonly session?: EditSession;
  /** Width the image is edited at (the reference: 512); recorded in the recipe. */
  readonly workingWidth?: number;
  /** Point tracking: default fast (CLIPDrag) in `clipdrag` mode, plain in `drag` mode (`freedrag` and `text` track no points). */
  readonly tracking?: 'fast' | 'plain';
  /**
   * Recompute whole network blocks in the backward passes (drag step and LoRA training: least memory,
   * slowest): the same as the `blocks` memory policy. Default: the memory policy of `settings` (auto).
   */
  readonly rematerialize?: boolean;
  /** The device memory the memory policy plans against (tests); default the device's own. */
  readonly deviceMemory?: DeviceMemory | null;
}

export interface EditOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EditProgress) => void;
}

/** Pipeline settings the recipe records besides the spec (needed to reproduce the result). */
export interface RecipePipelineSettings {
  workingWidth: number;
  workingSize: { width: number; height: number };
  /** `none`: the mode tracks no points (`freedrag` moves templates by line search, `text` has no points). */
  tracking: 'fast' | 'plain' | 'none';
  /** The timestep the latent was optimised at. */
  tStar: number;
  /** CLIP's guidance text (the edit prompt, else the prompt), or null when the CLIP term was off. */
  guidanceText: string | null;
  rematerialize: boolean;
  /**
   * The models' precision (fp16: half-precision compute with float32 islands; fp16-weights: float16 weights,
   * float32 arithmetic; docs/models.md).
   */
  precision: Precision;
  /** Present when the precision was `auto` and the memory policy held the weights in float16 to fit. */
  precisionByPolicy?: true;
}

export type PipelineRecipe = Recipe & { pipeline: RecipePipelineSettings };

export interface EditOutcome extends EditRunResult {
  readonly recipe: PipelineRecipe;
}

interface Prepared {
  readonly models: PipelineModels;
  readonly geometry: WorkingGeometry;
  readonly memory: MemoryPlan;
  readonly stableDiffusion: ResolvedEditModel;
  readonly clip: ResolvedEditModel | null;
  readonly prompt: EncodedPrompt;
  readonly guidance: Float32Array | null;
}

export async function edit(request: EditRequest, options: EditOptions = {}): Promise<EditOutcome> {
  const { signal } = options;
  const progress = new EditProgressReporter(options.onProgress);
  const timings: RecipeStageTiming[] = [];
  const timed = async <T>(stage: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      timings.push({ stage, ms: Math.round(performance.now() - started) });
    }
  };
  throwIfCancelled(signal, 'reading the image');
  progress.start('decode', 1);
  const input = await timed('decode', () => readEditInput(request));
  if (request.outPath !== undefined) outputPaths(request.outPath, input);
  throwIfCancelled(signal, 'reading the image');
  const { spec } = input;
  const p = spec.parameters;
  const guidanceText = guidanceTextFor(spec);
  const tracking = trackingFor(spec.mode, request.tracking);
  const workingWidth = request.workingWidth ?? DEFAULT_WORKING_WIDTH;
  const memoryPreference = request.rematerialize ? 'blocks' : (request.settings?.memoryPolicy ?? 'auto');
  const device = request.settings?.device ?? 'auto';
  const precision = resolvePrecision(request.settings?.precision);
  const cacheDir = request.cacheDir ?? defaultPipelineCacheDir();
  const sdId = spec.model ?? request.settings?.model ?? DEFAULT_MODELS.stableDiffusion;
  const clipId = guidanceText === null ? null : (spec.clipModel ?? request.settings?.clipModel ?? DEFAULT_MODELS.clip);
  const notes: string[] = [];
  if (spec.mode === 'clipdrag' && guidanceText === null) {
    notes.push('Both prompts are empty: the CLIP term was off and the drag gradient alone moved the latent (the reference code would not move it at all).');
  }

  const shared = request.session;
  const engine = shared?.engine ?? request.engine ?? new Engine({ cacheDir: path.join(cacheDir, 'sessions') });
  // A batch keeps its graphs for the next edit; a single edit releases each stage's graphs when the stage is done.
  const session = new GraphSession(engine, { device, ...(signal ? { signal } : {}), ...(shared ? { cache: shared.graphs } : {}) });
  try {
    // Decided as soon as the models are open, before any of them runs: an edit that cannot fit fails here.
    const planFor = (models: PipelineModels) => {
      const geometry = workingGeometry(input, workingWidth, vaeScaleFactor(models.vae.config));
      const memory = planEditMemory({
        models,
        input,
        geometry,
        guided: guidanceText !== null,
        precision,
        halveWeightsIfNeeded: (request.settings?.precision ?? 'auto') === 'auto',
        device,
        preference: memoryPreference,
        ...(request.deviceMemory !== undefined ? { memory: request.deviceMemory } : {}),
      });
      progress.note('load', memory.reason);
      // A batch keeps its graphs for the next edit when there is room for them; otherwise each stage's graphs go when it is done.
      session.lifetime = shared && keepsGraphs(memory) ? 'edit' : 'stage';
      return { geometry, memory };
    };
    const prepared = await timed('load', () => prepare(session, request, input, { sdId, clipId, guidanceText, precision, cacheDir, planFor }, progress, signal));
    const { models, geometry, memory } = prepared;
    const rematerialize = memory.recompute === 'blocks';
    // The memory plan may have held the weights in float16 (auto precision on a device without room for fp32).
    const runPrecision = memory.precision;
    // What the model store had to fall back to (another precision's weight files, the cached snapshot) belongs in the recipe.
    for (const model of [prepared.stableDiffusion, prepared.clip]) notes.push(...(model?.resolved.notes ?? []));
    if (models.configSource) notes.push(models.configSource);
    const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, p.inferenceSteps);
    const plan = inversionPlan(schedule, inversionStepCount(p));

    const { lora, fromCache } = await timed('lora', () => fineTune(session, models, prepared, geometry, input, { cacheDir, precision: runPrecision, rematerialize }, progress, signal, notes));

    const stages: EditStages = {
      session,
      models,
      geometry,
      mode: spec.mode,
      parameters: p,
      prompt: prepared.prompt,
      guidance: prepared.guidance,
      lora,
      tracking,
      rematerialize,
    };
    progress.start('encode', 1);
    const zEncoded = await timed('encode', () => encodeImage(stages));
    const zStar = await timed('inversion', () => {
      progress.start('inversion', plan.inversion.length);
      return invertLatent(stages, schedule, plan.inversion, zEncoded, ({ step, total }) => progress.step('inversion', step, total));
    });

    progress.start('drag', p.dragSteps);
    const dragged = await timed('drag', () => dragLatent(stages, schedule, plan.tStar, zStar, { ...(signal ? { signal } : {}), onIteration: dragProgress(stages, input, progress) }));

    const edited = await timed('denoise', async () => {
      progress.start('denoise', plan.denoising.length);
      const both = await denoiseWithReference(stages, schedule, plan.denoising, zStar, dragged.latent, ({ step, total }) => progress.step('denoise', step, total));
      return rowOf(both, 2, 1);
    });

    progress.start('write', 2);
    const result = await timed('write', () => decodeResult(stages, edited, input));
    throwIfCancelled(signal, 'writing the result');
    const finalHandles = dragged.handles.map((h) => roundPoint(toImagePixels(h, input.image, geometry.supervision)));
    const draft: RecipeDraft & { pipeline: RecipePipelineSettings } = {
      software: {
        name: 'clipdrag',
        version: SIDECAR_VERSION,
        node: process.version,
        onnxruntime: onnxruntimeVersion(),
        sharp: sharp.versions.sharp ?? 'unknown',
        platform: `${process.platform}-${process.arch}`,
      },
      source: await describeSourceFile(input.imagePath, { width: input.image.width, height: input.image.height }),
      spec: { ...specWithInlineMask(spec, input.mask), model: sdId, ...(clipId !== null ? { clipModel: clipId } : {}) },
      ...(input.maskFile !== undefined ? { maskFile: input.maskFile } : {}),
      seed: p.seed,
      models: [recipeModel(prepared.stableDiffusion), ...(prepared.clip ? [recipeModel(prepared.clip)] : [])],
      device: { preference: device, executionProvider: session.provider ?? 'unknown' },
      timings,
      drag: {
        iterations: dragged.iterations,
        reachedTargets: dragged.reachedTargets,
        finalHandles,
        finalHandlesSupervision: dragged.handles.map((h) => [h[0], h[1]]),
      },
      ...(p.loraSteps > 0 ? { lora: { fromCache, steps: p.loraSteps } } : {}),
      ...(notes.length > 0 ? { notes } : {}),
      pipeline: {
        workingWidth,
        workingSize: { width: geometry.image.width, height: geometry.image.height },
        tracking,
        tStar: plan.tStar,
        guidanceText,
        rematerialize,
        precision: runPrecision,
        ...(runPrecision !== precision ? { precisionByPolicy: true as const } : {}),
      },
    };
    const written = await writeResult(input, result, draft, request.outPath, (message) => progress.note('write', message));
    progress.step('write', 2, 2);
    return {
      imagePath: written.imagePath,
      recipePath: written.recipePath,
      iterations: dragged.iterations,
      reachedTargets: dragged.reachedTargets,
      finalHandles,
      timings,
      executionProvider: session.provider ?? 'unknown',
      loraFromCache: fromCache,
      recipe: written.recipe,
    };
  } finally {
    await session.dispose();
    if (!request.engine && !shared) await engine.close();
  }
}

/** CLIP's guidance text: the edit prompt, or the prompt when the edit prompt is empty; null when both are. */
/** CLIP's guidance text per mode: `clipdrag` as `guidanceTextOf`, `text` the edit prompt, the drag-only modes none. */
export function guidanceTextFor(spec: Pick<EditSpec, 'mode' | 'prompt' | 'editPrompt'>): string | null {
  if (spec.mode === 'clipdrag') return guidanceTextOf(spec.prompt, spec.editPrompt);
  if (spec.mode === 'text') return hasText(spec.editPrompt) ? spec.editPrompt : null;
  return null;
}

function trackingFor(mode: EditMode, requested: 'fast' | 'plain' | undefined): 'fast' | 'plain' | 'none' {
  if (mode === 'freedrag' || mode === 'text') return 'none';
  return requested ?? (mode === 'drag' ? 'plain' : 'fast');
}

export function guidanceTextOf(prompt: string, editPrompt: string | undefined): string | null {
  if (hasText(editPrompt)) return editPrompt;
  return hasText(prompt) ? prompt : null;
}

async function prepare(
  session: GraphSession,
  request: EditRequest,
  input: EditInput,
  ids: {
    sdId: string;
    clipId: string | null;
    guidanceText: string | null;
    precision: Precision;
    cacheDir: string;
    planFor: (models: PipelineModels) => { geometry: WorkingGeometry; memory: MemoryPlan };
  },
  progress: EditProgressReporter,
  signal: AbortSignal | undefined,
): Promise<Prepared> {
  progress.start('load', 3, `Stable Diffusion: ${ids.sdId}${ids.clipId ? `, CLIP: ${ids.clipId}` : ''}`);
  const hubCache = request.settings?.hubCacheDirectory;
  const modelConfig = request.settings?.modelConfig !== undefined ? path.resolve(request.modelBaseDir ?? process.cwd(), request.settings.modelConfig) : undefined;
  const resolve = async () => {
    const resolved = await resolveEditModels({
      stableDiffusion: ids.sdId,
      clip: ids.clipId,
      precision: ids.precision,
      hub: { ...request.hub, ...(hubCache ? { cacheDir: hubCache } : {}) },
      baseDir: request.modelBaseDir ?? process.cwd(),
      ...(signal ? { signal } : {}),
      onEvent: (_role, id, event) => {
        if (event.type === 'file-start' && event.phase === 'download') progress.note('load', `downloading ${event.file} of ${id}`);
        else if (event.type === 'note') progress.note('load', event.message);
      },
    });
    progress.step('load', 1, 3);
    return resolved;
  };
  const open = async (resolved: Awaited<ReturnType<typeof resolve>>, precision: Precision) => {
    const models = await openPipelineModels({
      stableDiffusionFolder: resolved.stableDiffusion.resolved.singleFile ?? resolved.stableDiffusion.resolved.folder,
      ...(modelConfig !== undefined ? { stableDiffusionConfigFolder: modelConfig } : {}),
      ...(resolved.clip ? { clipFolder: resolved.clip.resolved.folder } : {}),
      ...(request.tokenizerFolder ? { tokenizerFolder: request.tokenizerFolder } : {}),
      precision,
      cacheDir: ids.cacheDir,
      onConvert: (file) => progress.note('load', `writing a float16 copy of ${path.basename(file)} (once per checkpoint)`),
    });
    // fp16-weights chosen by the policy loads float16 copies of files resolved for fp32: what was recorded still holds.
    if (precision === ids.precision) {
      assertLoadedAsRecorded(resolved.stableDiffusion, models.weightFiles.stableDiffusion);
      if (resolved.clip) assertLoadedAsRecorded(resolved.clip, models.weightFiles.clip);
    }
    return models;
  };
  // A session resolves and opens the same models once for all its edits.
  const reuse = <T>(key: string, make: () => Promise<T>) => (request.session ? request.session.reuse(key, make) : make());
  const modelsKey = JSON.stringify([ids.sdId, ids.clipId, request.hub ?? null, hubCache ?? null, request.modelBaseDir ?? process.cwd(), request.tokenizerFolder ?? null, modelConfig ?? null]);
  const resolved = await reuse(`resolved:${JSON.stringify([modelsKey, ids.precision])}`, resolve);
  let models = await reuse(`models:${JSON.stringify([modelsKey, ids.precision])}`, () => open(resolved, ids.precision));
  progress.step('load', 2, 3);
  const { geometry, memory } = ids.planFor(models);
  if (memory.precision !== ids.precision) models = await reuse(`models:${JSON.stringify([modelsKey, memory.precision])}`, () => open(resolved, memory.precision));
  const prompt = await encodePrompt(session, models.textEncoder, models.tokenizer, input.spec.prompt);
  const guidance = ids.guidanceText !== null && models.clip ? await encodeGuidanceText(session, models.clip, models.tokenizer, ids.guidanceText) : null;
  progress.step('load', 3, 3);
  return { models, geometry, memory, stableDiffusion: resolved.stableDiffusion, clip: resolved.clip, prompt, guidance };
}

async function fineTune(
  session: GraphSession,
  models: PipelineModels,
  prepared: Prepared,
  geometry: WorkingGeometry,
  input: EditInput,
  { cacheDir, precision, rematerialize }: { cacheDir: string; precision: Precision; rematerialize: boolean },
  progress: EditProgressReporter,
  signal: AbortSignal | undefined,
  notes: string[],
): Promise<{ lora: LoraWeights | null; fromCache: boolean }> {
  const p = input.spec.parameters;
  if (p.loraSteps === 0) return { lora: null, fromCache: false };
  const settings: LoraTrainingSettings = {
    rank: p.loraRank,
    steps: p.loraSteps,
    learningRate: p.loraLearningRate,
    batchSize: p.loraBatchSize,
    seed: p.seed,
    cropSize: geometry.image.width,
    weightDecay: 1e-2,
    rematerialize,
  };
  const image = geometry.image;
  const imageSha256 = createHash('sha256').update(`${image.width}x${image.height}:`).update(image.data).digest('hex');
  // Rematerialisation and micro-batching change memory use, not the result (beyond float rounding): not part of the key.
  const { rank, steps, learningRate, batchSize, seed, cropSize, weightDecay } = settings;
  const key = loraCacheKey({
    imageSha256,
    prompt: input.spec.prompt,
    model: modelIdentity(prepared.stableDiffusion),
    // fp32 keys stay as they were, so LoRAs cached before precision existed are still found.
    settings: { rank, steps, learningRate, batchSize, seed, cropSize, weightDecay, ...(precision !== 'fp32' ? { precision } : {}) },
  });
  progress.start('lora', settings.steps);
  const cached = await cachedLora(
    cacheDir,
    key,
    () =>
      trainLora(session, {
        unet: models.unet,
        vae: models.vae,
        schedule: createDdimSchedule(models.stableDiffusion.scheduler, 1),
        image,
        context: prepared.prompt.embedding,
        tokens: prepared.prompt.tokens,
        settings,
        ...(signal ? { signal } : {}),
        onStep: ({ step, total, loss }) => progress.step('lora', step, total, { losses: { lora: loss } }),
      }),
    (message) => notes.push(message),
  );
  if (cached.fromCache) progress.step('lora', settings.steps, settings.steps, { message: 'LoRA from the cache (trained before for this image, prompt and model)' });
  return { lora: cached.lora, fromCache: cached.fromCache };
}

/**
 * The model stages of an edit once its inputs, models, text and LoRA are ready, each a function of its own so
 * that the conformance suite runs exactly these against the reference, stage by stage.
 */
export interface EditStages {
  readonly session: GraphSession;
  readonly models: PipelineModels;
  readonly geometry: WorkingGeometry;
  readonly mode: ResolvedEditSpec['mode'];
  readonly parameters: EditParameters;
  /** Stable Diffusion's conditioning of the prompt. */
  readonly prompt: Pick<EncodedPrompt, 'embedding' | 'tokens'>;
  /** CLIP's text embedding of the guidance text; null: no CLIP term. */
  readonly guidance: Float32Array | null;
  readonly lora: LoraWeights | null;
  readonly tracking: 'fast' | 'plain' | 'none';
  readonly rematerialize: boolean;
}

/** The working image's latent: `latent_dist.mean · scaling_factor` (the reference's image2latent). */
export async function encodeImage({ session, models, geometry }: EditStages): Promise<Float32Array> {
  const { image } = geometry;
  const encoder = await session.compile(vaeEncodeGraph(models.vae, 1, image.height, image.width), 'vae encode');
  const out = await session.run(encoder, { [IO.image]: rgbToSignedChw(image) }, [IO.mean], 'encoding');
  await session.release(encoder);
  // image2latent: latent_dist.mean · scaling_factor.
  const scaling = models.vae.config.scalingFactor;
  return float32Output(out, IO.mean).map((v) => f32(v * scaling));
}

/** DDIM inversion of the encoded latent up to t* (the last of `timesteps`). */
export async function invertLatent(
  stages: EditStages,
  schedule: DdimSchedule,
  timesteps: readonly number[],
  z0: Float32Array,
  onStep?: (progress: InversionProgress) => void,
): Promise<Float32Array> {
  const { geometry } = stages;
  const runner = await UNetRunner.create(stages.session, stages.models.unet, {
    batch: 1,
    height: geometry.latentHeight,
    width: geometry.latentWidth,
    tokens: stages.prompt.tokens,
    context: stages.prompt.embedding,
    lora: stages.lora,
    label: 'unet eps',
  });
  const inverted = await ddimInvert(schedule, timesteps, z0, runner.eps, onStep);
  await runner.close();
  return inverted;
}

/** The latent optimisation of the mode at t* from the inverted latent, `parameters.dragSteps` iterations at most. */
export async function dragLatent(
  stages: EditStages,
  schedule: DdimSchedule,
  tStar: number,
  zStar: Float32Array,
  options: { readonly signal?: AbortSignal; readonly onIteration?: (it: DragIteration) => void | Promise<void> } = {},
): Promise<DragLoopResult> {
  const { models, geometry, parameters: p } = stages;
  const { latentHeight: h, latentWidth: w } = geometry;
  const shapes = featureShapes(models.unet.plan, 1, h, w);
  const channels = shapes[featureNames(models.unet.plan)[DRAG_FEATURE_INDEX]!]![1]!;
  const guidance = stages.guidance && models.clip ? { clip: models.clip, textEmbeds: stages.guidance, coefficient: p.clipGuidanceWeight } : null;
  const common = {
    learningRate: p.latentLearningRate,
    previewInterval: p.previewInterval,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onIteration ? { onIteration: options.onIteration } : {}),
  };
  // What every mode's step graph is built on: the models, the text, the LoRA, and the latent's timestep t*.
  const atTStar = {
    unet: models.unet,
    vae: models.vae,
    latentHeight: h,
    latentWidth: w,
    context: stages.prompt.embedding,
    tokens: stages.prompt.tokens,
    lora: stages.lora,
    schedule,
    timestep: tStar,
  };
  if (stages.mode === 'freedrag' || stages.mode === 'text') {
    const latentChannels = models.unet.plan.config.inChannels;
    const config = { pairs: geometry.handles.length, channels, radius: p.motionRadius, supervision: geometry.supervision };
    const stepper = await LatentStepper.create(stages.session, {
      ...atTStar,
      local: stages.mode === 'freedrag' ? { kind: 'freedrag', config } : { kind: 'none' },
      // FreeDrag's background term is a mean over the latent; CLIPDrag's (used by text mode) a sum.
      backgroundWeights: geometry.backgroundWeights && stages.mode === 'freedrag' ? meanTermWeights(geometry.backgroundWeights, latentChannels) : geometry.backgroundWeights,
      guidance: stages.mode === 'text' ? guidance : null,
      rematerialize: stages.rematerialize,
    });
    try {
      if (stages.mode === 'text') {
        const result = await runTextLoop({ ...common, stepper, zStar, iterations: p.dragSteps });
        return { ...result, handles: [], reachedTargets: true };
      }
      return await runFreeDragLoop({
        ...common,
        stepper,
        zStar,
        handles: geometry.handles,
        targets: geometry.targets,
        config,
        latentSize: [h, w],
        maxIterations: p.dragSteps,
        expectedLoss: p.freedragExpectedLoss,
        maxDistance: p.freedragMaxDistance,
      });
    } finally {
      await stepper.close();
    }
  }
  const stepper = await DragStepper.create(stages.session, {
    ...atTStar,
    drag: {
      variant: stages.mode === 'drag' ? 'dragdiffusion' : 'clipdrag',
      pairs: geometry.handles.length,
      channels,
      motionRadius: p.motionRadius,
      trackingRadius: p.trackingRadius,
      supervision: geometry.supervision,
    },
    backgroundWeights: geometry.backgroundWeights,
    guidance,
    rematerialize: stages.rematerialize,
  });
  try {
    await stepper.reference(zStar, geometry.handles);
    return await runDragLoop({
      ...common,
      stepper,
      zStar,
      handles: geometry.handles,
      targets: geometry.targets,
      maxIterations: p.dragSteps,
      tracking: stages.tracking === 'none' ? 'plain' : stages.tracking,
      fusion: { rule: p.fusionRule, weight: p.fusionWeight },
    });
  } finally {
    await stepper.close();
  }
}

/** Denoising of [source, edited] from t* with mutual self-attention; returns both rows [2, 4, h, w]. */
export async function denoiseWithReference(
  stages: EditStages,
  schedule: DdimSchedule,
  timesteps: readonly number[],
  zStar: Float32Array,
  edited: Float32Array,
  onStep?: (progress: DenoiseProgress) => void,
): Promise<Float32Array> {
  const { geometry, parameters: p } = stages;
  const eps = await referenceGuidedEps(stages.session, {
    unet: stages.models.unet,
    height: geometry.latentHeight,
    width: geometry.latentWidth,
    tokens: stages.prompt.tokens,
    context: stages.prompt.embedding,
    lora: stages.lora,
    masa: { startStep: p.masaStartStep, startLayer: p.masaStartLayer },
  });
  const both = await ddimDenoise(schedule, timesteps, stackRows(zStar, edited), eps, onStep);
  await eps.close();
  return both;
}

/** A latent [1, 4, h, w] decoded: the image [1, 3, H, W] in [0, 1]. */
export async function decodeLatent({ session, models, geometry }: EditStages, latent: Float32Array): Promise<Float32Array> {
  const decoder = await session.compile(vaeDecodeGraph(models.vae, 1, geometry.latentHeight, geometry.latentWidth), 'vae decode');
  return float32Output(await session.run(decoder, { [IO.latents]: latent }, [IO.image], 'decoding'), IO.image);
}

/** Progress of each drag iteration: losses, handles in image pixels and, on preview iterations, a small image. */
function dragProgress(stages: EditStages, input: EditInput, progress: EditProgressReporter): (it: DragIteration) => Promise<void> {
  const { geometry } = stages;
  return async (it) => {
    const losses: Record<string, number> = {};
    if (it.motionLoss !== null) losses.motion = it.motionLoss;
    if (it.maskLoss !== null) losses.mask = it.maskLoss;
    if (it.clipLoss !== null) losses.clip = it.clipLoss;
    let previewPngBase64: string | undefined;
    if (it.preview?.image) previewPngBase64 = await previewPng(it.preview.image, geometry.image.width, geometry.image.height);
    else if (it.preview?.predX0) previewPngBase64 = await previewPng(await decodeLatent(stages, it.preview.predX0), geometry.image.width, geometry.image.height);
    progress.step('drag', it.iteration, it.maxIterations, {
      losses,
      handles: it.handles.map((hp) => roundPoint(toImagePixels(hp, input.image, geometry.supervision))),
      ...(previewPngBase64 ? { previewPngBase64 } : {}),
    });
  };
}

/** The edited latent decoded, as 8-bit RGB at the source image's size. */
async function decodeResult(stages: EditStages, latent: Float32Array, input: EditInput): Promise<RgbImage> {
  const { geometry } = stages;
  const rgb = unitChwToRgb(await decodeLatent(stages, latent), geometry.image.width, geometry.image.height);
  const { width, height } = input.image;
  return rgb.width === width && rgb.height === height ? rgb : resizeBilinearLikePil(rgb, width, height);
}

async function writeResult(
  input: EditInput,
  image: RgbImage,
  draft: RecipeDraft & { pipeline: RecipePipelineSettings },
  outPath: string | undefined,
  note: (message: string) => void,
): Promise<{ imagePath: string; recipePath: string; recipe: PipelineRecipe }> {
  const written =
    outPath === undefined
      ? await writeEditResult({ sourcePath: input.imagePath, image, recipe: draft })
      : await writeNamedResult({ imagePath: outputPaths(outPath, input).imagePath, image, recipe: draft });
  if ('recipeMoved' in written && written.recipeMoved) note(written.recipeMoved);
  return { imagePath: written.imagePath, recipePath: written.recipePath, recipe: written.recipe as PipelineRecipe };
}

/** The result and recipe paths of an explicit output, refused when it would overwrite the source or its spec. */
export function outputPaths(outPath: string, input: Pick<EditInput, 'imagePath' | 'specPath'>): { imagePath: string; recipePath: string } {
  const imagePath = path.resolve(outPath);
  if (!/\.png$/i.test(imagePath)) throw new OutputPathError(`The output ${imagePath} must be a .png file.`);
  const recipePath = `${imagePath.slice(0, -'.png'.length)}.json`;
  for (const target of [imagePath, recipePath]) {
    if (target === input.imagePath || target === input.specPath) {
      throw new OutputPathError(`The output ${target} would overwrite the source image or its spec; choose another output path.`);
    }
  }
  return { imagePath, recipePath };
}

function roundPoint(p: ImagePoint): ImagePoint {
  return [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100];
}
