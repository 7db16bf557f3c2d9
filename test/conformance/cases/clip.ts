/**
 * CLIP ViT (transformers CLIPModel) with CLIPDrag's guidance chain: preprocessing, image and text
 * embeddings, loss = coefficient·(1 − cos), and its gradients with respect to pixel_values and to
 * the [0, 1] image, from one graph.
 */
import { Graph } from '../../../src/sidecar/engine/graph';
import { loadClipModel } from '../../../src/sidecar/models/checkpoint/layout';
import {
  assertClipPartBound,
  CLIP_IMAGE_PREFIXES,
  CLIP_TEXT_PREFIXES,
  clipGuidanceGradients,
  clipGuidanceLoss,
  clipTextEmbeds,
  CLIPDRAG_CLIP_LOSS_COEFFICIENT,
  type ClipGuidanceOptions,
} from '../../../src/sidecar/models/clip';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, type CaseRun } from '../case';
import type { GoldenCase } from '../golden';
import { singleModelFolder } from '../single-model';

export const cases = ['clip'] as const;

function numberList(settings: GoldenCase['settings'], key: string): number[] | undefined {
  const v = settings[key];
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}

/** The loss weight, from the settings' formula ("300 * (1 - cos(...))"), else the reference's. */
function coefficient(settings: GoldenCase['settings']): number {
  const formula = settings.loss;
  const match = typeof formula === 'string' ? /^\s*([0-9.]+)\s*\*/.exec(formula) : null;
  return match ? Number(match[1]) : CLIPDRAG_CLIP_LOSS_COEFFICIENT;
}

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const { layout, config } = await loadClipModel(singleModelFolder(entry, fixtureDir));
  const model = { config, weights: await CheckpointWeights.open(layout.weightsPaths) };
  const options: ClipGuidanceOptions = {
    coefficient: coefficient(entry.settings),
    mean: numberList(entry.settings, 'clip_mean'),
    std: numberList(entry.settings, 'clip_std'),
  };
  const graph = new Graph('clip');
  const image = graph.input('image', 'float32', golden.shape('image'));
  const textEmbeds = clipTextEmbeds(model, graph.input('input_ids', 'int64', golden.shape('input_ids')));
  const guidance = clipGuidanceLoss(model, image, textEmbeds, options);
  const grads = clipGuidanceGradients(guidance, image);
  graph.output('pixel_values', guidance.pixelValues);
  graph.output('image_embeds', guidance.imageEmbeds);
  graph.output('text_embeds', textEmbeds);
  graph.output('loss', guidance.loss);
  graph.output('grad_pixel_values', grads.gradPixelValues);
  graph.output('grad_image', grads.gradImage);
  assertClipPartBound(model.weights, graph, [...CLIP_IMAGE_PREFIXES, ...CLIP_TEXT_PREFIXES]);

  const out = await runGraph(graph, { image: await golden.float32('image'), input_ids: await golden.int64('input_ids') });
  return {
    outputs: Object.fromEntries(
      graph.outputs.map(({ name, value }) => [name, float32Tensor(value.shape, out[name] as Float32Array)]),
    ),
  };
};
