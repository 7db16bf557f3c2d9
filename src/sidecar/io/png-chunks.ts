// PNG chunk integrity. libvips' PNG reader (through sharp) tolerates chunks whose CRC does not match, and then
// decodes whatever the damaged bytes say; the PNG format forbids using such a file. Checking every chunk's CRC is a
// single pass over the bytes, much cheaper than decoding them.

import * as zlib from 'node:zlib';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib's own CRC-32 (Node 20.15 and later): about fifteen times faster than the table below. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 as PNG (and zlib) define it. */
export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) >>> 0 : tableCrc32(bytes);
}

export function tableCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/**
 * Walks the chunks of a PNG file and returns why it is damaged (a chunk whose CRC does not match, or a chunk that
 * runs past the end), or undefined when every chunk up to IEND is intact. Bytes after IEND are ignored, as decoders do.
 */
export function findPngChunkDamage(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = PNG_SIGNATURE.length;
  while (offset + 12 <= bytes.length) {
    const length = view.getUint32(offset);
    const typeBytes = bytes.subarray(offset + 4, offset + 8);
    const type = typeBytes.every(isAsciiLetter) ? `${String.fromCharCode(...typeBytes)} chunk` : `chunk at byte ${offset}`;
    const end = offset + 8 + length;
    if (end + 4 > bytes.length) return `the ${type} runs past the end of the file`;
    const stored = view.getUint32(end);
    if (crc32(bytes.subarray(offset + 4, end)) !== stored) return `the ${type}'s checksum does not match its content`;
    if (type === 'IEND chunk') return undefined;
    offset = end + 4;
  }
  return 'the file ends before its IEND chunk';
}

function isAsciiLetter(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}
