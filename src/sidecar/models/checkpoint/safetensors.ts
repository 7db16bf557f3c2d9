/**
 * Reading and writing safetensors files without loading them whole.
 *
 * The reader parses and validates the header, then exposes each tensor's
 * absolute byte range (so the graph engine can reference weights in place as
 * ONNX external data) and reads single tensors on demand with positioned reads.
 */
import * as fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { dtypeByteSize, type SafetensorsDtype } from './dtypes';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from '../../engine/float16';
import {
  compareForLayout,
  elementCount,
  MAX_HEADER_BYTES,
  parseHeaderBytes,
  SafetensorsError,
  serializeHeader,
} from './safetensors-header';

export { SafetensorsError } from './safetensors-header';
export type { SafetensorsDtype } from './dtypes';

/** One tensor of an opened file. Offsets are absolute positions in the file. */
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first element in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A tensor decoded into host memory. */
export type HostTensor =
  | { readonly dtype: 'F32'; readonly shape: readonly number[]; readonly data: Float32Array }
  | { readonly dtype: 'I64'; readonly shape: readonly number[]; readonly data: BigInt64Array }
  | { readonly dtype: 'U8'; readonly shape: readonly number[]; readonly data: Uint8Array };

/** Positioned reads are limited to 2 GiB per call by Node; stay well below. */
const READ_CHUNK_BYTES = 1 << 30;

function assertLittleEndianHost(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error('safetensors data is little-endian; this host is big-endian and is not supported');
  }
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly fileSize: number,
    /** Absolute offset of the data section (8 + header length). */
    readonly dataOffset: number,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly infos: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {}

  /** Opens and validates a file; throws SafetensorsError naming the file and the problem. */
  static async open(filePath: string): Promise<SafetensorsFile> {
    assertLittleEndianHost();
    let handle: FileHandle;
    try {
      handle = await fs.open(filePath, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SafetensorsError(filePath, code === 'ENOENT' ? 'file not found' : `cannot open: ${(err as Error).message}`, { cause: err });
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new SafetensorsError(filePath, 'not a regular file');
      const size = stats.size;
      if (size < 8) {
        throw new SafetensorsError(filePath, `file is ${size} bytes, too short for the 8-byte header length`);
      }
      const prefix = await readExactly(handle, filePath, 0, 8);
      const headerLength64 = Buffer.from(prefix.buffer, prefix.byteOffset, 8).readBigUInt64LE(0);
      if (headerLength64 > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(
          filePath,
          `header length ${headerLength64} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file, or corrupt)`,
        );
      }
      const headerLength = Number(headerLength64);
      if (8 + headerLength > size) {
        throw new SafetensorsError(
          filePath,
          `file is truncated: the header claims ${headerLength} bytes but only ${size - 8} follow the length prefix`,
        );
      }
      const headerBytes = await readExactly(handle, filePath, 8, headerLength);
      const dataOffset = 8 + headerLength;
      const parsed = parseHeaderBytes(headerBytes, size - dataOffset, filePath);
      const infos = new Map<string, SafetensorsTensorInfo>();
      for (const e of parsed.entries) {
        infos.set(e.name, {
          name: e.name,
          dtype: e.dtype,
          shape: e.shape,
          byteOffset: dataOffset + e.begin,
          byteLength: e.end - e.begin,
        });
      }
      return new SafetensorsFile(filePath, handle, size, dataOffset, parsed.metadata, infos);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Tensor names in file order. */
  names(): string[] {
    return [...this.infos.keys()];
  }

  /** All tensors in file order. */
  tensors(): SafetensorsTensorInfo[] {
    return [...this.infos.values()];
  }

  has(name: string): boolean {
    return this.infos.has(name);
  }

  /** Describes one tensor; throws if the file has no tensor of that name. */
  info(name: string): SafetensorsTensorInfo {
    const info = this.infos.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named "${name}" (the file has ${this.infos.size})`);
    return info;
  }

  /** Reads a tensor's raw little-endian bytes into a fresh, 8-byte aligned buffer. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    return readExactly(this.handle, this.path, info.byteOffset, info.byteLength);
  }

  /** Reads a floating-point tensor as float32 (F32 as is; F16, BF16 and F64 converted). */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    const bytes = await this.readBytes(name);
    const n = elementCount(info.shape);
    switch (info.dtype) {
      case 'F32':
        return new Float32Array(bytes.buffer, bytes.byteOffset, n);
      case 'F16':
        return float16BitsToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
      case 'BF16':
        return bfloat16BitsToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
      case 'F64':
        return Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, n));
      default:
        throw new SafetensorsError(this.path, `tensor "${name}" is ${info.dtype}, not a floating-point type`);
    }
  }

  /** Reads an I64 tensor. */
  async readInt64(name: string): Promise<BigInt64Array> {
    const info = this.info(name);
    if (info.dtype !== 'I64') throw new SafetensorsError(this.path, `tensor "${name}" is ${info.dtype}, expected I64`);
    const bytes = await this.readBytes(name);
    return new BigInt64Array(bytes.buffer, bytes.byteOffset, elementCount(info.shape));
  }

  /** Reads a U8 (or BOOL) tensor. */
  async readUint8(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    if (info.dtype !== 'U8' && info.dtype !== 'BOOL') {
      throw new SafetensorsError(this.path, `tensor "${name}" is ${info.dtype}, expected U8`);
    }
    return this.readBytes(name);
  }

  /**
   * Reads a tensor into its natural host form: floating types as F32, I64 as
   * I64, U8/BOOL as U8. Other integer types are not decoded (use readBytes).
   */
  async read(name: string): Promise<HostTensor> {
    const info = this.info(name);
    switch (info.dtype) {
      case 'F32':
      case 'F16':
      case 'BF16':
      case 'F64':
        return { dtype: 'F32', shape: info.shape, data: await this.readFloat32(name) };
      case 'I64':
        return { dtype: 'I64', shape: info.shape, data: await this.readInt64(name) };
      case 'U8':
      case 'BOOL':
        return { dtype: 'U8', shape: info.shape, data: await this.readUint8(name) };
      default:
        throw new SafetensorsError(this.path, `tensor "${name}": decoding ${info.dtype} is not supported (use readBytes)`);
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

async function readExactly(handle: FileHandle, file: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(length));
  let done = 0;
  while (done < length) {
    const want = Math.min(READ_CHUNK_BYTES, length - done);
    const { bytesRead } = await handle.read(out, done, want, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(file, `unexpected end of file at byte ${position + done} (file changed while reading?)`);
    }
    done += bytesRead;
  }
  return out;
}

/** Opens a file, runs `fn`, and closes the file again whatever happens. */
export async function withSafetensorsFile<T>(filePath: string, fn: (file: SafetensorsFile) => Promise<T>): Promise<T> {
  const file = await SafetensorsFile.open(filePath);
  try {
    return await fn(file);
  } finally {
    await file.close();
  }
}

// ---------------------------------------------------------------------------
// Writing

/** Raw little-endian element data; F16/BF16 are passed as their bit patterns (Uint16Array). */
export type TensorBytes = ArrayBufferView;

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** The data, or a function producing it when its turn comes (keeps big files out of memory). */
  readonly data: TensorBytes | (() => TensorBytes | Promise<TensorBytes>);
}

/**
 * Writes tensors atomically (temporary file in the same folder, then rename),
 * laid out like the reference writer: larger element types first, then by
 * name, header padded with spaces to a multiple of 8.
 */
export async function writeSafetensors(
  filePath: string,
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name.length === 0 || t.name === '__metadata__') throw new Error(`invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new Error(`tensor "${t.name}" is listed twice`);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} must hold non-negative integers`);
    }
  }
  const ordered = [...tensors].sort(compareForLayout);
  const { bytes: header } = serializeHeader(ordered, metadata);

  const dir = path.dirname(filePath);
  const tmp = path.join(dir, `.${path.basename(filePath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx');
  try {
    await writeAll(handle, header);
    for (const t of ordered) {
      const view = typeof t.data === 'function' ? await t.data() : t.data;
      const expected = elementCount(t.shape) * dtypeByteSize(t.dtype);
      if (view.byteLength !== expected) {
        throw new Error(
          `tensor "${t.name}": ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected} bytes, data has ${view.byteLength}`,
        );
      }
      await writeAll(handle, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
    await handle.sync();
    await handle.close();
    await fs.rename(tmp, filePath);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(READ_CHUNK_BYTES, bytes.byteLength - done));
    done += bytesWritten;
  }
}
