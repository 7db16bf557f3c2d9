/**
 * A small CLIP-format BPE vocabulary of our own, learned from a few sentences,
 * for tests that need a tokenizer without the real CLIP vocabulary. Ids follow
 * CLIP's layout: 256 byte characters, the same with "</w>", the merges in
 * order, and the start/end tokens at 49406/49407 so that ids stay below the
 * tiny text encoders' vocabulary size (49408) and the end token is the largest id.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BYTE_TO_CHAR } from '../../src/sidecar/models/tokenizer/bytes-to-unicode';
import { cleanPromptText } from '../../src/sidecar/models/tokenizer/text-clean';
import { splitWords } from '../../src/sidecar/models/tokenizer/clip-tokenizer';
import { utf8ToByteChars } from '../../src/sidecar/models/tokenizer/bytes-to-unicode';

export interface BpeVocabulary {
  readonly vocab: Record<string, number>;
  /** Merges in rank order, "left right". */
  readonly merges: string[];
}

export const TINY_START_ID = 49406;
export const TINY_END_ID = 49407;

export const DEFAULT_CORPUS: readonly string[] = [
  'a photo of a cat',
  'a photo of a dog on the beach',
  'a cat and a dog',
  'the cat sat on the mat',
  'a painting of a castle on a hill',
  'photograph of a horse, highly detailed',
];

/** Byte characters in CLIP's vocabulary order: printable bytes first, then the remapped ones. */
function byteCharsInVocabOrder(): string[] {
  const selfMapped: string[] = [];
  const remapped: string[] = [];
  for (let b = 0; b < 256; b++) {
    const c = BYTE_TO_CHAR[b]!;
    (c.charCodeAt(0) === b ? selfMapped : remapped).push(c);
  }
  return [...selfMapped, ...remapped];
}

/** Learns up to `maxMerges` merges (most frequent pair first, ties by pair text) from the corpus. */
export function buildTinyBpeVocabulary(corpus: readonly string[] = DEFAULT_CORPUS, maxMerges = 200): BpeVocabulary {
  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const word of splitWords(cleanPromptText(text))) {
      const key = utf8ToByteChars(word);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  let words = [...counts].map(([word, count]) => {
    const symbols = [...word];
    symbols[symbols.length - 1] += '</w>';
    return { symbols, count };
  });

  const merges: string[] = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const pair = `${symbols[i]} ${symbols[i + 1]}`;
        pairCounts.set(pair, (pairCounts.get(pair) ?? 0) + count);
      }
    }
    let best = '';
    let bestCount = 0;
    for (const [pair, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && pair < best)) {
        best = pair;
        bestCount = count;
      }
    }
    if (bestCount === 0) break;
    merges.push(best);
    const [left, right] = best.split(' ') as [string, string];
    words = words.map(({ symbols, count }) => {
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(symbols[i]!);
        }
      }
      return { symbols: merged, count };
    });
  }

  const vocab: Record<string, number> = {};
  const bytes = byteCharsInVocabOrder();
  bytes.forEach((c, i) => (vocab[c] = i));
  bytes.forEach((c, i) => (vocab[`${c}</w>`] = 256 + i));
  merges.forEach((m, i) => (vocab[m.replace(' ', '')] ??= 512 + i));
  vocab['<|startoftext|>'] = TINY_START_ID;
  vocab['<|endoftext|>'] = TINY_END_ID;
  return { vocab, merges };
}

/** Writes vocab.json and merges.txt (with the usual version line) into `dir`. */
export async function writeBpeFiles(dir: string, bpe: BpeVocabulary): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(bpe.vocab));
  await fs.writeFile(path.join(dir, 'merges.txt'), ['#version: 0.2', ...bpe.merges].join('\n') + '\n');
}
