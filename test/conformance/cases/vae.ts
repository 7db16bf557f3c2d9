/**
 * AutoencoderKL: encoder posterior mean, raw decoder output, and d(Σ decoded·R)/dz through the
 * decoder (the engine's vjp), all in one graph built from the case's VAE folder.
 */
import { vjp } from '../../../src/sidecar/engine/autodiff';
import { Graph } from '../../../src/sidecar/engine/graph';
import { mul, reduceSum } from '../../../src/sidecar/engine/ops';
import { loadAutoencoderKLFolder } from '../../../src/sidecar/models/checkpoint/layout';
import { vaeDecode, vaeEncode } from '../../../src/sidecar/models/vae';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { runGraph } from '../../support/run-graph';
import { float32Tensor, type CaseRun } from '../case';
import { singleModelFolder } from '../single-model';

export const cases = ['vae'] as const;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const { files, config } = await loadAutoencoderKLFolder(singleModelFolder(entry, fixtureDir));
  const model = { config, weights: await CheckpointWeights.open(files.weightsPaths) };
  const graph = new Graph('vae');
  const image = graph.input('image', 'float32', golden.shape('image'));
  const z = graph.input('z', 'float32', golden.shape('z'));
  const cotangent = graph.input('R_img', 'float32', golden.shape('R_img'));
  const decoded = vaeDecode(model, z);
  const [gradZ] = vjp(graph, [{ value: decoded, cotangent }], [z]);
  graph.output('latent_mean', vaeEncode(model, image).mean);
  graph.output('decoded', decoded);
  graph.output('loss', reduceSum(mul(decoded, cotangent), decoded.shape.map((_, i) => i), false));
  graph.output('grad_z', gradZ!);
  model.weights.assertAllBound(graph);

  const out = await runGraph(graph, {
    image: await golden.float32('image'),
    z: await golden.float32('z'),
    R_img: await golden.float32('R_img'),
  });
  return {
    outputs: Object.fromEntries(
      graph.outputs.map(({ name, value }) => [name, float32Tensor(value.shape, out[name] as Float32Array)]),
    ),
  };
};
