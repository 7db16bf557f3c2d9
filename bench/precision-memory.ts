/**
 * fp32 vs fp16 memory of the CLIPDrag step graph (UNet with the feature tap, drag loss, VAE decoder, CLIP,
 * two VJPs w.r.t. the latent) for SD-1.5 at 512×512 (latent 64×64), counted statically from the graph
 * (`bench/lib/graph-memory.ts`): weight bytes and the bytes of forward activations the backward passes
 * read, with and without block rematerialisation. An estimate of the GPU peak's main terms, not a
 * measurement: nothing runs. Needs SD-1.5-shaped model folders (default the benchmark models in
 * `.cache/bench-models/pipeline/`; only their configs and checkpoint headers are read).
 *
 *     npm run bench -- precision-memory [--model DIR] [--clip DIR] [--size 512]
 */
import * as path from 'node:path';
import { featureNames } from '../src/sidecar/models/unet/plan';
import { featureShapes } from '../src/sidecar/models/unet/unet';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../src/sidecar/models/config';
import { createDdimSchedule, dragStepCoefficients } from '../src/sidecar/pipeline/diffusion/ddim';
import { DRAG_FEATURE_INDEX, dragStepGraph } from '../src/sidecar/pipeline/drag/drag-step-graph';
import { openPipelineModels } from '../src/sidecar/pipeline/models/models';
import { graphMemory } from './lib/graph-memory';
import { round } from './lib/measure';
import type { Benchmark, Configuration } from './lib/types';

const REPO = path.resolve(__dirname, '..');
const MB = 1024 * 1024;

interface PrecisionConfiguration extends Configuration {
  readonly precision: 'fp32' | 'fp16';
  readonly rematerialize: boolean;
  readonly model: string;
  readonly clip: string;
  readonly size: number;
}

export const benchmark: Benchmark<PrecisionConfiguration> = {
  description: 'CLIPDrag step graph memory (weights, activations saved for the backward), fp32 vs fp16, counted statically',
  configurations(flags) {
    const text = (name: string, fallback: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : fallback);
    const model = path.resolve(REPO, text('model', '.cache/bench-models/pipeline/sd15'));
    const clip = path.resolve(REPO, text('clip', '.cache/bench-models/pipeline/clip-vit-b16'));
    const size = Number(text('size', '512'));
    return (['fp32', 'fp16'] as const).flatMap((precision) =>
      [false, true].map((rematerialize) => ({
        name: `${precision}${rematerialize ? '-remat' : ''}`,
        precision,
        rematerialize,
        model: path.relative(REPO, model),
        clip: path.relative(REPO, clip),
        size,
      })),
    );
  },
  async measure(config) {
    const opened = await openPipelineModels({ stableDiffusionFolder: path.resolve(REPO, config.model), clipFolder: path.resolve(REPO, config.clip) });
    // Only headers are read: the fp16 graph binds the fp32 checkpoints with a cast (counted as float16, as
    // the converted copy the pipeline would bind).
    const dtype = config.precision === 'fp16' ? 'float16' : 'float32';
    const unet = { ...opened.unet, weights: (opened.unet.weights as typeof opened.vae.weights).withDtype(dtype) };
    const vae = { ...opened.vae, weights: opened.vae.weights.withDtype(dtype) };
    const clip = { ...opened.clip!, weights: opened.clip!.weights.withDtype(dtype) };
    const latent = config.size / 8;
    const channels = featureShapes(unet.plan, 1, latent, latent)[featureNames(unet.plan)[DRAG_FEATURE_INDEX]!]![1]!;
    const started = performance.now();
    const graph = dragStepGraph({
      unet,
      latentHeight: latent,
      latentWidth: latent,
      tokens: 77,
      loraRank: 16,
      drag: { variant: 'clipdrag', pairs: 1, channels, motionRadius: 1, trackingRadius: 3, supervision: [config.size / 2, config.size / 2] },
      step: dragStepCoefficients(createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50), 681),
      maskTerm: true,
      guidance: { clip, vae, coefficient: 300 },
      rematerialize: config.rematerialize,
    });
    const memory = graphMemory(graph, dtype);
    return {
      weightsMb: round(memory.weightBytes / MB, 0),
      savedActivationsMb: round(memory.savedActivationBytes / MB, 0),
      largestActivationMb: round(memory.largestActivationBytes / MB, 1),
      weightsPlusSavedGb: round((memory.weightBytes + memory.savedActivationBytes) / 1024 / MB, 2),
      savedValues: memory.savedActivations,
      nodes: graph.nodes.length,
      buildMs: round(performance.now() - started, 0),
    };
  },
};
