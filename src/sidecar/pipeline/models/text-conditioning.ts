/**
 * The two text inputs of an edit: Stable Diffusion's conditioning (the text encoder's last hidden
 * state of the prompt, SD-style ids padded with the end token) and CLIPDrag's guidance target (CLIP's
 * text embedding of the edit prompt, `clip.tokenize`-style ids padded with zeros).
 */
import type { ClipModelWeights } from '../../models/clip';
import { CONTEXT_LENGTH, type ClipTokenizer } from '../../models/tokenizer';
import { GraphSession, float32Output } from '../runtime/graph-session';
import { clipTextGraph, IO, textEncoderGraph } from './graphs';
import type { TextEncoderModel } from './models';

export interface EncodedPrompt {
  /** [1, tokens, D]. */
  readonly embedding: Float32Array;
  readonly tokens: number;
  /** The prompt was longer than the context and was cut. */
  readonly truncated: boolean;
}

/** SD's `text_encoder(tokenizer(prompt, padding="max_length", max_length=77))[0]`. */
export async function encodePrompt(session: GraphSession, model: TextEncoderModel, tokenizer: ClipTokenizer, prompt: string): Promise<EncodedPrompt> {
  const tokens = Math.min(CONTEXT_LENGTH, model.config.maxPositionEmbeddings);
  const padded = tokenizer.sdInputIds(prompt, tokens);
  const graph = await session.compile(textEncoderGraph(model, tokens), 'text encoder');
  const out = await session.run(graph, { [IO.ids]: BigInt64Array.from(padded.ids, BigInt) }, [IO.hidden], 'text encoding');
  return { embedding: float32Output(out, IO.hidden), tokens, truncated: padded.truncated };
}

/** CLIP's text embedding of the guidance prompt [1, projection_dim] (not normalised; the loss normalises). */
export async function encodeGuidanceText(session: GraphSession, clip: ClipModelWeights, tokenizer: ClipTokenizer, text: string): Promise<Float32Array> {
  const tokens = Math.min(CONTEXT_LENGTH, clip.config.textConfig.maxPositionEmbeddings);
  const padded = tokenizer.clipInputIds(text, tokens);
  return clipTextEmbedsOf(session, clip, BigInt64Array.from(padded.ids, BigInt));
}

/** CLIP's text embedding of given ids [1, tokens]. */
export async function clipTextEmbedsOf(session: GraphSession, clip: ClipModelWeights, ids: BigInt64Array): Promise<Float32Array> {
  const graph = await session.compile(clipTextGraph(clip, ids.length), 'CLIP text encoder');
  const out = await session.run(graph, { [IO.ids]: ids }, [IO.textEmbeds], 'text encoding');
  return float32Output(out, IO.textEmbeds);
}
