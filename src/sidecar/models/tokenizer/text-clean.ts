/**
 * CLIP's prompt cleaning: `ftfy.fix_text`, Python `html.unescape` twice,
 * strip, collapse whitespace runs to one space, strip, lowercase.
 *
 * Of ftfy we reproduce every fixer that can change a typed or pasted prompt:
 * HTML entities (only in text without '<', repeated until stable), C1 control
 * characters read as Windows-1252, Latin ligatures, full/half-width forms,
 * curly quotes, line breaks, lone surrogates, terminal escapes, control
 * characters and NFC. Not reproduced: ftfy's mojibake repair (re-decoding
 * text such as "cafÃ©" that was decoded with the wrong codec), a heuristic
 * that needs ftfy's statistical tables.
 */
import { namedReferenceValue, pythonHtmlUnescape, WINDOWS_1252_C1 } from './html-unescape';

/** Python's str.isspace() / `re` \s: Unicode White_Space plus the information separators U+001C-U+001F. */
/* eslint-disable no-control-regex -- these patterns exist to match control characters */
const PY_SPACE_RUN = /[\p{White_Space}\x1c-\x1f]+/gu;
const PY_SPACE_EDGES = /^[\p{White_Space}\x1c-\x1f]+|[\p{White_Space}\x1c-\x1f]+$/gu;

const LATIN_LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ', '\u0133': 'ij', '\u0149': '\u02bcn',
  '\u01f1': 'DZ', '\u01f2': 'Dz', '\u01f3': 'dz', '\u01c4': 'D\u017d', '\u01c5': 'D\u017e', '\u01c6': 'd\u017e',
  '\u01c7': 'LJ', '\u01c8': 'Lj', '\u01c9': 'lj', '\u01ca': 'NJ', '\u01cb': 'Nj', '\u01cc': 'nj',
  '\ufb00': 'ff', '\ufb01': 'fi', '\ufb02': 'fl', '\ufb03': 'ffi', '\ufb04': 'ffl', '\ufb05': '\u017ft', '\ufb06': 'st',
};
const LATIN_LIGATURE_CHARS = new RegExp(`[${Object.keys(LATIN_LIGATURES).join('')}]`, 'gu');

/** Ideographic space and the halfwidth/fullwidth forms block map to their compatibility (NFKC) forms. */
function buildWidthMap(): Map<string, string> {
  const map = new Map<string, string>([['\u3000', ' ']]);
  for (let cp = 0xff01; cp < 0xfff0; cp++) {
    const ch = String.fromCharCode(cp);
    const alternate = ch.normalize('NFKC');
    if (alternate !== ch) map.set(ch, alternate);
  }
  return map;
}
const WIDTH_MAP = buildWidthMap();
const WIDTH_CHARS = /[\u3000\uff01-\uffef]/gu;

const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/gu;
const DOUBLE_QUOTES = /[\u201c-\u201f]/gu;
const C1_CONTROLS = /[\x80-\x9f]/gu;
const TERMINAL_ESCAPE = /\x1b\[[\p{Nd};]*[a-zA-Z]/gu;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** Control characters ftfy removes: C0 except tab/LF/FF/CR, DEL, deprecated Arabic format controls, BOM, interlinear annotations, U+FFFC. */
const CONTROL_CHARS = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/gu;
/** Candidate entities for ftfy's own (stricter) HTML pass: semicolon required. */
const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;
/* eslint-enable no-control-regex */

function ftfyUnescapeEntity(reference: string): string {
  const named = namedReferenceValue(reference);
  if (named !== null) return named;
  if (reference.startsWith('&#')) {
    const decoded = pythonHtmlUnescape(reference);
    // Only accept a decode that consumed the semicolon too.
    return decoded.includes(';') ? reference : decoded;
  }
  // ALL-CAPS spellings of lowercase entity names ("&NTILDE;" -> "Ñ"), unless the
  // capitalised form already means something to html.unescape.
  const lowerValue = namedReferenceValue(reference.toLowerCase());
  if (lowerValue !== null && reference === reference.toUpperCase() && pythonHtmlUnescape(reference) === reference) {
    return lowerValue.toUpperCase();
  }
  return reference;
}

/** ftfy's HTML pass: semicolon-terminated references only, plus ALL-CAPS spellings of lowercase names. */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY, ftfyUnescapeEntity);
}

/** One ftfy pass over a segment, repeated until nothing changes. */
function fixSegment(segment: string, unescapeHtml: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = text.replace(C1_CONTROLS, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80]!);
    text = text.replace(LATIN_LIGATURE_CHARS, (c) => LATIN_LIGATURES[c]!);
    text = text.replace(WIDTH_CHARS, (c) => WIDTH_MAP.get(c) ?? c);
    text = text.replace(DOUBLE_QUOTES, '"').replace(SINGLE_QUOTES, "'");
    text = text.replace(/\r\n/g, '\n').replace(/[\r\u2028\u2029\u0085]/g, '\n');
    text = text.replace(LONE_SURROGATE, '\ufffd');
    text = text.replace(TERMINAL_ESCAPE, '');
    text = text.replace(CONTROL_CHARS, '');
    text = text.normalize('NFC');
    if (text === before) return text;
  }
}

/**
 * The subset of ftfy.fix_text described above. Like ftfy, the text is fixed
 * line by line, and once a line contains '<' (so it may be HTML) entities are
 * left alone in it and in every later line.
 */
export function ftfyFixText(text: string): string {
  let unescapeHtml = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    const newline = text.indexOf('\n', pos);
    const end = newline === -1 ? text.length : newline + 1;
    const segment = text.slice(pos, end);
    if (segment.includes('<')) unescapeHtml = false;
    out += fixSegment(segment, unescapeHtml);
    pos = end;
  }
  return out;
}

/** Python str.strip() with no arguments. */
export function pythonStrip(text: string): string {
  return text.replace(PY_SPACE_EDGES, '');
}

/** The full cleaning CLIP applies before splitting a prompt into words. */
export function cleanPromptText(text: string): string {
  const basic = pythonStrip(pythonHtmlUnescape(pythonHtmlUnescape(ftfyFixText(text))));
  return pythonStrip(basic.replace(PY_SPACE_RUN, ' ')).toLowerCase();
}
