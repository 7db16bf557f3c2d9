// Runs one graph per pipeline model (UNet, VAE encode/decode, SD text encoder, CLIP text/image) on fixed random
// inputs, for tests that check two ways of loading the same weights compute the same thing.
import type { TypedArray } from '../../src/sidecar/engine/dtype';
import { Graph } from '../../src/sidecar/engine/graph';
import { clipImageEmbeds } from '../../src/sidecar/models/clip';
import { clipTextGraph, IO, textEncoderGraph, unetEpsGraph, vaeDecodeGraph, vaeEncodeGraph } from '../../src/sidecar/pipeline/models/graphs';
import type { PipelineModels } from '../../src/sidecar/pipeline/models/models';
import { randomFloat32 } from './random-checkpoint';
import { runGraph } from './run-graph';

const IDS = BigInt64Array.from([49406, 320, 1125, 539, 320, 2368, 49407, 49407], BigInt);

/** Builds and runs one graph per model, returning its outputs by name. */
export async function modelOutputs(models: PipelineModels): Promise<Record<string, TypedArray>> {
  const image = randomFloat32(3 * 32 * 32, 3, 1).map((v) => Math.max(-1, Math.min(1, v)));
  const clipImage = new Graph('clip image');
  clipImage.output('image_embeds', clipImageEmbeds(models.clip!, clipImage.input('pixel_values', 'float32', [1, 3, 224, 224])));
  const runs: [string, Graph, Record<string, TypedArray>][] = [
    ['unet', unetEpsGraph(models.unet, { batch: 1, height: 8, width: 8, tokens: IDS.length }), { [IO.sample]: randomFloat32(4 * 8 * 8, 1), [IO.timestep]: Float32Array.from([501]), [IO.context]: randomFloat32(IDS.length * 16, 2) }],
    ['vae-encode', vaeEncodeGraph(models.vae, 1, 32, 32), { [IO.image]: image }],
    ['vae-decode', vaeDecodeGraph(models.vae, 1, 4, 4), { [IO.latents]: randomFloat32(4 * 4 * 4, 4) }],
    ['text-encoder', textEncoderGraph(models.textEncoder, IDS.length), { [IO.ids]: IDS }],
    ['clip-text', clipTextGraph(models.clip!, IDS.length), { [IO.ids]: IDS }],
    ['clip-image', clipImage, { pixel_values: randomFloat32(3 * 224 * 224, 5) }],
  ];
  const out: Record<string, TypedArray> = {};
  for (const [model, graph, feeds] of runs) {
    for (const [name, value] of Object.entries(await runGraph(graph, feeds))) out[`${model}/${name}`] = value;
  }
  return out;
}

