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
import { inversionStepCount } from '../../../shared/edit-parameters';
import { hasText, type EditMode, type EditSpec, type ImagePoint } from '../../../shared/edit-spec';
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
import { ddimDenoise, referenceGuidedEps, rowOf, stackRows } from '../diffusion/denoise';
import { runDragLoop, type DragIteration } from '../drag/drag-loop';
import { DRAG_FEATURE_INDEX } from '../drag/drag-step-graph';
import { DragStepper } from '../drag/drag-stepper';
import { runFreeDragLoop } from '../drag/freedrag-loop';
import { LatentStepper } from '../drag/latent-stepper';
import { meanTermWeights } from '../drag/mask-term';
import { runTextLoop } from '../drag/text-loop';
import type { Point } from '../drag/tracking';
import { DEFAULT_WORKING_WIDTH, readEditInput, toImagePixels, workingGeometry, type EditInput, type WorkingGeometry } from './edit-input';
import { DEFAULT_MODELS, assertLoadedAsRecorded, modelIdentity, recipeModel, resolveEditModels, type ResolvedEditModel } from './edit-models';
import { EditProgressReporter } from './edit-progress';
import type { EditSession } from './edit-session';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { IO, vaeDecodeGraph, vaeEncodeGraph } from '../models/graphs';
import { ddimInvert } from '../diffusion/inversion';
import { trainLora, type LoraTrainingSettings } from '../lora/lora';
import { cachedLora, loraCacheKey } from '../lora/lora-cache';
import type { LoraWeights } from '../lora/lora-weights';
import { openPipelineModels, type PipelineModels } from '../models/models';
import { resolvePrecision } from '../runtime/precision';
import { previewPng } from './preview';
import { encodeGuidanceText, encodePrompt, type EncodedPrompt } from '../models/text-conditioning';
import { UNetRunner } from '../models/unet-runner';

const f32 = Math.fround;

/** An output path that cannot be used (it would overwrite the source or its spec, or it is not a .png). */
export class OutputPathError extends Error {
  override readonly name = 'OutputPathError';
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
   * slowest); default false, which recomputes only the UNet's self-attention probabilities.
   */
  readonly rematerialize?: boolean;
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
  /** The models' precision (fp16: half-precision compute with float32 islands, see docs/models.md). */
  precision: Precision;
}

export type PipelineRecipe = Recipe & { pipeline: RecipePipelineSettings };

export interface EditOutcome extends EditRunResult {
  readonly recipe: PipelineRecipe;
}

interface Prepared {
  readonly models: PipelineModels;
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
  const rematerialize = request.rematerialize ?? false;
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
  const session = new GraphSession(engine, { device, ...(signal ? { signal } : {}), ...(shared ? { cache: shared.graphs } : {}) });
  try {
    const prepared = await timed('load', () => prepare(session, request, input, { sdId, clipId, guidanceText, precision, cacheDir }, progress, signal));
    const { models } = prepared;
    // What the model store had to fall back to (another precision's weight files, the cached snapshot) belongs in the recipe.
    for (const model of [prepared.stableDiffusion, prepared.clip]) notes.push(...(model?.resolved.notes ?? []));
    const geometry = workingGeometry(input, workingWidth, vaeScaleFactor(models.vae.config));
    const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, p.inferenceSteps);
    const plan = inversionPlan(schedule, inversionStepCount(p));

    const { lora, fromCache } = await timed('lora', () => fineTune(session, models, prepared, geometry, input, { cacheDir, precision, rematerialize }, progress, signal, notes));

    progress.start('encode', 1);
    const zEncoded = await timed('encode', () => encodeLatent(session, models, geometry));

    const zStar = await timed('inversion', async () => {
      const runner = await UNetRunner.create(session, models.unet, {
        batch: 1,
        height: geometry.latentHeight,
        width: geometry.latentWidth,
        tokens: prepared.prompt.tokens,
        context: prepared.prompt.embedding,
        lora,
        label: 'unet eps',
      });
      progress.start('inversion', plan.inversion.length);
      return ddimInvert(schedule, plan.inversion, zEncoded, runner.eps, ({ step, total }) => progress.step('inversion', step, total));
    });

    const dragged = await timed('drag', () =>
      drag(session, { models, prepared, geometry, input, lora, schedule, tStar: plan.tStar, tracking, rematerialize, zStar }, progress, signal),
    );

    const edited = await timed('denoise', async () => {
      const eps = await referenceGuidedEps(session, {
        unet: models.unet,
        height: geometry.latentHeight,
        width: geometry.latentWidth,
        tokens: prepared.prompt.tokens,
        context: prepared.prompt.embedding,
        lora,
        masa: { startStep: p.masaStartStep, startLayer: p.masaStartLayer },
      });
      progress.start('denoise', plan.denoising.length);
      const both = await ddimDenoise(schedule, plan.denoising, stackRows(zStar, dragged.latent), eps, ({ step, total }) => progress.step('denoise', step, total));
      return rowOf(both, 2, 1);
    });

    progress.start('write', 2);
    const result = await timed('write', () => decodeResult(session, models, geometry, edited, input));
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
        precision,
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

/** CLIP's guidance text: the edit prompt, or the prompt when the edit prompt is empty; null when both are. */
export function guidanceTextOf(prompt: string, editPrompt: string | undefined): string | null {
  if (hasText(editPrompt)) return editPrompt;
  return hasText(prompt) ? prompt : null;
}

async function prepare(
  session: GraphSession,
  request: EditRequest,
  input: EditInput,
  ids: { sdId: string; clipId: string | null; guidanceText: string | null; precision: Precision; cacheDir: string },
  progress: EditProgressReporter,
  signal: AbortSignal | undefined,
): Promise<Prepared> {
  progress.start('load', 3, `Stable Diffusion: ${ids.sdId}${ids.clipId ? `, CLIP: ${ids.clipId}` : ''}`);
  const hubCache = request.settings?.hubCacheDirectory;
  const open = async () => {
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
    const models = await openPipelineModels({
      stableDiffusionFolder: resolved.stableDiffusion.resolved.singleFile ?? resolved.stableDiffusion.resolved.folder,
      ...(resolved.clip ? { clipFolder: resolved.clip.resolved.folder } : {}),
      ...(request.tokenizerFolder ? { tokenizerFolder: request.tokenizerFolder } : {}),
      precision: ids.precision,
      cacheDir: ids.cacheDir,
      onConvert: (file) => progress.note('load', `writing a float16 copy of ${path.basename(file)} (once per checkpoint)`),
    });
    assertLoadedAsRecorded(resolved.stableDiffusion, models.weightFiles.stableDiffusion);
    if (resolved.clip) assertLoadedAsRecorded(resolved.clip, models.weightFiles.clip);
    return { resolved, models };
  };
  // A session resolves and opens the same models once for all its edits.
  const modelsKey = JSON.stringify([ids.sdId, ids.clipId, request.hub ?? null, hubCache ?? null, request.modelBaseDir ?? process.cwd(), request.tokenizerFolder ?? null, ids.precision]);
  const { resolved, models } = await (request.session ? request.session.reuse(`models:${modelsKey}`, open) : open());
  progress.step('load', 2, 3);
  const prompt = await encodePrompt(session, models.textEncoder, models.tokenizer, input.spec.prompt);
  const guidance = ids.guidanceText !== null && models.clip ? await encodeGuidanceText(session, models.clip, models.tokenizer, ids.guidanceText) : null;
  progress.step('load', 3, 3);
  return { models, stableDiffusion: resolved.stableDiffusion, clip: resolved.clip, prompt, guidance };
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
    settings: { rank, steps, learningRate, batchSize, seed, cropSize, weightDecay, ...(precision === 'fp16' ? { precision } : {}) },
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

async function encodeLatent(session: GraphSession, models: PipelineModels, geometry: WorkingGeometry): Promise<Float32Array> {
  const { image } = geometry;
  const encoder = await session.compile(vaeEncodeGraph(models.vae, 1, image.height, image.width), 'vae encode');
  const out = await session.run(encoder, { [IO.image]: rgbToSignedChw(image) }, [IO.mean], 'encoding');
  // image2latent: latent_dist.mean · scaling_factor.
  const scaling = models.vae.config.scalingFactor;
  return float32Output(out, IO.mean).map((v) => f32(v * scaling));
}

interface DragRun {
  readonly models: PipelineModels;
  readonly prepared: Prepared;
  readonly geometry: WorkingGeometry;
  readonly input: EditInput;
  readonly lora: LoraWeights | null;
  readonly schedule: DdimSchedule;
  readonly tStar: number;
  readonly tracking: 'fast' | 'plain' | 'none';
  readonly rematerialize: boolean;
  readonly zStar: Float32Array;
}

interface Dragged {
  readonly latent: Float32Array;
  readonly handles: readonly Point[];
  readonly iterations: number;
  readonly reachedTargets: boolean;
}

/** The latent optimisation of the spec's mode. */
async function drag(session: GraphSession, run: DragRun, progress: EditProgressReporter, signal: AbortSignal | undefined): Promise<Dragged> {
  const { models, prepared, geometry, input } = run;
  const p = input.spec.parameters;
  const { latentHeight: h, latentWidth: w } = geometry;
  const shapes = featureShapes(models.unet.plan, 1, h, w);
  const channels = shapes[featureNames(models.unet.plan)[DRAG_FEATURE_INDEX]!]![1]!;
  const onIteration = iterationReporter(session, run, progress);
  const guidance = prepared.guidance && models.clip ? { clip: models.clip, textEmbeds: prepared.guidance, coefficient: p.clipGuidanceWeight } : null;
  const mode = input.spec.mode;
  progress.start('drag', p.dragSteps);
  if (mode === 'freedrag' || mode === 'text') {
    const latentChannels = models.unet.plan.config.inChannels;
    const config = { pairs: geometry.handles.length, channels, radius: p.motionRadius, supervision: geometry.supervision };
    const stepper = await LatentStepper.create(session, {
      unet: models.unet,
      vae: models.vae,
      latentHeight: h,
      latentWidth: w,
      context: prepared.prompt.embedding,
      tokens: prepared.prompt.tokens,
      lora: run.lora,
      schedule: run.schedule,
      timestep: run.tStar,
      local: mode === 'freedrag' ? { kind: 'freedrag', config } : { kind: 'none' },
      // FreeDrag's background term is a mean over the latent; CLIPDrag's (used by text mode) a sum.
      backgroundWeights: geometry.backgroundWeights && mode === 'freedrag' ? meanTermWeights(geometry.backgroundWeights, latentChannels) : geometry.backgroundWeights,
      guidance: mode === 'text' ? guidance : null,
      rematerialize: run.rematerialize,
    });
    const common = { stepper, zStar: run.zStar, learningRate: p.latentLearningRate, previewInterval: p.previewInterval, onIteration, ...(signal ? { signal } : {}) };
    if (mode === 'text') {
      const result = await runTextLoop({ ...common, iterations: p.dragSteps });
      return { ...result, handles: [], reachedTargets: true };
    }
    return runFreeDragLoop({
      ...common,
      handles: geometry.handles,
      targets: geometry.targets,
      config,
      latentSize: [h, w],
      maxIterations: p.dragSteps,
      expectedLoss: p.freedragExpectedLoss,
      maxDistance: p.freedragMaxDistance,
    });
  }
  const stepper = await DragStepper.create(session, {
    unet: models.unet,
    vae: models.vae,
    latentHeight: h,
    latentWidth: w,
    context: prepared.prompt.embedding,
    tokens: prepared.prompt.tokens,
    lora: run.lora,
    schedule: run.schedule,
    timestep: run.tStar,
    drag: {
      variant: input.spec.mode === 'drag' ? 'dragdiffusion' : 'clipdrag',
      pairs: geometry.handles.length,
      channels,
      motionRadius: p.motionRadius,
      trackingRadius: p.trackingRadius,
      supervision: geometry.supervision,
    },
    backgroundWeights: geometry.backgroundWeights,
    guidance,
    rematerialize: run.rematerialize,
  });
  await stepper.reference(run.zStar, geometry.handles);
  return runDragLoop({
    stepper,
    zStar: run.zStar,
    handles: geometry.handles,
    targets: geometry.targets,
    maxIterations: p.dragSteps,
    learningRate: p.latentLearningRate,
    tracking: run.tracking === 'none' ? 'plain' : run.tracking,
    fusion: { rule: p.fusionRule, weight: p.fusionWeight },
    previewInterval: p.previewInterval,
    ...(signal ? { signal } : {}),
    onIteration,
  });
}

/** Progress of every iteration: losses, handles in source pixels, and the preview when one was asked for. */
function iterationReporter(session: GraphSession, run: DragRun, progress: EditProgressReporter): (it: DragIteration) => Promise<void> {
  const { models, geometry, input } = run;
  const { latentHeight: h, latentWidth: w } = geometry;
  let decoder: Awaited<ReturnType<GraphSession['compile']>> | null = null;
  const onIteration = async (it: DragIteration) => {
    const losses: Record<string, number> = {};
    if (it.motionLoss !== null) losses.motion = it.motionLoss;
    if (it.maskLoss !== null) losses.mask = it.maskLoss;
    if (it.clipLoss !== null) losses.clip = it.clipLoss;
    let previewPngBase64: string | undefined;
    if (it.preview?.image) previewPngBase64 = await previewPng(it.preview.image, geometry.image.width, geometry.image.height);
    else if (it.preview?.predX0) {
      decoder ??= await session.compile(vaeDecodeGraph(models.vae, 1, h, w), 'vae decode');
      const image = float32Output(await session.run(decoder, { [IO.latents]: it.preview.predX0 }, [IO.image], 'dragging'), IO.image);
      previewPngBase64 = await previewPng(image, geometry.image.width, geometry.image.height);
    }
    progress.step('drag', it.iteration, it.maxIterations, {
      losses,
      handles: it.handles.map((hp) => roundPoint(toImagePixels(hp, input.image, geometry.supervision))),
      ...(previewPngBase64 ? { previewPngBase64 } : {}),
    });
  };
  return onIteration;
}

/** The edited latent decoded, as 8-bit RGB at the source image's size. */
async function decodeResult(session: GraphSession, models: PipelineModels, geometry: WorkingGeometry, latent: Float32Array, input: EditInput): Promise<RgbImage> {
  const decoder = await session.compile(vaeDecodeGraph(models.vae, 1, geometry.latentHeight, geometry.latentWidth), 'vae decode');
  const image = float32Output(await session.run(decoder, { [IO.latents]: latent }, [IO.image], 'decoding'), IO.image);
  const rgb = unitChwToRgb(image, geometry.image.width, geometry.image.height);
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
