/**
 * DragBench's mean distance with DIFT features on Stable Diffusion 2.1: the prompt encoded with SD-2.1's tokenizer
 * settings, the DIFT graph fed the reference's own random draws, and the point matching of
 * run_eval_point_matching.py.
 */
import { computeAlphasCumprod } from '../../../src/sidecar/pipeline/diffusion/ddim';
import { DIFT_IO, diftGraph } from '../../../src/sidecar/pipeline/evaluation/dift';
import { diftInput } from '../../../src/sidecar/pipeline/evaluation/metric-inputs';
import { matchPoints, type FeatureMap, type Point } from '../../../src/sidecar/pipeline/evaluation/point-matching';
import { textEncoderGraph, IO } from '../../../src/sidecar/pipeline/models/graphs';
import { openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, int64Tensor, numberSetting, type CaseRun } from '../case';
import { singleModelFolder } from '../single-model';
import { goldenImage } from './eval_lpips';

export const cases = ['eval_dift'] as const;

function points(data: BigInt64Array): Point[] {
  const out: Point[] = [];
  for (let i = 0; i + 1 < data.length; i += 2) out.push([Number(data[i]), Number(data[i + 1])]);
  return out;
}

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const models = await openPipelineModels({ stableDiffusionFolder: singleModelFolder(entry, fixtureDir) });
  const prompt = entry.settings.prompt;
  if (typeof prompt !== 'string') throw new Error('eval_dift: settings.prompt is missing');
  const tokens = Math.min(77, models.textEncoder.config.maxPositionEmbeddings);
  const ids = models.tokenizer.sdInputIds(prompt, tokens).ids;
  const text = await runGraph(textEncoderGraph(models.textEncoder, tokens), { [IO.ids]: BigInt64Array.from(ids, BigInt) });
  const promptEmbeds = text[IO.hidden] as Float32Array;

  const source = await goldenImage(golden, 'source_u8');
  const result = await goldenImage(golden, 'dragged_u8');
  const spec = {
    height: source.height,
    width: source.width,
    tokens,
    timestep: numberSetting(entry.settings, 't', 'eval_dift'),
    upFtIndex: numberSetting(entry.settings, 'up_ft_index', 'eval_dift'),
    ensembleSize: numberSetting(entry.settings, 'ensemble_size', 'eval_dift'),
    alphasCumprod: computeAlphasCumprod(models.stableDiffusion.scheduler),
  };
  const graph = diftGraph(models.unet, models.vae, spec);
  const featuresOf = async (image: typeof source, which: 'source' | 'dragged'): Promise<FeatureMap> => {
    const out = await runGraph(graph, {
      [DIFT_IO.image]: diftInput(image),
      [DIFT_IO.posteriorNoise]: await golden.float32(`${which}_posterior_noise`),
      [DIFT_IO.noise]: await golden.float32(`${which}_noise`),
      [DIFT_IO.promptEmbeds]: promptEmbeds,
    });
    const [, channels, height, width] = graph.outputs[0]!.value.shape as [number, number, number, number];
    return { channels, height, width, data: out[DIFT_IO.features] as Float32Array };
  };
  const sourceFeatures = await featuresOf(source, 'source');
  const resultFeatures = await featuresOf(result, 'dragged');
  const handles = points(await golden.int64('handles'));
  const match = matchPoints(sourceFeatures, resultFeatures, source, handles, points(await golden.int64('targets')));
  const featureShape = [1, sourceFeatures.channels, sourceFeatures.height, sourceFeatures.width];
  return {
    outputs: {
      input_ids: int64Tensor([1, tokens], ids),
      prompt_embeds: float32Tensor([1, tokens, promptEmbeds.length / tokens], promptEmbeds),
      source_features: float32Tensor(featureShape, sourceFeatures.data),
      dragged_features: float32Tensor(featureShape, resultFeatures.data),
      matched: int64Tensor([handles.length, 2], match.matched.flat()),
      distances: float32Tensor([handles.length], match.distances),
      mean_distance: float32Tensor([1], [match.distances.reduce((a, b) => a + b, 0) / match.distances.length]),
    },
  };
};
