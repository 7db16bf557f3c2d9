import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { cleanPromptText, ftfyFixText, ftfyUnescapeHtml, pythonStrip } from '../../../../src/sidecar/models/tokenizer/text-clean';
import { pythonHtmlUnescape } from '../../../../src/sidecar/models/tokenizer/html-unescape';
import { splitWords } from '../../../../src/sidecar/models/tokenizer/clip-tokenizer';

const GOLDEN = path.resolve(__dirname, '../../../fixtures/golden/tokenizer.json');

test('cleaning reproduces the reference for every golden prompt', () => {
  const { prompts } = JSON.parse(readFileSync(GOLDEN, 'utf8')) as { prompts: Array<{ index: number; prompt: string; cleaned: string }> };
  assert.equal(prompts.length, 25);
  for (const p of prompts) assert.equal(cleanPromptText(p.prompt), p.cleaned, `prompt ${p.index}: ${JSON.stringify(p.prompt)}`);
});

test('html.unescape matches Python, including references without semicolons and invalid code points', () => {
  // Expected values produced by CPython's html.unescape.
  const cases: Array<[string, string]> = [
    ['&amp;', '&'], ['&amp', '&'], ['&ampx', '&x'], ['&notit;', '\u00acit;'], ['&notin;', '\u2209'],
    ['&#38;amp;', '&amp;'], ['&#x26;', '&'], ['&#0;', '\ufffd'], ['&#1;', ''], ['&#13;', '\r'],
    ['&#128;', '\u20ac'], ['&#129;', '\u0081'], ['&#xd800;', '\ufffd'], ['&#x110000;', '\ufffd'], ['&#xFFFE;', ''],
    ['&lt&gt', '<>'], ['&LT;', '<'], ['&AMP', '&'], ['&CounterClockwiseContourIntegral;', '\u2233'],
    ['&#;', '&#;'], ['&ab', '&ab'], ['&frac12;x', '\u00bdx'], ['a&b', 'a&b'],
  ];
  for (const [input, expected] of cases) assert.equal(pythonHtmlUnescape(input), expected, JSON.stringify(input));
});

test("ftfy's own entity pass: semicolons required, ALL-CAPS names of lowercase entities", () => {
  assert.equal(ftfyUnescapeHtml('&amp; &amp &ntilde; &NTILDE; &Ntilde; &nTILDE; &#x41; &#12a;'), '& &amp ñ Ñ Ñ &nTILDE; A &#12a;');
  assert.equal(ftfyUnescapeHtml('&AMP; &LT; P&EACUTE;REZ'), '& < PÉREZ');
});

test('ftfy fixes that change prompts', () => {
  assert.equal(ftfyFixText('don\u2019t \u201cquote\u201d \u02bcx'), 'don\'t "quote" \'x');
  assert.equal(ftfyFixText('\ufb01ne \ufb02ower \u01c5 \u0149'), "fine flower D\u017e 'n");
  assert.equal(ftfyFixText('\uff26\uff55\uff4c\uff4c\u3000\uff57\uff49\uff44\uff54\uff48 \uff76\uff9e'), 'Full width \u30ab\u3099'.normalize('NFC'));
  assert.equal(ftfyFixText('\x93smart\x94 \x85'), '"smart" \u2026'); // C1 controls read as Windows-1252, then uncurled
  assert.equal(ftfyFixText('\x1b[31;1mred\x1b[0m'), 'red');
  assert.equal(ftfyFixText('\ufeffa\u0000b\u007fc\u206ad\ufffce'), 'abcde');
  assert.equal(ftfyFixText('a\r\nb\rc\u2028d'), 'a\nb\nc\nd');
  assert.equal(ftfyFixText('e\u0301'), '\u00e9');
  assert.equal(ftfyFixText('x\ud800y'), 'x\ufffdy');
  assert.equal(ftfyFixText('\u{1f431}'), '\u{1f431}');
  // Entities are unescaped until stable, unless a '<' has been seen on this or an earlier line.
  assert.equal(ftfyFixText('&amp;amp;amp;'), '&');
  assert.equal(ftfyFixText('&amp;amp;amp;\n<'), '&\n<');
  assert.equal(ftfyFixText('<\n&amp;amp;amp;'), '<\n&amp;amp;amp;');
  assert.equal(ftfyFixText('a\u200bb'), 'a\u200bb');
});

test('whole cleaning: html twice, Python whitespace rules, lowercase', () => {
  assert.equal(cleanPromptText('<b>&amp;amp;amp;</b>'), '<b>&amp;</b>');
  assert.equal(cleanPromptText('&amp;amp;amp;'), '&');
  assert.equal(cleanPromptText('\x1c\u00a0 Hello\t\n\u3000World \x85'), 'hello world \u2026');
  assert.equal(cleanPromptText('  A\u2003B  '), 'a b');
  assert.equal(cleanPromptText('&NTILDE;O'), 'ño');
  assert.equal(pythonStrip('\x1f a \x1e'), 'a');
});

test('word split: contractions, letters, single digits, other runs', () => {
  assert.deepEqual(splitWords("it's 2024! x-ray <|endoftext|>ok"), ['it', "'s", '2', '0', '2', '4', '!', 'x', '-', 'ray', '<|endoftext|>', 'ok']);
  assert.deepEqual(splitWords('naïve 中文 ½'), ['naïve', '中文', '½']);
  assert.deepEqual(splitWords("we'll they're i'd"), ['we', "'ll", 'they', "'re", 'i', "'d"]);
});
