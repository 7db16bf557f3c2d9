/**
 * DIFT features (Tang et al., "Emergent Correspondence from Image Diffusion") as DragBench's mean-distance metric
 * computes them (DragDiffusion drag_bench_evaluation/dift_sd.py, on Stable Diffusion 2.1): the image's VAE latent
 * sampled from the posterior, noised to timestep t, one UNet pass with the prompt's embedding, and the output of
 * `up_blocks[upFtIndex]`, averaged over an ensemble of noise draws.
 *
 * The random draws are inputs, so a caller decides where they come from (a seeded generator here; the reference's
 * own draws in the conformance case).
 */
import { Graph } from '../../engine/graph';
import { add, exp, expand, mul, reduceMean } from '../../engine/ops';
import { featureNames } from '../../models/unet/plan';
import { unetForward, type UNetModel } from '../../models/unet/unet';
import { assertVaePartBound, VAE_ENCODER_PREFIXES, vaeEncode, type VaeModel } from '../../models/vae';

/** The reference's settings (run_eval_point_matching.py). */
export const DIFT_DEFAULTS = { timestep: 261, upFtIndex: 1, ensembleSize: 8 } as const;

export interface DiftSpec {
  /** Image height and width (multiples of the VAE's factor). */
  readonly height: number;
  readonly width: number;
  /** Text tokens of the prompt embedding. */
  readonly tokens: number;
  readonly timestep: number;
  readonly upFtIndex: number;
  readonly ensembleSize: number;
  /** ᾱ of the scheduler's training schedule, indexed by timestep. */
  readonly alphasCumprod: Float32Array;
}

/** Graph input and output names. */
export const DIFT_IO = {
  image: 'image',
  posteriorNoise: 'posterior_noise',
  noise: 'noise',
  promptEmbeds: 'prompt_embeds',
  features: 'features',
} as const;

/** The shape of the random draws each of the two noise inputs takes: [ensemble, latent channels, h, w]. */
export function diftNoiseShape(vae: VaeModel, spec: DiftSpec): [number, number, number, number] {
  const factor = 2 ** (vae.config.blockOutChannels.length - 1);
  return [spec.ensembleSize, vae.config.latentChannels, spec.height / factor, spec.width / factor];
}

/**
 * image [1, 3, H, W] in [−1, 1], posterior_noise and noise [E, 4, h, w], prompt_embeds [1, tokens, D] →
 * features [1, C, h', w'] (the ensemble mean of `up_blocks[upFtIndex]`'s output).
 */
export function diftGraph(unet: UNetModel, vae: VaeModel, spec: DiftSpec): Graph {
  const { timestep: t, ensembleSize: e } = spec;
  if (!Number.isInteger(t) || t < 0 || t >= spec.alphasCumprod.length) throw new RangeError(`DIFT timestep ${t} is outside 0..${spec.alphasCumprod.length - 1}`);
  const names = featureNames(unet.plan);
  const tap = names[spec.upFtIndex + 1];
  if (!tap) throw new RangeError(`DIFT up_ft_index ${spec.upFtIndex} is outside 0..${names.length - 2}`);
  const graph = new Graph('dift features');
  const image = graph.input(DIFT_IO.image, 'float32', [1, vae.config.inChannels, spec.height, spec.width]);
  const noiseShape = diftNoiseShape(vae, spec);
  const posteriorNoise = graph.input(DIFT_IO.posteriorNoise, 'float32', noiseShape);
  const noise = graph.input(DIFT_IO.noise, 'float32', noiseShape);
  const cross = unet.plan.config.crossAttentionDim[0]!;
  const promptEmbeds = graph.input(DIFT_IO.promptEmbeds, 'float32', [1, spec.tokens, cross]);

  // latent_dist.sample() · scaling_factor: mean + exp(logvar / 2) · n, the same image in every ensemble row.
  const posterior = vaeEncode(vae, image);
  const latents = mul(add(posterior.mean, mul(exp(mul(posterior.logvar, 0.5)), posteriorNoise)), Math.fround(vae.config.scalingFactor));
  // scheduler.add_noise: √ᾱ_t · x + √(1 − ᾱ_t) · n, the coefficients in float32 as torch computes them.
  const alpha = spec.alphasCumprod[t]!;
  const noisy = add(mul(latents, Math.fround(Math.sqrt(alpha))), mul(noise, Math.fround(Math.sqrt(Math.fround(1 - alpha)))));
  const forward = unetForward(graph, unet, {
    sample: noisy,
    timestep: graph.constant([t], [1], 'float32'),
    encoderHiddenStates: expand(promptEmbeds, [e, spec.tokens, cross]),
  });
  graph.output(DIFT_IO.features, reduceMean(forward.features[tap]!, [0]));
  assertVaePartBound(vae, graph, VAE_ENCODER_PREFIXES);
  return graph;
}
