/**
 * HTML character-reference decoding with the exact behaviour of Python's
 * `html.unescape` (which CLIP's text cleaning applies twice), including its
 * handling of references without semicolons and of invalid code points.
 * The named-reference table is the HTML standard's, taken from `entities`.
 */
import { decodeHTML, decodeHTMLStrict } from 'entities';

/** Windows-1252 meanings of the bytes 0x80-0x9F; the five undefined ones stand for themselves. */
export const WINDOWS_1252_C1: readonly string[] = [
  '\u20ac', '\x81', '\u201a', '\u0192', '\u201e', '\u2026', '\u2020', '\u2021',
  '\u02c6', '\u2030', '\u0160', '\u2039', '\u0152', '\x8d', '\u017d', '\x8f',
  '\x90', '\u2018', '\u2019', '\u201c', '\u201d', '\u2022', '\u2013', '\u2014',
  '\u02dc', '\u2122', '\u0161', '\u203a', '\u0153', '\x9d', '\u017e', '\u0178',
];

/** Numeric, hex, or named reference (up to 32 name characters), optional semicolon. */
const CHARACTER_REFERENCE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Code points Python's html.unescape drops entirely when they come from a numeric reference. */
function isDroppedCodePoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

function decodeNumeric(ref: string): string {
  const hex = ref[1] === 'x' || ref[1] === 'X';
  const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
  const cp = Number.parseInt(digits, hex ? 16 : 10); // very long digit strings become huge or Infinity: out of range below
  if (cp === 0) return '\ufffd';
  if (cp === 0x0d) return '\r';
  if (cp >= 0x80 && cp <= 0x9f) return WINDOWS_1252_C1[cp - 0x80]!;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return '\ufffd';
  if (isDroppedCodePoint(cp)) return '';
  return String.fromCodePoint(cp);
}

/** Python html.unescape. */
export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARACTER_REFERENCE, (match: string, ref: string) => {
    if (ref.startsWith('#')) return decodeNumeric(ref);
    // Longest known name that prefixes the reference (legacy names may lack the
    // semicolon), the rest kept as text: the standard's rule, which both Python
    // and `entities` (in its default legacy mode) implement. The match holds a
    // single '&', so exactly one reference is decoded.
    return decodeHTML(match);
  });
}

/**
 * Value of a semicolon-terminated named reference such as "&amp;", or null
 * when the whole string is not one.
 */
export function namedReferenceValue(reference: string): string | null {
  if (!/^&[0-9A-Za-z]+;$/.test(reference)) return null;
  // Strict decoding only accepts references closed by ';', and the only ';' is the last character.
  const decoded = decodeHTMLStrict(reference);
  return decoded === reference ? null : decoded;
}
