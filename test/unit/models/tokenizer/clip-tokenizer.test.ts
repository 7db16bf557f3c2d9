import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClipTokenizer } from '../../../../src/sidecar/models/tokenizer';
import { bpeWord, parseMerges } from '../../../../src/sidecar/models/tokenizer/bpe';
import { BYTE_TO_CHAR, byteCharsToUtf8, utf8ToByteChars } from '../../../../src/sidecar/models/tokenizer/bytes-to-unicode';
import { withSafetensorsFile } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { buildTinyBpeVocabulary, DEFAULT_CORPUS, TINY_END_ID, TINY_START_ID, writeBpeFiles } from '../../../helpers/tiny-bpe';

const REPO_ROOT = path.resolve(__dirname, '../../../..');
const GOLDEN = path.join(REPO_ROOT, 'test/fixtures/golden');
const REAL_BPE = process.env.CLIP_BPE_DIR ?? path.join(REPO_ROOT, 'test/fixtures/clip-bpe');

interface GoldenPrompt {
  index: number;
  prompt: string;
  cleaned: string;
  bpe_ids: number[];
  bpe_tokens: string[];
  n_bpe: number;
  truncated: boolean;
}
const goldenPrompts = (JSON.parse(readFileSync(path.join(GOLDEN, 'tokenizer.json'), 'utf8')) as { prompts: GoldenPrompt[] }).prompts;

test('byte characters: 256 distinct characters that round-trip any UTF-8 text', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[0x41], 'A');
  assert.equal(BYTE_TO_CHAR[0x20], '\u0120'); // space -> "Ġ"
  assert.equal(BYTE_TO_CHAR[0x00], '\u0100');
  for (const text of ['café 🐱', '中文', 'a\u0000b']) assert.equal(byteCharsToUtf8(utf8ToByteChars(text)), text);
});

test('BPE merges the lowest-ranked pair first, non-overlapping, left to right', () => {
  const ranks = parseMerges('#version: 0.2\na a\naa a</w>\nl o\nlo w</w>\n');
  assert.deepEqual(bpeWord('aaa', ranks), ['aaa</w>']);
  assert.deepEqual(bpeWord('aaaa', ranks), ['aa', 'a', 'a</w>']);
  assert.deepEqual(bpeWord('low', ranks), ['low</w>']);
  assert.deepEqual(bpeWord('lowa', ranks), ['lo', 'w', 'a</w>']);
  assert.deepEqual(bpeWord('x', ranks), ['x</w>']);
  assert.throws(() => parseMerges('#version: 0.2\nab\n', 'm.txt'), /m\.txt:2: expected "left right"/);
});

test('tokenizer on a generated vocabulary: words, special tokens, padding and truncation', async () => {
  const bpe = buildTinyBpeVocabulary();
  const tok = ClipTokenizer.fromData(bpe.vocab, bpe.merges);
  assert.equal(tok.startId, TINY_START_ID);
  assert.equal(tok.endId, TINY_END_ID);
  for (const id of Object.values(bpe.vocab)) assert.ok(id < 49408);

  // Frequent corpus words became single tokens.
  const { pieces } = tok.tokenize('A photo of a CAT');
  assert.deepEqual(pieces, ['a</w>', 'photo</w>', 'of</w>', 'a</w>', 'cat</w>']);
  for (const text of DEFAULT_CORPUS) assert.equal(tok.decode(tok.encode(text)).trimEnd(), text.replace(',', ' ,'));
  // Unseen words still encode, through smaller pieces.
  assert.equal(tok.decode(tok.encode('zebra')), 'zebra ');

  assert.deepEqual(tok.encode('<|startoftext|>cat<|endoftext|>'), [TINY_START_ID, bpe.vocab['cat</w>'], TINY_END_ID]);

  const sd = tok.sdInputIds('a cat');
  assert.equal(sd.ids.length, 77);
  assert.deepEqual(sd.ids.slice(0, 4), [TINY_START_ID, bpe.vocab['a</w>'], bpe.vocab['cat</w>'], TINY_END_ID]);
  assert.ok(sd.ids.slice(4).every((id) => id === TINY_END_ID));
  assert.equal(sd.truncated, false);
  const clip = tok.clipInputIds('a cat');
  assert.deepEqual(clip.ids.slice(0, 4), sd.ids.slice(0, 4));
  assert.ok(clip.ids.slice(4).every((id) => id === 0));

  const long = tok.sdInputIds('cat '.repeat(100));
  assert.equal(long.ids.length, 77);
  assert.equal(long.kept, 75);
  assert.equal(long.truncated, true);
  assert.equal(long.ids[76], TINY_END_ID);
  assert.equal(long.ids[75], bpe.vocab['cat</w>']);
  const short = tok.clipInputIds('cat '.repeat(10), 8);
  assert.deepEqual(short.ids, [TINY_START_ID, ...Array(6).fill(bpe.vocab['cat</w>']), TINY_END_ID]);
  assert.deepEqual(tok.sdInputIds('').ids.slice(0, 3), [TINY_START_ID, TINY_END_ID, TINY_END_ID]);
});

test('tokenizer files: loading and clear errors', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bpe-'));
  const bpe = buildTinyBpeVocabulary();
  await writeBpeFiles(dir, bpe);
  const tok = await ClipTokenizer.fromDirectory(dir);
  assert.deepEqual(tok.encode('a dog'), [bpe.vocab['a</w>'], bpe.vocab['dog</w>']]);

  await assert.rejects(ClipTokenizer.fromDirectory(path.join(dir, 'missing')), /vocab\.json: tokenizer file not found/);
  const { ['<|endoftext|>']: _dropped, ...withoutEnd } = bpe.vocab;
  await fs.writeFile(path.join(dir, 'vocab.json'), JSON.stringify(withoutEnd));
  await assert.rejects(ClipTokenizer.fromDirectory(dir), /vocab\.json: the vocabulary has no "<\|endoftext\|>" token/);
  await fs.writeFile(path.join(dir, 'vocab.json'), '[1,2]');
  await assert.rejects(ClipTokenizer.fromDirectory(dir), /expected an object mapping tokens to non-negative integer ids/);

  // A merge whose result the vocabulary lacks is reported, not silently mis-encoded.
  const broken = ClipTokenizer.fromData({ ...bpe.vocab, ['cat</w>']: undefined as unknown as number }, bpe.merges);
  assert.throws(() => broken.encode('cat'), /no id for BPE symbol "cat<\/w>"/);
  await fs.rm(dir, { recursive: true });
});

test('golden tokenizer case with the real CLIP vocabulary (the fixture set\'s clip-bpe/)', async () => {
  const tok = await ClipTokenizer.fromDirectory(REAL_BPE);
  assert.equal(tok.size, 49408);
  const sdRows: number[] = [];
  const clipRows: number[] = [];
  for (const p of goldenPrompts) {
    const r = tok.tokenize(p.prompt);
    assert.equal(r.cleaned, p.cleaned, `prompt ${p.index}`);
    assert.deepEqual(r.pieces, p.bpe_tokens, `prompt ${p.index}`);
    assert.deepEqual(r.ids, p.bpe_ids, `prompt ${p.index}`);
    const sd = tok.sdInputIds(p.prompt);
    assert.equal(sd.truncated, p.truncated, `prompt ${p.index}`);
    sdRows.push(...sd.ids);
    clipRows.push(...tok.clipInputIds(p.prompt).ids);
  }
  await withSafetensorsFile(path.join(GOLDEN, 'tokenizer.safetensors'), async (f) => {
    assert.deepEqual([...(await f.readInt64('sd_input_ids'))].map(Number), sdRows);
    assert.deepEqual([...(await f.readInt64('clip_input_ids'))].map(Number), clipRows);
    assert.deepEqual([...(await f.readInt64('n_bpe'))].map(Number), goldenPrompts.map((p) => p.n_bpe));
  });
});
