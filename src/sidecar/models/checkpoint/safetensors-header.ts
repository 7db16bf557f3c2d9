/**
 * Parsing, validation and serialisation of the safetensors header:
 * an 8-byte little-endian length N, then N bytes of JSON describing every
 * tensor's dtype, shape and [begin, end) byte range in the data section.
 */
import { dtypeByteSize, isSafetensorsDtype, SAFETENSORS_DTYPES, type SafetensorsDtype } from './dtypes';

/** Headers larger than this are rejected as corrupt (the reference reader uses the same bound). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export const METADATA_KEY = '__metadata__';

export class SafetensorsError extends Error {
  constructor(readonly file: string, problem: string, options?: ErrorOptions) {
    super(`${file}: ${problem}`, options);
    this.name = 'SafetensorsError';
  }
}

/** One tensor as described by the header; offsets are relative to the data section. */
export interface HeaderEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface ParsedHeader {
  /** Entries in file order (ascending offsets). */
  readonly entries: readonly HeaderEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Validates a decoded header against the size of the data section that follows it.
 * `file` only labels error messages.
 */
export function validateHeader(json: unknown, dataLength: number, file: string): ParsedHeader {
  const fail = (problem: string): never => {
    throw new SafetensorsError(file, problem);
  };
  if (!isPlainObject(json)) fail('header is not a JSON object');
  const header = json as Record<string, unknown>;

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        fail(`"${METADATA_KEY}" must map strings to strings`);
      }
      metadata = { ...(value as Record<string, string>) };
      continue;
    }
    if (!isPlainObject(value)) fail(`tensor "${name}": entry is not an object`);
    const entry = value as Record<string, unknown>;
    const { dtype, shape, data_offsets: offsets } = entry;
    if (!isSafetensorsDtype(dtype)) {
      fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (expected one of ${SAFETENSORS_DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInteger)) {
      fail(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeSafeInteger)) {
      fail(`tensor "${name}": data_offsets must be two non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`);
    const numel = elementCount(shape as number[]);
    const expectedBytes = numel * dtypeByteSize(dtype as SafetensorsDtype);
    if (!Number.isSafeInteger(expectedBytes)) fail(`tensor "${name}": shape ${JSON.stringify(shape)} is too large`);
    if (expectedBytes !== end - begin) {
      fail(
        `tensor "${name}": ${dtype} ${JSON.stringify(shape)} needs ${expectedBytes} bytes ` +
          `but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], begin, end });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) {
      fail(
        e.begin > cursor
          ? `tensor "${e.name}" starts at data byte ${e.begin}, leaving a gap after byte ${cursor}`
          : `tensor "${e.name}" starts at data byte ${e.begin}, overlapping the previous tensor (ends at ${cursor})`,
      );
    }
    cursor = e.end;
  }
  if (cursor > dataLength) {
    fail(`file is truncated: tensors need ${cursor} data bytes but only ${dataLength} are present`);
  }
  if (cursor < dataLength) {
    fail(`data section has ${dataLength - cursor} bytes after the last tensor (tensors cover ${cursor} of ${dataLength})`);
  }
  return { entries, metadata };
}

/** Decodes and validates the header bytes (the N bytes after the length prefix). */
export function parseHeaderBytes(headerBytes: Uint8Array, dataLength: number, file: string): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8 (not a safetensors file?)');
  }
  if (!text.startsWith('{')) throw new SafetensorsError(file, 'header does not start with "{" (not a safetensors file?)');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(file, `header is not valid JSON: ${(err as Error).message}`);
  }
  return validateHeader(json, dataLength, file);
}

export interface HeaderLayoutInput {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

/** Sort used by the reference writer: larger element types first, then by name (bytewise). */
export function compareForLayout(a: HeaderLayoutInput, b: HeaderLayoutInput): number {
  const rank = SAFETENSORS_DTYPES.indexOf(b.dtype) - SAFETENSORS_DTYPES.indexOf(a.dtype);
  if (rank !== 0) return rank;
  return Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8'));
}

/**
 * Builds the header bytes (length prefix included, JSON padded with spaces to
 * a multiple of 8) for tensors already in file order, and returns each one's
 * data range.
 */
export function serializeHeader(
  tensors: readonly HeaderLayoutInput[],
  metadata: Readonly<Record<string, string>> | undefined,
): { bytes: Buffer; ranges: Array<[number, number]> } {
  // Assembled by hand: a JS object would move integer-like tensor names to the front.
  const members: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) members.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  const ranges: Array<[number, number]> = [];
  let offset = 0;
  for (const t of tensors) {
    const end = offset + elementCount(t.shape) * dtypeByteSize(t.dtype);
    const entry = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    members.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    ranges.push([offset, end]);
    offset = end;
  }
  const body = Buffer.from(`{${members.join(',')}}`, 'utf8');
  const padded = Math.ceil(body.length / 8) * 8;
  const bytes = Buffer.alloc(8 + padded, 0x20);
  bytes.writeBigUInt64LE(BigInt(padded), 0);
  body.copy(bytes, 8);
  return { bytes, ranges };
}
