/**
 * CLIP BPE tokenizer: raw BPE ids of every prompt in the details file, SD
 * text-encoder ids (end-token padding) and clip.tokenize ids (zero padding).
 * Needs the real CLIP vocabulary: --bpe DIR, else the fixture set's own
 * clip-bpe/ folder (wherever the fixture set is).
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ClipTokenizer } from '../../../src/sidecar/models/tokenizer';
import { int64Tensor, numberSetting, SkipCase, type CaseRun } from '../case';

export const cases = ['tokenizer'] as const;

function findVocabulary(fixtureDir: string, bpeDir: string | undefined): string {
  const dir = bpeDir ?? path.join(fixtureDir, 'clip-bpe');
  if (!existsSync(path.join(dir, 'vocab.json')) || !existsSync(path.join(dir, 'merges.txt'))) {
    throw new SkipCase(`the CLIP BPE vocabulary (vocab.json + merges.txt) is not in ${dir}; put it there or pass --bpe DIR`);
  }
  return dir;
}

export const run: CaseRun = async (entry, _golden, fixtureDir, options) => {
  const tokenizer = await ClipTokenizer.fromDirectory(findVocabulary(fixtureDir, options.bpeDir));
  if (!entry.details) throw new Error('tokenizer case has no details file');
  const details = JSON.parse(await fs.readFile(path.join(fixtureDir, entry.details), 'utf8')) as {
    prompts: Array<{ prompt: string; bpe_ids: number[] }>;
  };
  const contextLength = numberSetting(entry.settings, 'context_length', entry.name);
  const n = details.prompts.length;
  const bpe = details.prompts.map((p) => tokenizer.encode(p.prompt));
  const sd = bpe.flatMap((ids) => tokenizer.pad(ids, tokenizer.endId, contextLength).ids);
  const clip = bpe.flatMap((ids) => tokenizer.pad(ids, 0, contextLength).ids);
  const referenceBpe = details.prompts.flatMap((p) => p.bpe_ids);
  const mineBpe = bpe.flat();
  return {
    outputs: {
      // All prompts' raw ids back to back; n_bpe pins where each prompt starts.
      bpe_ids: int64Tensor([mineBpe.length], mineBpe),
      sd_input_ids: int64Tensor([n, contextLength], sd),
      clip_input_ids: int64Tensor([n, contextLength], clip),
      n_bpe: int64Tensor([n], bpe.map((ids) => ids.length)),
    },
    references: { bpe_ids: int64Tensor([referenceBpe.length], referenceBpe) },
  };
};
