/**
 * The reversible byte <-> character table of CLIP's byte-level BPE: printable
 * Latin-1 bytes stand for themselves, every other byte gets a character from
 * U+0100 upwards, so any UTF-8 byte string becomes a string of visible
 * characters that the merge table can work on.
 */

function isSelfMapped(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildTable(): string[] {
  const table = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(isSelfMapped(b) ? b : next++);
  }
  return table;
}

/** BYTE_TO_CHAR[b] is the character that stands for byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildTable();

/** Inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const encoder = new TextEncoder();

/** Maps a string's UTF-8 bytes to BPE characters. */
export function utf8ToByteChars(text: string): string {
  let out = '';
  for (const b of encoder.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Maps BPE characters back to the UTF-8 text they encode (invalid sequences become U+FFFD). */
export function byteCharsToUtf8(chars: string): string {
  const bytes = new Uint8Array(chars.length);
  for (let i = 0; i < chars.length; i++) {
    const b = CHAR_TO_BYTE.get(chars[i]!);
    if (b === undefined) throw new Error(`character U+${chars.charCodeAt(i).toString(16).padStart(4, '0')} is not a BPE byte character`);
    bytes[i] = b;
  }
  return new TextDecoder('utf-8').decode(bytes);
}
