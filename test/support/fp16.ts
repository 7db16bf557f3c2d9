/**
 * fp16 test helpers. The models: the tiny fixtures opened in fp16, and the same float16-rounded weights
 * bound as float32 (the reference), so a comparison sees only the rounding of the activations.
 *
 * The tolerance of a float16 graph against its float32 twin (same float16-rounded weights), derived from
 * the graph: every float16 value carries a relative rounding error of at most u = 2⁻¹¹, independent
 * roundings add in quadrature, so an output that went through K rounded stages is off by about u·√K
 * (relative L2) when the network does not amplify them. K is the largest number of float16 nodes on one
 * path through the graph, and a factor 4 allows for amplification. A broken float32 island (statistics
 * in float16, an overflow, a mask at −inf) is orders of magnitude above it.
 */
import type { Graph } from '../../src/sidecar/engine/graph';
import { CheckpointWeights } from '../../src/sidecar/models/weights';
import { openPipelineModels, type PipelineModels } from '../../src/sidecar/pipeline/models/models';
import { TINY_CLIP, TINY_SD, writeTinyTokenizer } from './tiny-pipeline';

export interface Fp16AndReference {
  readonly half: PipelineModels;
  readonly reference: PipelineModels;
}

/** The tiny models in fp16 (converted copies under `cacheDir`), and the same weights bound as float32. */
export async function openFp16AndReference(cacheDir: string): Promise<Fp16AndReference> {
  const half = await openPipelineModels({ stableDiffusionFolder: TINY_SD, clipFolder: TINY_CLIP, precision: 'fp16', cacheDir, tokenizerFolder: await writeTinyTokenizer(cacheDir) });
  const reference: PipelineModels = {
    ...half,
    unet: { ...half.unet, weights: (half.unet.weights as CheckpointWeights).withDtype('float32') },
    vae: { ...half.vae, weights: half.vae.weights.withDtype('float32') },
    textEncoder: { ...half.textEncoder, weights: half.textEncoder.weights.withDtype('float32') },
    clip: { ...half.clip!, weights: half.clip!.weights.withDtype('float32') },
  };
  return { half, reference };
}

export const FLOAT16_UNIT_ROUNDOFF = 2 ** -11;

export function float16Nodes(graph: Graph): number {
  return graph.nodes.filter((n) => n.outputs.some((o) => o.dtype === 'float16')).length;
}

/** The most float16 nodes on any path through the graph: how many roundings an output can accumulate. */
export function float16Depth(graph: Graph): number {
  const depth = new Map<unknown, number>();
  let deepest = 0;
  for (const node of graph.nodes) {
    const before = Math.max(0, ...node.inputs.map((v) => depth.get(v) ?? 0));
    const here = before + (node.outputs.some((o) => o.dtype === 'float16') ? 1 : 0);
    for (const o of node.outputs) depth.set(o, here);
    deepest = Math.max(deepest, here);
  }
  return deepest;
}

export function float16Tolerance(graph: Graph): number {
  return 4 * FLOAT16_UNIT_ROUNDOFF * Math.sqrt(float16Depth(graph));
}
