/**
 * Builders of the engine graphs the pipeline compiles once per edit (shapes are static, so one graph
 * per latent size): the UNet's noise prediction (timestep and LoRA as inputs, optionally with mutual
 * self-attention), VAE encode and decode, and the two text encoders.
 */
import { Graph } from '../../engine/graph';
import { clipTextEmbeds, clipTextTransformer, CLIP_TEXT_PREFIXES, assertClipPartBound, isClipPositionIdsBuffer, type ClipModelWeights } from '../../models/clip';
import { buildUNetGraph, type UNetGraphSpec, type UNetModel } from '../../models/unet/unet';
import { assertVaePartBound, VAE_DECODER_PREFIXES, VAE_ENCODER_PREFIXES, vaeDecodeImage, vaeEncode, type VaeModel } from '../../models/vae';
import type { TextEncoderModel } from './models';

/** Graph input and output names shared by the pipeline's graphs. */
export const IO = {
  sample: 'sample',
  timestep: 'timestep',
  context: 'encoder_hidden_states',
  eps: 'eps',
  image: 'image',
  mean: 'mean',
  logvar: 'logvar',
  latents: 'latents',
  ids: 'input_ids',
  hidden: 'last_hidden_state',
  textEmbeds: 'text_embeds',
} as const;

export interface UNetEpsSpec {
  readonly batch: number;
  /** Latent height and width. */
  readonly height: number;
  readonly width: number;
  readonly tokens: number;
  /** 'scalar': one timestep for every row (inference); 'batch': one per row (LoRA training). */
  readonly timestep?: 'scalar' | 'batch';
  readonly loraRank?: number;
  /** First transformer block with mutual self-attention (batch of [source, edited] pairs). */
  readonly mutualFromBlock?: number;
}

/** sample, timestep, encoder_hidden_states (+ LoRA inputs) → eps. */
export function unetEpsGraph(unet: UNetModel, spec: UNetEpsSpec): Graph {
  const graphSpec: UNetGraphSpec = {
    batch: spec.batch,
    height: spec.height,
    width: spec.width,
    tokens: spec.tokens,
    timestep: spec.timestep ?? 'scalar',
    outputs: [IO.eps],
    ...(spec.loraRank ? { lora: { rank: spec.loraRank } } : {}),
    ...(spec.mutualFromBlock !== undefined ? { mutualSelfAttention: { startLayer: spec.mutualFromBlock } } : {}),
  };
  return buildUNetGraph(unet, graphSpec, new Graph('unet eps')).graph;
}

/** image [B, 3, H, W] in [-1, 1] → the posterior's raw `mean` and `logvar` (pipelines scale the mean). */
export function vaeEncodeGraph(vae: VaeModel, batch: number, height: number, width: number): Graph {
  const graph = new Graph('vae encode');
  const image = graph.input(IO.image, 'float32', [batch, vae.config.inChannels, height, width]);
  const posterior = vaeEncode(vae, image);
  graph.output(IO.mean, posterior.mean);
  graph.output(IO.logvar, posterior.logvar);
  assertVaePartBound(vae, graph, VAE_ENCODER_PREFIXES);
  return graph;
}

/** SD latents [B, 4, h, w] → the image in [0, 1] (`clamp(decode(z / s) / 2 + 0.5, 0, 1)`). */
export function vaeDecodeGraph(vae: VaeModel, batch: number, height: number, width: number): Graph {
  const graph = new Graph('vae decode');
  const latents = graph.input(IO.latents, 'float32', [batch, vae.config.latentChannels, height, width]);
  graph.output(IO.image, vaeDecodeImage(vae, latents));
  assertVaePartBound(vae, graph, VAE_DECODER_PREFIXES);
  return graph;
}

/** Stable Diffusion's text encoder: input_ids int64 [1, tokens] → last_hidden_state [1, tokens, D]. */
export function textEncoderGraph(model: TextEncoderModel, tokens: number): Graph {
  const graph = new Graph('text encoder');
  const ids = graph.input(IO.ids, 'int64', [1, tokens]);
  graph.output(IO.hidden, clipTextTransformer(model.weights, model.config, ids));
  model.weights.assertAllBound(graph, isClipPositionIdsBuffer);
  return graph;
}

/** CLIPModel's text embedding (not normalised): input_ids int64 [1, tokens] → text_embeds [1, projection_dim]. */
export function clipTextGraph(clip: ClipModelWeights, tokens: number): Graph {
  const graph = new Graph('clip text');
  const ids = graph.input(IO.ids, 'int64', [1, tokens]);
  graph.output(IO.textEmbeds, clipTextEmbeds(clip, ids));
  assertClipPartBound(clip.weights, graph, CLIP_TEXT_PREFIXES);
  return graph;
}
