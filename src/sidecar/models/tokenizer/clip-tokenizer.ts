/**
 * CLIP's byte-level BPE tokenizer (OpenAI SimpleTokenizer) over the
 * `vocab.json` + `merges.txt` files that SD-1.5 and CLIP repositories ship,
 * plus the two fixed-length id layouts the pipeline needs: SD's text encoder
 * input (padded with end-of-text) and `clip.tokenize` (padded with zeros).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { bpeWord, END_OF_WORD, parseMerges, type MergeRanks } from './bpe';
import { byteCharsToUtf8, utf8ToByteChars } from './bytes-to-unicode';
import { cleanPromptText } from './text-clean';

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
export const CONTEXT_LENGTH = 77;

/**
 * Word splitting: the special tokens, English contractions, letter runs,
 * single digits, and runs of other non-space characters. Case-insensitive as
 * in the reference (the text is lowercased before anyway).
 */
const WORD_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/giu;

/** Splits cleaned text into the words BPE runs on. */
export function splitWords(cleaned: string): string[] {
  return Array.from(cleaned.matchAll(WORD_PATTERN), (m) => m[0]);
}

/** Word -> BPE symbols cache; bounded so a long-lived process cannot grow it without limit. */
const CACHE_LIMIT = 20000;

export interface TokenizedText {
  /** The text after cleaning (what the words were split from). */
  readonly cleaned: string;
  /** BPE symbols in byte-character form, e.g. "photo</w>". */
  readonly pieces: readonly string[];
  /** Vocabulary ids of the pieces (no start/end tokens). */
  readonly ids: readonly number[];
}

export interface PaddedIds {
  /** Exactly `contextLength` ids: start, BPE ids, end, padding. */
  readonly ids: number[];
  /** BPE ids kept (without start/end). */
  readonly kept: number;
  /** True when BPE ids were dropped to fit. */
  readonly truncated: boolean;
}

export class ClipTokenizer {
  private readonly cache = new Map<string, readonly string[]>();
  readonly startId: number;
  readonly endId: number;

  /** What Stable Diffusion's input ids are padded with: the end token, unless the tokenizer's config names another. */
  readonly sdPadId: number;

  private constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly ranks: MergeRanks,
    private readonly idToToken: ReadonlyMap<number, string>,
    private readonly source: string,
    sdPadToken: string = END_OF_TEXT,
  ) {
    this.startId = this.requireId(START_OF_TEXT);
    this.endId = this.requireId(END_OF_TEXT);
    this.sdPadId = this.requireId(sdPadToken);
  }

  /**
   * The same tokenizer padding Stable Diffusion's input with `token` (SD-2.x's tokenizer pads with "!", SD-1.x's with
   * the end token); the token must be in the vocabulary.
   */
  withSdPadding(token: string): ClipTokenizer {
    return token === END_OF_TEXT && this.sdPadId === this.endId ? this : new ClipTokenizer(this.vocab, this.ranks, this.idToToken, this.source, token);
  }

  /** Builds a tokenizer from a token -> id map and merges in rank order ("left right"). */
  static fromData(vocab: Readonly<Record<string, number>>, merges: readonly string[], source = 'vocabulary'): ClipTokenizer {
    return ClipTokenizer.build(vocab, parseMerges(merges.join('\n'), source), source);
  }

  static async fromFiles(vocabPath: string, mergesPath: string): Promise<ClipTokenizer> {
    // Read in order so a folder missing both files always reports vocab.json first.
    const vocabText = await readText(vocabPath);
    const mergesText = await readText(mergesPath);
    let vocab: unknown;
    try {
      vocab = JSON.parse(vocabText);
    } catch (err) {
      throw new Error(`${vocabPath}: not valid JSON: ${(err as Error).message}`);
    }
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab) || !Object.values(vocab).every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) {
      throw new Error(`${vocabPath}: expected an object mapping tokens to non-negative integer ids`);
    }
    return ClipTokenizer.build(vocab as Record<string, number>, parseMerges(mergesText, mergesPath), vocabPath);
  }

  /** Loads `vocab.json` and `merges.txt` from a folder (e.g. a diffusers `tokenizer/`). */
  static async fromDirectory(dir: string): Promise<ClipTokenizer> {
    return ClipTokenizer.fromFiles(path.join(dir, 'vocab.json'), path.join(dir, 'merges.txt'));
  }

  private static build(vocab: Readonly<Record<string, number>>, ranks: MergeRanks, source: string): ClipTokenizer {
    const map = new Map(Object.entries(vocab));
    const inverse = new Map<number, string>();
    for (const [token, id] of map) inverse.set(id, token);
    return new ClipTokenizer(map, ranks, inverse, source);
  }

  private requireId(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new Error(`${this.source}: the vocabulary has no ${JSON.stringify(token)} token`);
    return id;
  }

  /** Number of distinct ids (one more than the largest id for a dense vocabulary). */
  get size(): number {
    return this.vocab.size;
  }

  private symbolsOf(word: string): readonly string[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    // The special tokens pass through whole, as in the reference's pre-seeded cache.
    const symbols = word === START_OF_TEXT || word === END_OF_TEXT ? [word] : bpeWord(word, this.ranks);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, symbols);
    return symbols;
  }

  /** Cleans, splits and encodes a prompt, keeping the intermediate forms. */
  tokenize(text: string): TokenizedText {
    const cleaned = cleanPromptText(text);
    const pieces: string[] = [];
    const ids: number[] = [];
    for (const word of splitWords(cleaned)) {
      for (const symbol of this.symbolsOf(utf8ToByteChars(word))) {
        const id = this.vocab.get(symbol);
        if (id === undefined) throw new Error(`${this.source}: no id for BPE symbol ${JSON.stringify(symbol)} (vocabulary and merges do not match)`);
        pieces.push(symbol);
        ids.push(id);
      }
    }
    return { cleaned, pieces, ids };
  }

  /** BPE ids of a prompt, without start/end tokens. */
  encode(text: string): number[] {
    return [...this.tokenize(text).ids];
  }

  /** Text of ids (end-of-word markers become spaces, as in the reference decoder), for logs and tests. */
  decode(ids: readonly number[]): string {
    let chars = '';
    for (const id of ids) {
      const token = this.idToToken.get(id);
      if (token === undefined) throw new Error(`${this.source}: id ${id} is not in the vocabulary`);
      chars += token;
    }
    // Markers and special tokens are printable ASCII, so they are byte characters too.
    return byteCharsToUtf8(chars).replaceAll(END_OF_WORD, ' ');
  }

  /**
   * Start token, BPE ids, end token, truncated to `contextLength` with the end
   * token kept last, then padded with `padId`.
   */
  pad(bpeIds: readonly number[], padId: number, contextLength = CONTEXT_LENGTH): PaddedIds {
    if (contextLength < 2) throw new RangeError(`context length ${contextLength} cannot hold the start and end tokens`);
    const kept = Math.min(bpeIds.length, contextLength - 2);
    const ids = [this.startId, ...bpeIds.slice(0, kept), this.endId];
    while (ids.length < contextLength) ids.push(padId);
    return { ids, kept, truncated: kept < bpeIds.length };
  }

  /** Stable Diffusion's text-encoder input: padded with the end token (or the token `withSdPadding` set). */
  sdInputIds(text: string, contextLength = CONTEXT_LENGTH): PaddedIds {
    return this.pad(this.encode(text), this.sdPadId, contextLength);
  }

  /** `clip.tokenize(text, truncate=True)`: padded with zeros. */
  clipInputIds(text: string, contextLength = CONTEXT_LENGTH): PaddedIds {
    return this.pad(this.encode(text), 0, contextLength);
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${file}: tokenizer file not found` : `${file}: cannot read: ${(err as Error).message}`);
  }
}
