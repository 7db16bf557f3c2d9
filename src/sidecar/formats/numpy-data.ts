// numpy arrays and dtypes as plain data, for the pickle reader: a dtype is a kind, an item size and a byte order; an
// array is a dtype, a shape and its raw bytes in C order. Only numeric and boolean dtypes exist here.

export type NumpyKind = 'b' | 'i' | 'u' | 'f';
export const NUMPY_ARRAY_ORDERS = ['C', 'F'] as const;
export type NumpyArrayOrder = (typeof NUMPY_ARRAY_ORDERS)[number];

const ITEM_SIZES: Record<NumpyKind, readonly number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8] };
/** Arrays larger than this are refused: DragBench masks are 512 × 512. */
export const MAX_ARRAY_ELEMENTS = 64 * 1024 * 1024;

/** Parses numpy's type string as its pickles write it ("u1", "<f8", "b1", "bool", "float32"). */
export function parseNumpyTypeString(text: string): { kind: NumpyKind; itemSize: number; littleEndian: boolean } {
  const named: Record<string, string> = {
    bool: 'b1', int8: 'i1', uint8: 'u1', int16: 'i2', uint16: 'u2', int32: 'i4', uint32: 'u4', int64: 'i8', uint64: 'u8',
    float16: 'f2', float32: 'f4', float64: 'f8',
  };
  const match = /^([<>|=]?)([a-z])(\d+)$/.exec(named[text] ?? text);
  const kind = match?.[2] as NumpyKind | undefined;
  const itemSize = Number(match?.[3]);
  if (!match || !kind || !(kind in ITEM_SIZES) || !ITEM_SIZES[kind].includes(itemSize)) {
    throw new Error(`uses the numpy dtype "${text}", which is not supported; expected booleans, integers or floats (b1, i1–i8, u1–u8, f2, f4, f8)`);
  }
  return { kind, itemSize, littleEndian: match[1] !== '>' };
}

export class NumpyDType {
  readonly kind: NumpyKind;
  readonly itemSize: number;
  littleEndian: boolean;

  constructor(parsed: { kind: NumpyKind; itemSize: number; littleEndian: boolean }) {
    this.kind = parsed.kind;
    this.itemSize = parsed.itemSize;
    this.littleEndian = parsed.littleEndian;
  }

  /** numpy's name: "uint8", "float32", "bool", ... */
  get name(): string {
    if (this.kind === 'b') return 'bool';
    return `${{ i: 'int', u: 'uint', f: 'float' }[this.kind]}${this.itemSize * 8}`;
  }

  /** Applies a pickled dtype state (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]). */
  applyState(state: readonly unknown[]): void {
    const [, byteOrder, subarray, names, fields] = state;
    if (typeof byteOrder !== 'string' || !['<', '>', '|', '='].includes(byteOrder)) throw new Error(`gives a numpy dtype the byte order ${JSON.stringify(byteOrder)}`);
    if (subarray != null || names != null || fields != null) throw new Error('uses a structured or sub-array numpy dtype, which is not supported');
    // "=" is the writer's native order; every platform numpy's pickles come from in practice is little-endian.
    this.littleEndian = byteOrder !== '>';
  }

  read(view: DataView, offset: number): number | bigint | boolean {
    const le = this.littleEndian;
    switch (`${this.kind}${this.itemSize}`) {
      case 'b1': return view.getUint8(offset) !== 0;
      case 'i1': return view.getInt8(offset);
      case 'u1': return view.getUint8(offset);
      case 'i2': return view.getInt16(offset, le);
      case 'u2': return view.getUint16(offset, le);
      case 'i4': return view.getInt32(offset, le);
      case 'u4': return view.getUint32(offset, le);
      case 'i8': return safeNumber(view.getBigInt64(offset, le));
      case 'u8': return safeNumber(view.getBigUint64(offset, le));
      case 'f2': return float16(view.getUint16(offset, le));
      case 'f4': return view.getFloat32(offset, le);
      default: return view.getFloat64(offset, le);
    }
  }

  /** A numpy scalar (`numpy.core.multiarray.scalar(dtype, bytes)`) as a JS value. */
  decodeScalar(raw: Uint8Array): number | bigint | boolean {
    if (raw.length !== this.itemSize) throw new Error(`gives a ${this.name} scalar ${raw.length} bytes instead of ${this.itemSize}`);
    return this.read(new DataView(raw.buffer, raw.byteOffset, raw.byteLength), 0);
  }
}

export class NumpyArray {
  private state: { dtype: NumpyDType; shape: readonly number[]; data: Uint8Array } | undefined;

  private constructor() {}

  /** The empty array `_reconstruct` returns, filled in by BUILD. */
  static pending(): NumpyArray {
    return new NumpyArray();
  }

  static fromBuffer(dtype: NumpyDType, shape: readonly number[], raw: Uint8Array, order: NumpyArrayOrder): NumpyArray {
    const array = new NumpyArray();
    array.fill(dtype, shape, raw, order);
    return array;
  }

  fill(dtype: NumpyDType, shape: readonly number[], raw: Uint8Array, order: NumpyArrayOrder): void {
    if (this.state) throw new Error('sets the state of a numpy array twice');
    const count = shape.reduce((a, b) => a * b, 1);
    if (count > MAX_ARRAY_ELEMENTS) throw new Error(`holds a numpy array of ${count} elements; at most ${MAX_ARRAY_ELEMENTS} are supported`);
    if (raw.length !== count * dtype.itemSize) {
      throw new Error(`holds a numpy ${dtype.name} array of shape (${shape.join(', ')}) with ${raw.length} bytes of data instead of ${count * dtype.itemSize}`);
    }
    const data = order === 'F' && shape.length > 1 ? fortranToC(raw, shape, dtype.itemSize) : raw;
    this.state = { dtype, shape: Object.freeze([...shape]), data };
  }

  private get filled(): { dtype: NumpyDType; shape: readonly number[]; data: Uint8Array } {
    if (!this.state) throw new Error('The numpy array in the pickle was never given its data (no BUILD after _reconstruct).');
    return this.state;
  }

  get dtype(): NumpyDType {
    return this.filled.dtype;
  }

  get shape(): readonly number[] {
    return this.filled.shape;
  }

  get size(): number {
    return this.filled.shape.reduce((a, b) => a * b, 1);
  }

  /** Raw bytes in C (row-major) order, in the dtype's byte order. */
  get data(): Uint8Array {
    return this.filled.data;
  }

  /** Every element in C order as a number (booleans as 0/1; 64-bit integers beyond 2^53 lose precision). */
  toNumbers(): Float64Array {
    const { dtype, data } = this.filled;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const out = new Float64Array(this.size);
    for (let i = 0; i < out.length; i++) out[i] = Number(dtype.read(view, i * dtype.itemSize));
    return out;
  }
}

/** Reorders column-major element bytes into row-major order. */
function fortranToC(raw: Uint8Array, shape: readonly number[], itemSize: number): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(raw.length);
  const index = new Array<number>(shape.length).fill(0);
  // Fortran strides: the first axis varies fastest.
  const fStride: number[] = [];
  let stride = 1;
  for (const dim of shape) {
    fStride.push(stride);
    stride *= dim;
  }
  for (let c = 0; c < count; c++) {
    let f = 0;
    for (let axis = 0; axis < shape.length; axis++) f += index[axis]! * fStride[axis]!;
    out.set(raw.subarray(f * itemSize, (f + 1) * itemSize), c * itemSize);
    for (let axis = shape.length - 1; axis >= 0; axis--) {
      if (++index[axis]! < shape[axis]!) break;
      index[axis] = 0;
    }
  }
  return out;
}

function safeNumber(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function float16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
