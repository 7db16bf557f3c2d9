// Reads the tensors of a PyTorch checkpoint (`torch.save` of a state dict, `.pth`/`.pt`) without running it: the
// pickle inside is parsed by the restricted machine in `pickle.ts`, which accepts plain containers and PyTorch's
// tensor records only and refuses every other object by name. Both file formats torch writes:
//
// - zip (torch ≥ 1.6): `<archive>/data.pkl` and one stored (uncompressed) entry `<archive>/data/<key>` per storage;
// - legacy: five pickles in a row (magic number, protocol version, system info, the object, the storage keys), then
//   each storage as an 8-byte element count and its raw bytes.
//
// Tensors come back as contiguous little-endian bytes with a safetensors dtype name, keyed by their state-dict
// name (nested dicts are joined with dots).
import { PickleError, PickleGlobal, TorchTensorRecord, isPickleTuple, readPickleAt, type PickleValue } from './pickle';

export type TorchTensorDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface TorchCheckpointTensor {
  readonly dtype: TorchTensorDType;
  readonly shape: readonly number[];
  /** Contiguous (row-major) little-endian bytes. */
  readonly data: Uint8Array;
}

/** A checkpoint that cannot be read, or holds something other than tensors in (nested) dicts. */
export class TorchCheckpointError extends Error {
  override readonly name = 'TorchCheckpointError';
}

const STORAGE_DTYPES: ReadonlyMap<string, { dtype: TorchTensorDType; bytes: number }> = new Map([
  ['DoubleStorage', { dtype: 'F64', bytes: 8 }],
  ['FloatStorage', { dtype: 'F32', bytes: 4 }],
  ['HalfStorage', { dtype: 'F16', bytes: 2 }],
  ['BFloat16Storage', { dtype: 'BF16', bytes: 2 }],
  ['LongStorage', { dtype: 'I64', bytes: 8 }],
  ['IntStorage', { dtype: 'I32', bytes: 4 }],
  ['ShortStorage', { dtype: 'I16', bytes: 2 }],
  ['CharStorage', { dtype: 'I8', bytes: 1 }],
  ['ByteStorage', { dtype: 'U8', bytes: 1 }],
  ['BoolStorage', { dtype: 'BOOL', bytes: 1 }],
]);

/** What a persistent id names: a storage's key and element type; its bytes are found by key afterwards. */
interface StorageRef {
  readonly key: string;
  readonly dtype: TorchTensorDType;
  readonly elementBytes: number;
}


/** Reads every tensor of a `torch.save` file's bytes. `source` names the file in messages. */
export function readTorchCheckpoint(bytes: Uint8Array, source: string): Map<string, TorchCheckpointTensor> {
  try {
    return isZip(bytes) ? readZipCheckpoint(bytes, source) : readLegacyCheckpoint(bytes, source);
  } catch (error) {
    if (error instanceof PickleError) throw new TorchCheckpointError(error.message);
    throw error;
  }
}

function storageRef(id: PickleValue, source: string): StorageRef {
  // ('storage', storage_type, key, location, numel[, view_metadata])
  if (!Array.isArray(id) || !isPickleTuple(id) || id[0] !== 'storage' || !(id[1] instanceof PickleGlobal)) {
    throw new TorchCheckpointError(`${source}: a persistent id is not a PyTorch storage record`);
  }
  const type = STORAGE_DTYPES.get((id[1] as PickleGlobal).name);
  const key = id[2];
  if (!type || (typeof key !== 'string' && typeof key !== 'number')) {
    throw new TorchCheckpointError(`${source}: unsupported storage record ${(id[1] as PickleGlobal).qualifiedName}`);
  }
  if (id.length > 5 && id[5] !== null) throw new TorchCheckpointError(`${source} uses storage views, which are not supported`);
  return { key: String(key), dtype: type.dtype, elementBytes: type.bytes };
}

/** A persistent id kept as the tensor's storage once it is known to be a storage record. */
function checkedStorageId(id: PickleValue, source: string): PickleValue {
  storageRef(id, source);
  return id;
}

/** Tensors of the unpickled object, found in (nested) dicts and materialised from their storages. */
function collectTensors(root: PickleValue, storages: ReadonlyMap<string, Uint8Array>, source: string): Map<string, TorchCheckpointTensor> {
  const tensors = new Map<string, TorchCheckpointTensor>();
  const visit = (value: PickleValue, name: string): void => {
    if (value instanceof TorchTensorRecord) {
      tensors.set(name, materialise(value, storages, `${source}: tensor ${name}`));
    } else if (value instanceof Map) {
      for (const [key, child] of value) visit(child, name ? `${name}.${String(key)}` : String(key));
    } else {
      throw new TorchCheckpointError(`${source}: ${name || 'the file'} holds a ${typeName(value)}, not a tensor or a dict of tensors`);
    }
  };
  if (!(root instanceof Map)) throw new TorchCheckpointError(`${source} holds a ${typeName(root)}, not a state dict (a dict of tensors)`);
  visit(root, '');
  return tensors;
}

function typeName(value: PickleValue): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'list or tuple';
  return typeof value === 'object' ? value.constructor.name : typeof value;
}

function materialise(record: TorchTensorRecord, storages: ReadonlyMap<string, Uint8Array>, what: string): TorchCheckpointTensor {
  const ref = storageRef(record.storage, what);
  const storage = storages.get(ref.key);
  if (!storage) throw new TorchCheckpointError(`${what}: its storage ${ref.key} is missing from the file`);
  const { size, stride, storageOffset } = record;
  if (size.length !== stride.length) throw new TorchCheckpointError(`${what} has ${size.length} dimensions but ${stride.length} strides`);
  const count = size.reduce((a, b) => a * b, 1);
  const e = ref.elementBytes;
  const data = new Uint8Array(count * e);
  if (count > 0) {
    let last = storageOffset;
    for (let d = 0; d < size.length; d++) last += (size[d]! - 1) * stride[d]!;
    if ((last + 1) * e > storage.length) throw new TorchCheckpointError(`${what} reaches past the end of its storage`);
  }
  // Copy element by element in row-major order of the view (strides may describe any layout).
  const index = new Array<number>(size.length).fill(0);
  for (let i = 0; i < count; i++) {
    let at = storageOffset;
    for (let d = 0; d < size.length; d++) at += index[d]! * stride[d]!;
    data.set(storage.subarray(at * e, at * e + e), i * e);
    for (let d = size.length - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
  return { dtype: ref.dtype, shape: [...size], data };
}

// -- zip format -------------------------------------------------------------------------------------------------

function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

interface ZipEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

function readZipCheckpoint(bytes: Uint8Array, source: string): Map<string, TorchCheckpointTensor> {
  const entries = readStoredZip(bytes, source);
  const pickle = entries.find((entry) => /^[^/]+\/data\.pkl$/.test(entry.name));
  if (!pickle) throw new TorchCheckpointError(`${source} is a zip archive without a data.pkl: not a PyTorch checkpoint`);
  const prefix = pickle.name.slice(0, -'data.pkl'.length);
  const byteorder = entries.find((entry) => entry.name === `${prefix}byteorder`);
  if (byteorder && new TextDecoder().decode(byteorder.data).trim() !== 'little') {
    throw new TorchCheckpointError(`${source} was saved on a big-endian machine; load and re-save it on a little-endian one`);
  }
  const storages = new Map<string, Uint8Array>();
  for (const entry of entries) if (entry.name.startsWith(`${prefix}data/`)) storages.set(entry.name.slice(prefix.length + 5), entry.data);
  const { value } = readPickleAt(pickle.data, 0, { source: `${source} (data.pkl)`, torch: true, persistentLoad: (id) => checkedStorageId(id, source) });
  return collectTensors(value, storages, source);
}

/** The entries of a zip archive whose entries are stored uncompressed (as `torch.save` writes them). */
function readStoredZip(bytes: Uint8Array, source: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (detail: string): never => {
    throw new TorchCheckpointError(`${source} is not a readable PyTorch zip checkpoint: ${detail}`);
  };
  // End of central directory: 22 bytes plus a comment of up to 64 KiB, searched from the end.
  let eocd = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === 0x06054b50) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-archive record (the file is cut off or damaged)');
  let count = view.getUint16(eocd + 10, true);
  let directory = view.getUint32(eocd + 16, true);
  if (count === 0xffff || directory === 0xffffffff) {
    // ZIP64: the locator just before the record points at the ZIP64 end-of-central-directory record.
    const locator = eocd - 20;
    if (locator < 0 || view.getUint32(locator, true) !== 0x07064b50) fail('a ZIP64 archive without its locator');
    const record = Number(view.getBigUint64(locator + 8, true));
    if (record + 56 > bytes.length || view.getUint32(record, true) !== 0x06064b50) fail('a damaged ZIP64 record');
    count = Number(view.getBigUint64(record + 32, true));
    directory = Number(view.getBigUint64(record + 48, true));
  }
  const entries: ZipEntry[] = [];
  let at = directory;
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== 0x02014b50) fail('a damaged central directory');
    const method = view.getUint16(at + 10, true);
    let size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let local = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // ZIP64 extra field (id 1): the 64-bit values of the fields saturated above, in order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = view.getUint16(extra, true);
      const length = view.getUint16(extra + 2, true);
      if (id === 1) {
        let field = extra + 4;
        const uncompressed = view.getUint32(at + 24, true) === 0xffffffff;
        if (uncompressed) {
          size = Number(view.getBigUint64(field, true));
          field += 8;
        }
        if (view.getUint32(at + 20, true) === 0xffffffff) field += 8; // compressed size, equal for stored entries
        if (local === 0xffffffff) local = Number(view.getBigUint64(field, true));
      }
      extra += 4 + length;
    }
    if (method !== 0) fail(`entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
    if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50) fail(`entry ${name} has no local header`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + size > bytes.length) fail(`entry ${name} is cut off`);
    entries.push({ name, data: bytes.subarray(start, start + size) });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// -- legacy format ----------------------------------------------------------------------------------------------

/** torch.serialization's MAGIC_NUMBER and PROTOCOL_VERSION. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function readLegacyCheckpoint(bytes: Uint8Array, source: string): Map<string, TorchCheckpointTensor> {
  const plain = { source, maxLongBytes: 16 };
  let at = 0;
  const next = (options: Parameters<typeof readPickleAt>[2]): PickleValue => {
    const { value, end } = readPickleAt(bytes, at, options);
    at = end;
    return value;
  };
  let magic: PickleValue;
  try {
    magic = next(plain);
  } catch {
    throw new TorchCheckpointError(`${source} is neither a zip nor a legacy PyTorch checkpoint (it does not start with a pickle)`);
  }
  if (magic !== LEGACY_MAGIC) throw new TorchCheckpointError(`${source} is a pickle but not a PyTorch checkpoint (no torch.save magic number)`);
  if (next(plain) !== LEGACY_PROTOCOL) throw new TorchCheckpointError(`${source} uses a torch.save protocol other than ${LEGACY_PROTOCOL}`);
  const info = next(plain);
  if (info instanceof Map && info.get('little_endian') === false) {
    throw new TorchCheckpointError(`${source} was saved on a big-endian machine; load and re-save it on a little-endian one`);
  }
  const refs = new Map<string, StorageRef>();
  const root = next({
    source,
    torch: true,
    persistentLoad: (id) => {
      const ref = storageRef(id, source);
      refs.set(ref.key, ref);
      return id;
    },
  });
  const keys = next(plain);
  if (!Array.isArray(keys)) throw new TorchCheckpointError(`${source}: the list of storage keys is missing`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, Uint8Array>();
  for (const key of keys) {
    const ref = refs.get(String(key));
    if (!ref) throw new TorchCheckpointError(`${source}: storage ${String(key)} is listed but no tensor uses it`);
    if (at + 8 > bytes.length) throw new TorchCheckpointError(`${source} is cut off before storage ${ref.key}`);
    const numel = Number(view.getBigInt64(at, true));
    const length = numel * ref.elementBytes;
    at += 8;
    if (numel < 0 || at + length > bytes.length) throw new TorchCheckpointError(`${source} is cut off inside storage ${ref.key}`);
    storages.set(ref.key, bytes.subarray(at, at + length));
    at += length;
  }
  return collectTensors(root, storages, source);
}
