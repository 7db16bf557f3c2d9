/** CLIPTextModel (Stable Diffusion's text encoder): last_hidden_state of the case's token ids. */
import { readFile } from 'node:fs/promises';
import { Graph } from '../../../src/sidecar/engine/graph';
import { resolveComponentFolder } from '../../../src/sidecar/models/checkpoint/layout';
import { clipTextTransformer, isClipPositionIdsBuffer } from '../../../src/sidecar/models/clip';
import { parseClipTextConfig } from '../../../src/sidecar/models/config';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, type CaseRun } from '../case';
import { singleModelFolder } from '../single-model';

export const cases = ['text_encoder'] as const;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const files = await resolveComponentFolder(singleModelFolder(entry, fixtureDir), 'text_encoder');
  const config = parseClipTextConfig(JSON.parse(await readFile(files.configPath, 'utf8')), files.configPath);
  const weights = await CheckpointWeights.open(files.weightsPaths);
  const graph = new Graph('text_encoder');
  const hidden = clipTextTransformer(weights, config, graph.input('input_ids', 'int64', golden.shape('input_ids')));
  graph.output('last_hidden_state', hidden);
  weights.assertAllBound(graph, isClipPositionIdsBuffer);
  const out = await runGraph(graph, { input_ids: await golden.int64('input_ids') });
  return { outputs: { last_hidden_state: float32Tensor(hidden.shape, out.last_hidden_state as Float32Array) } };
};
