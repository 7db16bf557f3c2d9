/**
 * CLIP image similarity as DragDiffusion's run_eval_similarity.py computes it: OpenAI CLIP's preprocessing of the
 * source and of the result resized to the source size, image features, and the dot product of the unit features.
 */
import { Graph } from '../../../src/sidecar/engine/graph';
import { loadClipModel } from '../../../src/sidecar/models/checkpoint/layout';
import { assertClipPartBound, CLIP_IMAGE_PREFIXES, clipImageEmbeds } from '../../../src/sidecar/models/clip';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { clipInput, resultAtSourceSize } from '../../../src/sidecar/pipeline/evaluation/metric-inputs';
import { featureCosine } from '../../../src/sidecar/pipeline/evaluation/scorer';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, type CaseRun } from '../case';
import { singleModelFolder } from '../single-model';
import { goldenImage } from './eval_lpips';

export const cases = ['eval_clip'] as const;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const { layout, config } = await loadClipModel(singleModelFolder(entry, fixtureDir));
  const model = { config, weights: await CheckpointWeights.open(layout.weightsPaths) };
  const source = await goldenImage(golden, 'source_u8');
  const result = resultAtSourceSize(await goldenImage(golden, 'dragged_u8'), source);
  const size = config.visionConfig.imageSize;

  const graph = new Graph('clip-similarity');
  const pixels = graph.input('pixels', 'float32', [2, 3, size, size]);
  const features = clipImageEmbeds(model, pixels);
  graph.output('features', features);
  assertClipPartBound(model.weights, graph, [...CLIP_IMAGE_PREFIXES]);

  const sourcePixels = clipInput(source, size);
  const resultPixels = clipInput(result, size);
  const batch = new Float32Array(sourcePixels.length * 2);
  batch.set(sourcePixels);
  batch.set(resultPixels, sourcePixels.length);
  const out = (await runGraph(graph, { pixels: batch })).features as Float32Array;
  const dim = out.length / 2;
  const a = out.subarray(0, dim);
  const b = out.subarray(dim);
  return {
    outputs: {
      source_pixels: float32Tensor([1, 3, size, size], sourcePixels),
      dragged_pixels: float32Tensor([1, 3, size, size], resultPixels),
      source_features: float32Tensor([1, dim], a),
      dragged_features: float32Tensor([1, dim], b),
      clip_similarity: float32Tensor([1], [featureCosine(a, b)]),
    },
  };
};
