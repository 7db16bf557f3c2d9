/**
 * Scores one drag edit the way DragBench papers do: mean distance (DIFT on Stable Diffusion 2.1), LPIPS (AlexNet)
 * and CLIP image similarity between a source image and a result, from model folders opened once. Graphs are
 * compiled per image size and kept for the next sample of that size.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Graph } from '../../engine/graph';
import { LPIPS_FILES, pickLpipsFiles } from '../../hub';
import { concat, reshape, resizeBilinear } from '../../engine/ops';
import type { Pixels8 } from '../../io/resize';
import { loadClipModel } from '../../models/checkpoint/layout';
import { convertTorchCheckpoints } from '../../models/checkpoint/torch-conversion';
import { assertClipPartBound, CLIP_IMAGE_PREFIXES, clipImageEmbeds, type ClipModelWeights } from '../../models/clip';
import { lpipsAlex } from '../../models/lpips';
import { CheckpointWeights } from '../../models/weights';
import { computeAlphasCumprod } from '../diffusion/ddim';
import { textEncoderGraph, IO } from '../models/graphs';
import { openPipelineModels, type PipelineModels } from '../models/models';
import { float32Output, type GraphSession } from '../runtime/graph-session';
import { SeededRandom } from '../runtime/random';
import { DIFT_DEFAULTS, DIFT_IO, diftGraph, diftNoiseShape, type DiftSpec } from './dift';
import { clipInput, diftInput, lpipsInput, resultAtSourceSize } from './metric-inputs';
import { matchPoints, type FeatureMap, type Point } from './point-matching';

export interface ScorerModels {
  /** A diffusers Stable Diffusion 2.1 folder (DIFT). */
  readonly dift: string;
  /** A transformers CLIPModel folder (ViT-B/32). */
  readonly clip: string;
  /**
   * An LPIPS-AlexNet folder: `lpips-alex.safetensors`, or the published PyTorch files (`alex.pth` with the linear
   * layers and an AlexNet checkpoint `alexnet*.pth`), converted once into `cacheDir`.
   */
  readonly lpips: string;
}

export interface SampleToScore {
  readonly source: Pixels8;
  readonly result: Pixels8;
  readonly prompt: string;
  /** [row, col] image pixels. */
  readonly handles: readonly Point[];
  readonly targets: readonly Point[];
  /** Seeds this sample's DIFT noise (so a sample's score does not depend on the samples before it). */
  readonly seed: number;
}

export interface SampleScore {
  /** Distance from where each handle's content ended up to its target, in pixels. */
  readonly distances: number[];
  readonly meanDistance: number;
  readonly lpips: number;
  /** 1 − LPIPS. */
  readonly imageFidelity: number;
  readonly clipSimilarity: number;
}

/** The LPIPS weights as safetensors: the folder's own file, or its `.pth` files converted once into `cacheDir`. */
async function lpipsWeights(folder: string, cacheDir: string): Promise<CheckpointWeights> {
  const names = await fs.readdir(folder).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`The LPIPS model folder ${folder} cannot be read (${err.code ?? err.message}).`);
  });
  const picked = pickLpipsFiles(names);
  if (!picked) {
    throw new Error(`The LPIPS model folder ${folder} has neither ${LPIPS_FILES.safetensors} nor alex.pth (LPIPS v0.1 linear layers) with an AlexNet checkpoint alexnet*.pth.`);
  }
  if ('safetensors' in picked) return CheckpointWeights.open(path.join(folder, picked.safetensors));
  const sources = [path.join(folder, picked.trunk), path.join(folder, picked.linear)];
  const stats = await Promise.all(sources.map((s) => fs.stat(s)));
  // Keyed by the files' sizes and times, so a replaced file is converted again.
  const key = stats.map((s, i) => `${path.basename(sources[i]!)}-${s.size}-${Math.trunc(s.mtimeMs)}`).join('_').replace(/[^\w.-]/g, '');
  const target = path.join(cacheDir, 'lpips', `${key}.safetensors`);
  if (!(await exists(target))) {
    await fs.mkdir(path.dirname(target), { recursive: true });
    // The AlexNet file may hold the classifier too; LPIPS uses the convolutional trunk only.
    await convertTorchCheckpoints(sources, target, { include: (name) => name.startsWith('features.') || name.startsWith('lin') });
  }
  return CheckpointWeights.open(target);
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

export class DragBenchScorer {
  private readonly promptEmbeds = new Map<string, Float32Array>();

  private constructor(
    private readonly session: GraphSession,
    private readonly sd: PipelineModels,
    private readonly clip: ClipModelWeights,
    private readonly lpips: CheckpointWeights,
  ) {}

  static async open(session: GraphSession, models: ScorerModels, cacheDir: string): Promise<DragBenchScorer> {
    const sd = await openPipelineModels({ stableDiffusionFolder: models.dift });
    const loaded = await loadClipModel(models.clip);
    const clip = { config: loaded.config, weights: await CheckpointWeights.open(loaded.layout.weightsPaths) };
    return new DragBenchScorer(session, sd, clip, await lpipsWeights(models.lpips, cacheDir));
  }

  async score(sample: SampleToScore): Promise<SampleScore> {
    const { source } = sample;
    if (source.width % 8 !== 0 || source.height % 8 !== 0) {
      throw new Error(`the source image is ${source.width}×${source.height}; DIFT needs both sides to be multiples of 8 (DragBench's images are 512×512)`);
    }
    const result = resultAtSourceSize(sample.result, source);
    const { distances } = await this.matchHandles(sample, result);
    const lpips = await this.lpipsOf(source, result);
    const clipSimilarity = await this.clipSimilarityOf(source, result);
    const meanDistance = distances.length === 0 ? 0 : distances.reduce((a, b) => a + b, 0) / distances.length;
    return { distances, meanDistance, lpips, imageFidelity: 1 - lpips, clipSimilarity };
  }

  private async embedding(prompt: string): Promise<{ embeds: Float32Array; tokens: number }> {
    const tokens = Math.min(77, this.sd.textEncoder.config.maxPositionEmbeddings);
    let embeds = this.promptEmbeds.get(prompt);
    if (!embeds) {
      const graph = await this.session.compile(textEncoderGraph(this.sd.textEncoder, tokens), 'DIFT text encoder');
      const ids = this.sd.tokenizer.sdInputIds(prompt, tokens).ids;
      embeds = float32Output(await this.session.run(graph, { [IO.ids]: BigInt64Array.from(ids, BigInt) }, [IO.hidden], 'evaluation'), IO.hidden);
      this.promptEmbeds.set(prompt, embeds);
    }
    return { embeds, tokens };
  }

  private async matchHandles(sample: SampleToScore, result: Pixels8): Promise<{ distances: number[] }> {
    const { embeds, tokens } = await this.embedding(sample.prompt);
    const spec: DiftSpec = {
      height: sample.source.height,
      width: sample.source.width,
      tokens,
      ...DIFT_DEFAULTS,
      alphasCumprod: computeAlphasCumprod(this.sd.stableDiffusion.scheduler),
    };
    const built = diftGraph(this.sd.unet, this.sd.vae, spec);
    const [, channels, height, width] = built.outputs[0]!.value.shape as [number, number, number, number];
    const graph = await this.session.compile(built, 'DIFT features');
    const count = diftNoiseShape(this.sd.vae, spec).reduce((a, b) => a * b, 1);
    const random = new SeededRandom(sample.seed);
    const features = async (image: Pixels8): Promise<FeatureMap> => {
      const out = await this.session.run(graph, {
        [DIFT_IO.image]: diftInput(image),
        [DIFT_IO.posteriorNoise]: random.normals(count),
        [DIFT_IO.noise]: random.normals(count),
        [DIFT_IO.promptEmbeds]: embeds,
      }, [DIFT_IO.features], 'evaluation');
      return { channels, height, width, data: float32Output(out, DIFT_IO.features) };
    };
    const sourceFeatures = await features(sample.source);
    const resultFeatures = await features(result);
    return matchPoints(sourceFeatures, resultFeatures, sample.source, sample.handles, sample.targets);
  }

  private async lpipsOf(source: Pixels8, result: Pixels8): Promise<number> {
    const built = new Graph('lpips');
    const shape = [1, 3, source.height, source.width];
    const a = resizeBilinear(built.input('source', 'float32', shape), [224, 224]);
    const b = resizeBilinear(built.input('result', 'float32', shape), [224, 224]);
    built.output('lpips', reshape(lpipsAlex(this.lpips, a, b).distance, [1]));
    this.lpips.assertAllBound(built);
    const graph = await this.session.compile(built, 'LPIPS');
    const out = await this.session.run(graph, { source: lpipsInput(source), result: lpipsInput(result) }, ['lpips'], 'evaluation');
    return float32Output(out, 'lpips')[0]!;
  }

  private async clipSimilarityOf(source: Pixels8, result: Pixels8): Promise<number> {
    const size = this.clip.config.visionConfig.imageSize;
    const built = new Graph('clip image features');
    const pixels = [built.input('source', 'float32', [1, 3, size, size]), built.input('result', 'float32', [1, 3, size, size])];
    built.output('features', clipImageEmbeds(this.clip, concat(pixels, 0)));
    assertClipPartBound(this.clip.weights, built, [...CLIP_IMAGE_PREFIXES]);
    const graph = await this.session.compile(built, 'CLIP image features');
    const out = float32Output(await this.session.run(graph, { source: clipInput(source, size), result: clipInput(result, size) }, ['features'], 'evaluation'), 'features');
    const dim = out.length / 2;
    return featureCosine(out.subarray(0, dim), out.subarray(dim));
  }
}

/** The dot product of two features after each is divided by its norm (run_eval_similarity.py), in float64. */
export function featureCosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(aa * bb);
}
