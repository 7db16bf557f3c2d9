/**
 * Who holds the UNet's weights: the SD-1.5 UNet (default the full-size random-weight one of
 * `npm run make-bench-model -- pipeline`) compiled as one graph (forward ε) or two graphs over the same
 * checkpoint (forward ε, then forward + VJP as in the drag step), with onnxruntime's weight pre-packing on or
 * off. Per configuration, in its own process: anonymous and file-backed RSS (`/proc/self/status`) after
 * opening the checkpoint, after each graph's session is created and after its first run, the engine's own
 * account of resident weight bytes, session creation and run times.
 *
 *     npm run bench -- weights [--model DIR] [--latent N] [--graphs 1,2] [--prepacking on,off] [--level all|extended] [--vjp-only]
 *
 * `--vjp-only`: one graph, the forward + VJP alone; `--level`: onnxruntime's optimisation level (default all).
 *
 * Linux only (it reads /proc/self/status).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serializeGraph } from '../src/sidecar/engine/onnx/serialize';
import { SessionStore } from '../src/sidecar/engine/runtime/sessions';
import { loadUNet } from '../src/sidecar/models/unet/load';
import { round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags } from './lib/types';
import { buildUNetBenchGraph, type UNetBenchMode } from './unet';

const REPO = path.resolve(__dirname, '..');
const MB = 2 ** 20;

interface WeightsConfiguration extends Configuration {
  readonly model: string;
  readonly latent: number;
  readonly modes: readonly UNetBenchMode[];
  readonly prepacking: boolean;
  readonly level: 'all' | 'extended';
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
    const level = text(flags, 'level', 'all') === 'extended' ? 'extended' : 'all';
    const suffix = level === 'all' ? '' : `, level ${level}`;
    if (flags['vjp-only']) {
      return prepacking.map((p) => ({ name: `forward+vjp alone, prepacking ${p}${suffix}`, model, latent, modes: ['forward+vjp'] as const, prepacking: p === 'on', level }));
    }
    return prepacking.flatMap((p) =>
      graphs.map((n) => ({
        name: `${n} graph${n > 1 ? 's' : ''}, prepacking ${p}${suffix}`,
        model,
        latent,
        modes: (['forward', 'forward+vjp'] as const).slice(0, n),
        prepacking: p === 'on',
        level,
      })),
    );
  },
  async measure(config, context) {
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
        const info = await store.compile(i + 1, serializeGraph(graph), { label: mode, device: 'cpu', prepacking: config.prepacking, enableMemPattern: mode === 'forward', graphOptimizationLevel: config.level });
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
