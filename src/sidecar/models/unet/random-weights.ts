/**
 * Seeded random-weight UNets in the diffusers folder layout, for benchmarks that need SD-1.5's compute
 * without downloading weights.
 *
 * The parameter list comes from building the model with a recording binder, so it is exactly what the
 * graph code binds. Initialisation follows PyTorch's defaults for the layer kinds (uniform ±1/√fan_in
 * for conv/linear weights and biases, ones and zeros for norms), which keeps activations finite and
 * of realistic magnitude through the whole network.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Graph } from '../../engine/graph';
import { numel, type Shape } from '../../engine/shape';
import { float32ToFloat16Bits } from '../../engine/float16';
import { writeSafetensors, type TensorToWrite } from '../checkpoint/safetensors';
import { parseUNet2DConditionConfig } from '../config';
import { RecordingWeights, type WeightSpec } from '../weights';
import { planUNet } from './plan';
import { unetForward } from './unet';

/** The SD-1.5 UNet config (diffusers' `unet/config.json` of runwayml/stable-diffusion-v1-5). */
export const SD15_UNET_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.24.0',
  act_fn: 'silu',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  use_linear_projection: false,
});

/** Benchmark model configs: SD-1.5 itself and a quarter-width variant (≈57 M parameters). */
export const BENCH_UNET_CONFIGS = {
  full: SD15_UNET_CONFIG,
  quarter: Object.freeze({ ...SD15_UNET_CONFIG, block_out_channels: [80, 160, 320, 320], norm_num_groups: 16 }),
} as const;

export type BenchUNetKind = keyof typeof BENCH_UNET_CONFIGS;

/** The weights a UNet config implies, in the order the model binds them. */
export function unetParameterSpecs(configJson: unknown): WeightSpec[] {
  const plan = planUNet(parseUNet2DConditionConfig(configJson));
  const recorder = new RecordingWeights();
  const graph = new Graph('unet-parameters');
  const c = plan.config;
  // Shapes only: building needs some latent size, any that survives the down path will do.
  const side = plan.downscale * 2;
  unetForward(graph, { plan, weights: recorder }, {
    sample: graph.input('sample', 'float32', [1, c.inChannels, side, side]),
    timestep: graph.input('timestep', 'float32', []),
    encoderHiddenStates: graph.input('encoder_hidden_states', 'float32', [1, 1, c.crossAttentionDim[0]!]),
  });
  return recorder.specs;
}

/** mulberry32: a small, fast, seedable 32-bit generator (statistical quality is ample for weights). */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Init = { kind: 'uniform'; bound: number } | { kind: 'constant'; value: number };

/** PyTorch-default-like initialisation for one parameter, given all parameters (for a bias's fan-in). */
function initFor(spec: WeightSpec, byKey: ReadonlyMap<string, Shape>): Init {
  const isBias = spec.key.endsWith('.bias');
  const weightShape = isBias ? byKey.get(`${spec.key.slice(0, -'.bias'.length)}.weight`) : spec.shape;
  if (!weightShape) throw new Error(`bias ${spec.key} has no matching weight`);
  // Rank-1 weights are norm scales: ones, and their biases zeros.
  if (weightShape.length === 1) return { kind: 'constant', value: isBias ? 0 : 1 };
  const fanIn = numel(weightShape.slice(1));
  return { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) };
}

export interface RandomUNetResult {
  readonly dir: string;
  readonly parameters: number;
  readonly bytes: number;
}

/**
 * Writes `config.json` and `diffusion_pytorch_model.safetensors` (or `.fp16.safetensors` for
 * dtype F16) into `dir`. The same seed and config always give the same bytes.
 */
export async function writeRandomUNet(
  dir: string,
  configJson: Readonly<Record<string, unknown>>,
  options: { seed?: number; dtype?: 'F32' | 'F16' } = {},
): Promise<RandomUNetResult> {
  const dtype = options.dtype ?? 'F32';
  const specs = unetParameterSpecs(configJson);
  const byKey = new Map(specs.map((s) => [s.key, s.shape] as const));
  const random = seededUniform(options.seed ?? 0);
  // Values are drawn when the writer asks for each tensor (one tensor in memory at a time). The writer's
  // order is fixed (by dtype, then name), so the same seed always gives the same file.
  const tensors: TensorToWrite[] = specs.map((spec) => ({
    name: spec.key,
    dtype,
    shape: spec.shape,
    data: () => {
      const init = initFor(spec, byKey);
      const values = new Float32Array(numel(spec.shape));
      if (init.kind === 'constant') values.fill(init.value);
      else for (let i = 0; i < values.length; i++) values[i] = (2 * random() - 1) * init.bound;
      return dtype === 'F16' ? float32ToFloat16Bits(values) : values;
    },
  }));
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, dtype === 'F16' ? 'diffusion_pytorch_model.fp16.safetensors' : 'diffusion_pytorch_model.safetensors');
  await writeSafetensors(file, tensors, { format: 'pt' });
  await fs.writeFile(path.join(dir, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`);
  const parameters = specs.reduce((n, s) => n + numel(s.shape), 0);
  return { dir, parameters, bytes: (await fs.stat(file)).size };
}
