/**
 * Who holds the UNet's weights: the SD-1.5 UNet (default the full-size random-weight one of
 * `npm run make-bench-model -- pipeline`) compiled as one graph (forward ε) or two graphs over the same
 * checkpoint (forward ε, then forward + VJP as in the drag step), with the weights shared by the engine (fed
 * as inputs, the CPU default) or linked into each session (onnxruntime's initializers, its weight pre-packing on
 * or off). Per configuration, in its own process: anonymous and file-backed RSS (`/proc/self/status`) after
 * opening the checkpoint, after each graph's session is created and after its first run, the engine's own
 * account of resident weight bytes, session creation and run times.
 *
 *     npm run bench -- weights [--model DIR] [--latent N] [--graphs 1,2] [--weights shared,link] [--prepacking on,off] [--level all|extended] [--vjp-only]
 *
 * `--prepacking` applies to `link` (shared weights are inputs, which onnxruntime never pre-packs).
 *
 * `--interleaved`: instead, one process with the forward + VJP graph compiled twice, weights shared and linked
 * (pre-packed), run alternately (`--repeat` runs each after `--warmup`), so load from other work falls on both
 * alike: both medians and the shared/linked time ratio.
 *
 * `--vjp-only`: one graph, the forward + VJP alone; `--level`: onnxruntime's optimisation level (default all).
 *
 * `--every-model`: instead, one forward graph over every model an edit loads (UNet ε at the latent, VAE encoder
 * and decoder, SD's text encoder, CLIP's text and image towers; `--clip DIR`, default the benchmark CLIP), all
 * alive in one process: RSS after creating them and after one run of each, against the bytes of every weight file.
 *
 * Linux only (it reads /proc/self/status).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { SessionStore } from '../src/sidecar/engine/runtime/sessions';
import { Graph } from '../src/sidecar/engine/graph';
import { clipImageEmbeds } from '../src/sidecar/models/clip';
import { loadUNet } from '../src/sidecar/models/unet/load';
import { clipTextGraph, textEncoderGraph, unetEpsGraph, vaeDecodeGraph, vaeEncodeGraph } from '../src/sidecar/pipeline/models/graphs';
import { openPipelineModels } from '../src/sidecar/pipeline/models/models';
import { median, round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags, MeasureContext } from './lib/types';
import { buildUNetBenchGraph, type UNetBenchMode } from './unet';

const REPO = path.resolve(__dirname, '..');
const MB = 2 ** 20;

interface WeightsConfiguration extends Configuration {
  readonly model: string;
  /** `--every-model`: the Stable Diffusion folder and the CLIP folder; `model` is then unused. */
  readonly everyModel?: { readonly stableDiffusion: string; readonly clip: string };
  readonly latent: number;
  readonly modes: readonly UNetBenchMode[];
  readonly weights: 'shared' | 'link';
  readonly prepacking: boolean;
  readonly level: 'all' | 'extended';
  readonly interleaved?: boolean;
}

function text(flags: Flags, name: string, fallback: string): string {
  const value = flags[name];
  return typeof value === 'string' ? value : fallback;
}

/** Anonymous and file-backed resident memory of this process, in MB. */
export function residentMb(): { anonMb: number; fileMb: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { anonMb: round(kb('RssAnon') / 1024, 0), fileMb: round(kb('RssFile') / 1024, 0) };
}

export const benchmark: Benchmark<WeightsConfiguration> = {
  description: 'resident UNet weights: one or two graphs over one checkpoint, onnxruntime pre-packing on or off',
  configurations(flags) {
    const model = path.relative(REPO, path.resolve(REPO, text(flags, 'model', '.cache/bench-models/pipeline/sd15/unet')));
    const latent = Number(text(flags, 'latent', '32'));
    const graphs = text(flags, 'graphs', '1,2').split(',').map(Number);
    const prepacking = text(flags, 'prepacking', 'on,off').split(',');
    const weightModes = text(flags, 'weights', 'shared,link').split(',') as ('shared' | 'link')[];
    const level = text(flags, 'level', 'all') === 'extended' ? 'extended' : 'all';
    const suffix = level === 'all' ? '' : `, level ${level}`;
    // Every weights mode, and for linked weights every pre-packing setting.
    const variants = weightModes.flatMap((weights): { weights: 'shared' | 'link'; prepacking: boolean; name: string }[] =>
      weights === 'shared' ? [{ weights, prepacking: true, name: 'shared' }] : prepacking.map((p) => ({ weights, prepacking: p === 'on', name: `linked, prepacking ${p}` })),
    );
    if (flags['every-model']) {
      const sd = path.dirname(path.resolve(REPO, model));
      const clip = path.resolve(REPO, text(flags, 'clip', '.cache/bench-models/pipeline/clip-vit-b16'));
      const everyModel = { stableDiffusion: path.relative(REPO, sd), clip: path.relative(REPO, clip) };
      return variants.map((v) => ({ name: `every model, forward graphs, ${v.name}`, model, latent, modes: [], weights: v.weights, prepacking: v.prepacking, level, everyModel }));
    }
    if (flags.interleaved) {
      return [{ name: 'forward+vjp, shared and linked interleaved', model, latent, modes: ['forward+vjp'] as const, weights: 'shared', prepacking: true, level, interleaved: true }];
    }
    if (flags['vjp-only']) {
      return variants.map((v) => ({ name: `forward+vjp alone, ${v.name}${suffix}`, model, latent, modes: ['forward+vjp'] as const, weights: v.weights, prepacking: v.prepacking, level }));
    }
    return variants.flatMap((v) =>
      graphs.map((n) => ({
        name: `${n} graph${n > 1 ? 's' : ''}, ${v.name}${suffix}`,
        model,
        latent,
        modes: (['forward', 'forward+vjp'] as const).slice(0, n),
        weights: v.weights,
        prepacking: v.prepacking,
        level,
      })),
    );
  },
  async measure(config, context) {
    if (config.everyModel) return everyModel(config, config.everyModel);
    if (config.interleaved) return interleaved(config, context);
    const folder = path.resolve(REPO, config.model);
    const unet = await loadUNet(folder);
    const metrics: Record<string, number | string> = {};
    const checkpointBytes = fs
      .readdirSync(folder)
      .filter((f) => f.endsWith('.safetensors'))
      .reduce((sum, f) => sum + fs.statSync(path.join(folder, f)).size, 0);
    metrics.checkpointMb = round(checkpointBytes / MB, 0);
    const opened = residentMb();
    metrics.openedAnonMb = opened.anonMb;
    metrics.openedFileMb = opened.fileMb;
    const store = new SessionStore(path.join(os.tmpdir(), 'clipdrag-bench-sessions'));
    try {
      for (const [i, mode] of config.modes.entries()) {
        const graph = buildUNetBenchGraph(unet, mode, config.latent);
        const feeds: Record<string, Float32Array> = {};
        for (const input of graph.inputs) feeds[input.name] = input.name === 'timestep' ? Float32Array.of(500) : new Float32Array(input.size).map((_, k) => Math.sin(k * 0.37));
        globalThis.gc?.();
        const info = await store.compile(i + 1, serializeGraph(graph), { label: mode, device: 'cpu', externalWeights: config.weights, prepacking: config.prepacking, enableMemPattern: mode === 'forward', graphOptimizationLevel: config.level });
        const created = residentMb();
        metrics[`g${i + 1}CreateMs`] = round(info.createMs, 0);
        metrics[`g${i + 1}CreatedAnonMb`] = created.anonMb;
        metrics[`g${i + 1}CreatedFileMb`] = created.fileMb;
        const run = async () => {
          const out = (await store.run(i + 1, feeds)).outputs;
          for (const [name, values] of Object.entries(out)) if (!(values as Float32Array).every(Number.isFinite)) throw new Error(`${mode}: ${name} is not finite`);
        };
        const timing = await timeRepeated(run, { repeat: context.repeat, warmup: 1 });
        const ran = residentMb();
        metrics[`g${i + 1}RunMs`] = round(timing.medianMs, 0);
        metrics[`g${i + 1}RanAnonMb`] = ran.anonMb;
        metrics[`g${i + 1}RanFileMb`] = ran.fileMb;
      }
      metrics.engineResidentWeightsMb = round(store.residentWeightBytes() / MB, 0);
    } finally {
      await store.releaseAll();
    }
    return metrics;
  },
};

/** Every model's forward graph alive at once: resident memory against the weight files' bytes. */
async function everyModel(config: WeightsConfiguration, folders: { stableDiffusion: string; clip: string }) {
  const models = await openPipelineModels({ stableDiffusionFolder: path.resolve(REPO, folders.stableDiffusion), clipFolder: path.resolve(REPO, folders.clip) });
  const files = [...models.weightFiles.stableDiffusion, ...models.weightFiles.clip].filter((f) => f.endsWith('.safetensors'));
  const weightBytes = files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
  const latent = config.latent;
  const clip = models.clip!;
  const vision = new Graph('clip image');
  const side = clip.config.visionConfig.imageSize;
  vision.output('image_embeds', clipImageEmbeds(clip, vision.input('pixel_values', 'float32', [1, 3, side, side])));
  const graphs: [string, Graph][] = [
    ['unet eps', unetEpsGraph(models.unet, { batch: 1, height: latent, width: latent, tokens: 77 })],
    ['vae encode', vaeEncodeGraph(models.vae, 1, 8 * latent, 8 * latent)],
    ['vae decode', vaeDecodeGraph(models.vae, 1, latent, latent)],
    ['text encoder', textEncoderGraph(models.textEncoder, 77)],
    ['clip text', clipTextGraph(clip, 77)],
    ['clip image', vision],
  ];
  const store = new SessionStore(path.join(os.tmpdir(), 'clipdrag-bench-sessions'));
  const metrics: Record<string, number> = { weightFilesMb: round(weightBytes / MB, 0) };
  try {
    let handle = 0;
    const runs: (() => Promise<unknown>)[] = [];
    for (const [label, graph] of graphs) {
      const h = ++handle;
      await store.compile(h, serializeGraph(graph), { label, device: 'cpu', externalWeights: config.weights });
      const feeds: Record<string, Float32Array | BigInt64Array> = {};
      for (const input of graph.inputs) {
        feeds[input.name] = input.dtype === 'int64' ? new BigInt64Array(input.size).fill(1n) : input.name === 'timestep' ? Float32Array.of(500) : new Float32Array(input.size).map((_, k) => Math.sin(k * 0.37));
      }
      runs.push(() => store.run(h, feeds));
    }
    globalThis.gc?.();
    const created = residentMb();
    metrics.createdRssMb = created.anonMb + created.fileMb;
    metrics.createdAnonMb = created.anonMb;
    metrics.createdFileMb = created.fileMb;
    metrics.createdOverWeights = round((created.anonMb + created.fileMb) / (weightBytes / MB), 3);
    for (const run of runs) await run();
    globalThis.gc?.();
    const ran = residentMb();
    metrics.ranRssMb = ran.anonMb + ran.fileMb;
    metrics.ranOverWeights = round((ran.anonMb + ran.fileMb) / (weightBytes / MB), 3);
    metrics.engineResidentWeightsMb = round(store.residentWeightBytes() / MB, 0);
  } finally {
    await store.releaseAll();
  }
  return metrics;
}

/** The forward + VJP graph with shared and with linked weights in one process, run alternately. */
async function interleaved(config: WeightsConfiguration, context: MeasureContext): Promise<Record<string, number>> {
  const unet = await loadUNet(path.resolve(REPO, config.model));
  const graph = buildUNetBenchGraph(unet, 'forward+vjp', config.latent);
  const model = serializeGraph(graph);
  const feeds: Record<string, Float32Array> = {};
  for (const input of graph.inputs) feeds[input.name] = input.name === 'timestep' ? Float32Array.of(500) : new Float32Array(input.size).map((_, k) => Math.sin(k * 0.37));
  const store = new SessionStore(path.join(os.tmpdir(), 'clipdrag-bench-sessions'));
  const sides = [
    { handle: 1, name: 'shared', times: [] as number[] },
    { handle: 2, name: 'linked', times: [] as number[] },
  ];
  try {
    await store.compile(1, model, { label: 'shared', device: 'cpu', externalWeights: 'shared', enableMemPattern: false, graphOptimizationLevel: config.level });
    await store.compile(2, model, { label: 'linked', device: 'cpu', externalWeights: 'link', enableMemPattern: false, graphOptimizationLevel: config.level });
    for (let r = 0; r < context.warmup + context.repeat; r++) {
      // Alternate which side goes first, so neither always runs right after the other's allocations.
      for (const side of r % 2 ? [...sides].reverse() : sides) {
        const started = performance.now();
        await store.run(side.handle, feeds);
        if (r >= context.warmup) side.times.push(performance.now() - started);
      }
    }
  } finally {
    await store.releaseAll();
  }
  const [shared, linked] = sides.map((side) => median(side.times));
  return { sharedRunMs: round(shared!, 0), linkedRunMs: round(linked!, 0), sharedOverLinked: round(shared! / linked!, 3), loadAvg1m: round(os.loadavg()[0]!, 2) };
}
