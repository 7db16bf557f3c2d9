/**
 * Byte-pair encoding of one word with a merge-rank table, as in CLIP: the
 * word's last symbol carries the end-of-word marker, and the lowest-ranked
 * adjacent pair is merged until no known pair remains.
 */

export const END_OF_WORD = '</w>';

/** Merge ranks keyed by "left right" (symbols never contain spaces). */
export type MergeRanks = ReadonlyMap<string, number>;

/** Parses merges.txt: an optional "#version" line, then one "left right" pair per line, best first. */
export function parseMerges(text: string, file = 'merges.txt'): Map<string, number> {
  const ranks = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  let rank = 0;
  for (const [lineNo, raw] of lines.entries()) {
    if (raw.length === 0 || (lineNo === 0 && raw.startsWith('#version'))) continue;
    const parts = raw.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`${file}:${lineNo + 1}: expected "left right", got ${JSON.stringify(raw)}`);
    }
    ranks.set(raw, rank++); // a repeated pair keeps its last rank, as a dict built from the list would
  }
  return ranks;
}

/** Splits a word (already mapped to byte characters) into BPE symbols. */
export function bpeWord(word: string, ranks: MergeRanks): string[] {
  if (word.length === 0) return [];
  let symbols = [...word];
  symbols[symbols.length - 1] += END_OF_WORD;
  while (symbols.length > 1) {
    let bestRank = Infinity;
    let best = '';
    for (let i = 0; i + 1 < symbols.length; i++) {
      const pair = `${symbols[i]} ${symbols[i + 1]}`;
      const rank = ranks.get(pair);
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank;
        best = pair;
      }
    }
    if (bestRank === Infinity) break;
    const split = best.indexOf(' ');
    const left = best.slice(0, split);
    const right = best.slice(split + 1);
    // Merge every non-overlapping occurrence, scanning left to right.
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (symbols[i] === left && i + 1 < symbols.length && symbols[i + 1] === right) {
        merged.push(left + right);
        i++;
      } else {
        merged.push(symbols[i]!);
      }
    }
    symbols = merged;
  }
  return symbols;
}
