// A safe reader for Python pickles: a small stack machine over the opcodes that protocols 0–5 use for plain data
// (dicts, lists, tuples, str, bytes, int, float, bool, None), numpy arrays (DragBench's `meta_data.pkl`) and, when
// asked for, the tensor records of PyTorch checkpoints (`torch.save` files, see `torch-checkpoint.ts`).
// Nothing in the file is ever executed: GLOBAL / STACK_GLOBAL only resolve to an allow-list of constructors that
// this file models as data (array, dtype, scalar; tensor, storage type, OrderedDict), and anything else is refused
// with the name the file asked for.
import { NumpyArray, NumpyDType, NUMPY_ARRAY_ORDERS, parseNumpyTypeString, type NumpyArrayOrder } from './numpy-data';

export { NumpyArray, NumpyDType } from './numpy-data';

/** A global the file named that is on the allow-list, kept as data (it is never called). */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A PyTorch tensor as a checkpoint records it: a view (offset, size, stride in elements) of a storage. */
export class TorchTensorRecord {
  constructor(
    /** What the file's persistent id named, as `PickleReadOptions.persistentLoad` returned it. */
    readonly storage: PickleValue,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

export type PickleKey = string | number | bigint | boolean | null;
/** A tuple: a frozen array (lists are ordinary arrays). */
export type PickleTuple = readonly PickleValue[];
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | Map<PickleKey, PickleValue>
  | NumpyArray
  | NumpyDType
  | PickleGlobal
  | TorchTensorRecord;

/** True for a value that came from a Python tuple. */
export function isPickleTuple(value: PickleValue): value is PickleTuple {
  return Array.isArray(value) && Object.isFrozen(value);
}

/** A pickle that cannot be read: malformed, truncated, or asking for an object outside the supported subset. */
export class PickleError extends Error {
  override readonly name = 'PickleError';
  constructor(
    message: string,
    /** Byte offset of the opcode that failed. */
    readonly offset: number,
  ) {
    super(message);
  }
}

export interface PickleReadOptions {
  /** Name of the file for messages (default "the pickle"). */
  source?: string;
  /** Refuse integers encoded in more bytes than this (LONG1/LONG4); default 64. */
  maxLongBytes?: number;
  /**
   * Accept the globals of a PyTorch checkpoint (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, the
   * `torch.*Storage` types, `collections.OrderedDict`) as data. Default false.
   */
  torch?: boolean;
  /**
   * Resolves a persistent id (BINPERSID / PERSID: how `torch.save` names the storages it writes beside the pickle).
   * Without it, a file that uses persistent ids is refused.
   */
  persistentLoad?: (id: PickleValue) => PickleValue;
}

/** Kinds of constructor the reader models; the allow-list maps Python names onto them. */
type ModelledConstructor =
  | 'reconstruct'
  | 'ndarray'
  | 'dtype'
  | 'scalar'
  | 'frombuffer'
  | 'codecs-encode'
  | 'bytes'
  | 'ordered-dict'
  | 'rebuild-tensor'
  | 'rebuild-parameter'
  | 'storage-type';

/** The globals of `torch.save` files, accepted with `PickleReadOptions.torch`. */
const TORCH_GLOBALS: ReadonlyMap<string, ModelledConstructor> = new Map([
  ['collections.OrderedDict', 'ordered-dict'],
  ['torch._utils._rebuild_tensor_v2', 'rebuild-tensor'],
  ['torch._utils._rebuild_parameter', 'rebuild-parameter'],
  ...['Float', 'Half', 'BFloat16', 'Double', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map(
    (type) => [`torch.${type}Storage`, 'storage-type'] as const,
  ),
]);

const ALLOWED_GLOBALS: ReadonlyMap<string, ModelledConstructor> = new Map([
  // numpy 1.x names (what DragBench's files use) and numpy 2.x names.
  ['numpy.core.multiarray._reconstruct', 'reconstruct'],
  ['numpy._core.multiarray._reconstruct', 'reconstruct'],
  ['numpy.ndarray', 'ndarray'],
  ['numpy.dtype', 'dtype'],
  ['numpy.core.multiarray.scalar', 'scalar'],
  ['numpy._core.multiarray.scalar', 'scalar'],
  ['numpy.core.numeric._frombuffer', 'frombuffer'],
  ['numpy._core.numeric._frombuffer', 'frombuffer'],
  // Protocol 2 writes Python 3 bytes as _codecs.encode(text, "latin1").
  ['_codecs.encode', 'codecs-encode'],
  // ... and empty bytes as bytes(), bytearrays as bytearray(text, "latin-1").
  ['builtins.bytes', 'bytes'],
  ['builtins.bytearray', 'bytes'],
]);

/** Python 2 module names that Python 3's unpickler maps onto their Python 3 names (only those the allow-list needs). */
const PY2_MODULE_NAMES: ReadonlyMap<string, string> = new Map([['__builtin__', 'builtins']]);

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

/** Parses a whole pickle and returns the object it describes. Throws `PickleError` for anything outside the subset. */
export function readPickle(bytes: Uint8Array, options: PickleReadOptions = {}): PickleValue {
  // Like Python's pickle.load, whatever follows the STOP opcode is not read.
  return readPickleAt(bytes, 0, options).value;
}

/** Parses one pickle starting at `offset` of `bytes` (files such as legacy `torch.save` output hold several in a row). */
export function readPickleAt(bytes: Uint8Array, offset: number, options: PickleReadOptions = {}): { value: PickleValue; end: number } {
  const machine = new PickleMachine(bytes, options, offset);
  const value = machine.run();
  return { value, end: machine.position };
}

class PickleMachine {
  private readonly view: DataView;
  private readonly source: string;
  private readonly maxLongBytes: number;
  private readonly allowed: ReadonlyMap<string, ModelledConstructor>;
  private readonly persistentLoad: ((id: PickleValue) => PickleValue) | undefined;
  private pos = 0;
  private opStart = 0;
  private stack: StackItem[] = [];
  /** Stacks saved by MARK (the pickle module's "metastack"). */
  private readonly marks: StackItem[][] = [];
  private readonly memo = new Map<number, PickleValue>();

  constructor(
    private readonly bytes: Uint8Array,
    options: PickleReadOptions,
    start = 0,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.source = options.source ?? 'the pickle';
    this.maxLongBytes = options.maxLongBytes ?? 64;
    this.allowed = options.torch ? new Map([...ALLOWED_GLOBALS, ...TORCH_GLOBALS]) : ALLOWED_GLOBALS;
    this.persistentLoad = options.persistentLoad;
  }

  get position(): number {
    return this.pos;
  }

  run(): PickleValue {
    if (this.bytes.length === this.pos) throw new PickleError(`${this.source} is empty; expected a Python pickle.`, 0);
    for (;;) {
      this.opStart = this.pos;
      const op = this.byte();
      if (op === 0x2e /* . STOP */) {
        if (this.marks.length > 0) this.fail('ends inside an unclosed MARK');
        if (this.stack.length !== 1) this.fail(`ends with ${this.stack.length} values on the stack instead of 1`);
        return this.value(this.stack[0]!);
      }
      this.step(op);
    }
  }

  private step(op: number): void {
    switch (op) {
      // Framing and protocol.
      case 0x80: { // PROTO
        const version = this.byte();
        if (version > 5) this.fail(`uses pickle protocol ${version}; protocols 0 to 5 are supported`);
        return;
      }
      case 0x95: // FRAME: an 8-byte length that only matters for buffering.
        this.uint64();
        return;

      // Constants.
      case 0x4e: return this.push(null); // N NONE
      case 0x88: return this.push(true); // NEWTRUE
      case 0x89: return this.push(false); // NEWFALSE

      // Integers.
      case 0x4a: return this.push(this.take(4, (v, at) => v.getInt32(at, true))); // J BININT
      case 0x4b: return this.push(this.byte()); // K BININT1
      case 0x4d: return this.push(this.take(2, (v, at) => v.getUint16(at, true))); // M BININT2
      case 0x8a: return this.push(this.long(this.byte())); // LONG1
      case 0x8b: return this.push(this.long(this.take(4, (v, at) => v.getInt32(at, true)))); // LONG4
      case 0x49: return this.push(this.textInt(this.line())); // I INT (protocol 0; also "01"/"00" booleans)
      case 0x4c: return this.push(this.textInt(this.line().replace(/L$/, ''))); // L LONG (protocol 0)

      // Floats.
      case 0x47: return this.push(this.take(8, (v, at) => v.getFloat64(at, false))); // G BINFLOAT (big-endian)
      case 0x46: return this.push(this.textFloat(this.line())); // F FLOAT (protocol 0)

      // Text.
      case 0x8c: return this.push(this.utf8(this.byte())); // SHORT_BINUNICODE
      case 0x58: return this.push(this.utf8(this.length32())); // X BINUNICODE
      case 0x8d: return this.push(this.utf8(this.length64())); // BINUNICODE8
      case 0x56: return this.push(this.rawUnicodeEscape(this.line())); // V UNICODE (protocol 0)
      // Python 2 `str`: Python 3 reads it as text; numpy's raw data may come this way, as latin-1 characters.
      case 0x55: return this.push(this.latin1(this.byte())); // U SHORT_BINSTRING
      case 0x54: return this.push(this.latin1(this.length32())); // T BINSTRING

      // Bytes.
      case 0x43: return this.push(this.slice(this.byte())); // C SHORT_BINBYTES
      case 0x42: return this.push(this.slice(this.length32())); // B BINBYTES
      case 0x8e: return this.push(this.slice(this.length64())); // BINBYTES8
      case 0x96: return this.push(this.slice(this.length64())); // BYTEARRAY8

      // Containers.
      case 0x7d: return this.push(new Map()); // } EMPTY_DICT
      case 0x5d: return this.push([]); // ] EMPTY_LIST
      case 0x29: return this.push(Object.freeze([])); // ) EMPTY_TUPLE
      case 0x28: // ( MARK
        this.marks.push(this.stack);
        this.stack = [];
        return;
      case 0x74: return this.push(Object.freeze(this.popMark())); // t TUPLE
      case 0x85: return this.push(Object.freeze(this.popN(1))); // TUPLE1
      case 0x86: return this.push(Object.freeze(this.popN(2))); // TUPLE2
      case 0x87: return this.push(Object.freeze(this.popN(3))); // TUPLE3
      case 0x6c: return this.push(this.popMark()); // l LIST
      case 0x64: return this.push(this.dictFrom(this.popMark())); // d DICT
      case 0x61: { // a APPEND
        const item = this.popValue();
        this.list(this.top()).push(item);
        return;
      }
      case 0x65: { // e APPENDS
        const items = this.popMark();
        const list = this.list(this.top());
        for (const item of items) list.push(item); // not push(...items): a long list would overflow the call stack
        return;
      }
      case 0x73: { // s SETITEM
        const value = this.popValue();
        const key = this.popValue();
        this.setItem(this.dict(this.top()), key, value);
        return;
      }
      case 0x75: { // u SETITEMS
        const items = this.popMark();
        const dict = this.dict(this.top());
        for (let i = 0; i + 1 < items.length; i += 2) this.setItem(dict, items[i]!, items[i + 1]!);
        if (items.length % 2 !== 0) this.fail('has SETITEMS with a key but no value');
        return;
      }

      // Stack manipulation.
      case 0x30: // 0 POP
        if (this.stack.length > 0) this.stack.pop();
        else this.popMark();
        return;
      case 0x31: // 1 POP_MARK
        this.popMark();
        return;
      case 0x32: // 2 DUP
        return this.push(this.top());

      // Memo.
      case 0x94: return this.memoPut(this.memo.size); // MEMOIZE
      case 0x71: return this.memoPut(this.byte()); // q BINPUT
      case 0x72: return this.memoPut(this.take(4, (v, at) => v.getUint32(at, true))); // r LONG_BINPUT
      case 0x70: return this.memoPut(this.memoIndex(this.line())); // p PUT
      case 0x68: return this.push(this.memoGet(this.byte())); // h BINGET
      case 0x6a: return this.push(this.memoGet(this.take(4, (v, at) => v.getUint32(at, true)))); // j LONG_BINGET
      case 0x67: return this.push(this.memoGet(this.memoIndex(this.line()))); // g GET

      // Objects: only allow-listed globals, only modelled as data.
      case 0x63: { // c GLOBAL
        const module = this.line();
        const name = this.line();
        return this.push(this.resolveGlobal(module, name));
      }
      case 0x93: { // STACK_GLOBAL
        const name = this.popValue();
        const module = this.popValue();
        if (typeof module !== 'string' || typeof name !== 'string') this.fail('has STACK_GLOBAL without a module and a name');
        return this.push(this.resolveGlobal(module as string, name as string));
      }
      case 0x52: { // R REDUCE
        const args = this.popValue();
        const callable = this.popValue();
        return this.push(this.reduce(callable, args));
      }
      case 0x51: // Q BINPERSID
        if (!this.persistentLoad) return this.refuseOpcode(op);
        return this.push(this.persistent(this.popValue()));
      case 0x50: // P PERSID (protocol 0: the id is a line of text)
        if (!this.persistentLoad) return this.refuseOpcode(op);
        return this.push(this.persistent(this.line()));
      case 0x62: { // b BUILD
        const state = this.popValue();
        this.build(this.top(), state);
        return;
      }

      default:
        return this.refuseOpcode(op);
    }
  }

  // -- objects ------------------------------------------------------------------------------------------------------

  private resolveGlobal(module: string, name: string): PickleGlobal {
    const qualified = `${PY2_MODULE_NAMES.get(module) ?? module}.${name}`;
    if (!this.allowed.has(qualified)) {
      throw new PickleError(
        `Unsupported object ${qualified} in ${this.source} (at byte ${this.opStart}): CLIPDrag reads only plain data (dicts, lists, tuples, text, ` +
          `numbers, booleans, None) and ${this.allowed === ALLOWED_GLOBALS ? 'numpy arrays' : 'tensors'} from pickles and never runs code from them. ` +
          'Re-save the file with only such values.',
        this.opStart,
      );
    }
    return new PickleGlobal(PY2_MODULE_NAMES.get(module) ?? module, name);
  }

  private constructorOf(callable: PickleValue, what: string): ModelledConstructor {
    if (!(callable instanceof PickleGlobal)) this.fail(`${what} on a ${describe(callable)}, which is not callable data`);
    return this.allowed.get((callable as PickleGlobal).qualifiedName)!;
  }

  private reduce(callable: PickleValue, args: PickleValue): PickleValue {
    const kind = this.constructorOf(callable, 'calls REDUCE');
    const argv = this.tuple(args, `the arguments of ${(callable as PickleGlobal).qualifiedName}`);
    switch (kind) {
      case 'reconstruct': {
        // _reconstruct(ndarray, shape, typecode): an empty array that BUILD fills in.
        const [subtype] = argv;
        if (!(subtype instanceof PickleGlobal) || ALLOWED_GLOBALS.get(subtype.qualifiedName) !== 'ndarray') {
          this.fail(`reconstructs an array of type ${describe(subtype ?? null)}; only numpy.ndarray is supported`, 'unsupported');
        }
        return NumpyArray.pending();
      }
      case 'dtype': {
        const [typeString] = argv;
        if (typeof typeString !== 'string') this.fail(`creates a numpy dtype from ${describe(typeString ?? null)}; expected a type string such as "u1"`);
        return this.guard(() => new NumpyDType(parseNumpyTypeString(typeString as string)));
      }
      case 'scalar': {
        const [dtype, data] = argv;
        if (!(dtype instanceof NumpyDType)) this.fail('creates a numpy scalar without a dtype');
        const raw = this.rawBytes(data ?? null, 'a numpy scalar');
        return this.guard(() => (dtype as NumpyDType).decodeScalar(raw));
      }
      case 'frombuffer': {
        // _frombuffer(buffer, dtype, shape, order): protocol 5's array form.
        const [buffer, dtype, shape, order] = argv;
        if (!(dtype instanceof NumpyDType)) this.fail('creates a numpy array without a dtype');
        if (typeof order !== 'string' || !(NUMPY_ARRAY_ORDERS as readonly string[]).includes(order)) this.fail(`creates a numpy array in order ${describe(order ?? null)}; expected "C" or "F"`);
        const raw = this.rawBytes(buffer ?? null, 'a numpy array');
        return this.guard(() => NumpyArray.fromBuffer(dtype as NumpyDType, this.shape(shape ?? null), raw, order as NumpyArrayOrder));
      }
      case 'codecs-encode': {
        const [text, encoding] = argv;
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) this.fail('calls _codecs.encode with something other than (text, "latin1")', 'unsupported');
        return latin1Bytes(text as string, (message) => this.fail(message));
      }
      case 'bytes': {
        const [text, encoding] = argv;
        if (text === undefined) return new Uint8Array();
        if (text instanceof Uint8Array && encoding === undefined) return text.slice();
        if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) this.fail(`calls ${(callable as PickleGlobal).qualifiedName} with something other than bytes or (text, "latin-1")`, 'unsupported');
        return latin1Bytes(text as string, (message) => this.fail(message));
      }
      case 'ndarray':
        return this.fail('calls numpy.ndarray directly, which is not supported', 'unsupported');
      case 'ordered-dict':
        if (argv.length !== 0) this.fail('creates an OrderedDict from arguments; only the empty form torch.save writes is supported', 'unsupported');
        return new Map();
      case 'rebuild-tensor': {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        const [storage, offset, size, stride] = argv;
        if (storage === undefined) this.fail('rebuilds a tensor without a storage');
        return new TorchTensorRecord(storage!, this.count(offset ?? null, 'a tensor offset'), this.shape(size ?? null), this.shape(stride ?? null));
      }
      case 'rebuild-parameter': {
        // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its tensor here.
        const [data] = argv;
        if (!(data instanceof TorchTensorRecord)) this.fail(`rebuilds a parameter from a ${describe(data ?? null)}; expected a tensor`);
        return data!;
      }
      case 'storage-type':
        return this.fail(`calls ${(callable as PickleGlobal).qualifiedName}; storages are only named in persistent ids`, 'unsupported');
    }
  }

  private persistent(id: PickleValue): PickleValue {
    return this.guard(() => this.persistentLoad!(id));
  }

  private count(value: PickleValue, what: string): number {
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) this.fail(`gives ${what} as ${describe(value)}; expected a non-negative integer`);
    return n as number;
  }

  private build(target: PickleValue, state: PickleValue): void {
    if (target instanceof Map && this.allowed === ALLOWED_GLOBALS) {
      this.fail('sets the state of a dict (BUILD); only numpy arrays and dtypes can be built', 'unsupported');
    }
    if (target instanceof Map) {
      // An OrderedDict's instance attributes (a state_dict's `_metadata`): not part of the data.
      if (!(state instanceof Map) && state !== null) this.fail(`sets the state of an OrderedDict to a ${describe(state)}`, 'unsupported');
      return;
    }
    if (target instanceof NumpyDType) {
      const fields = this.tuple(state, 'the state of a numpy dtype');
      this.guard(() => target.applyState(fields));
      return;
    }
    if (target instanceof NumpyArray) {
      const fields = this.tuple(state, 'the state of a numpy array');
      // (version, shape, dtype, is_fortran, data); numpy also accepts the older form without the version.
      const [shape, dtype, fortran, data] = fields.length === 5 ? fields.slice(1) : fields;
      if (!(dtype instanceof NumpyDType)) this.fail('builds a numpy array without a dtype');
      if (typeof fortran !== 'boolean' && typeof fortran !== 'number') this.fail('builds a numpy array without its memory order flag');
      if (Array.isArray(data) && !isPickleTuple(data as PickleValue)) this.fail('holds a numpy array of Python objects; only arrays of numbers and booleans are supported', 'unsupported');
      const raw = this.rawBytes(data ?? null, 'a numpy array');
      this.guard(() => target.fill(dtype as NumpyDType, this.shape(shape ?? null), raw, fortran ? 'F' : 'C'));
      return;
    }
    this.fail(`sets the state of a ${describe(target)} (BUILD); only numpy arrays and dtypes can be built`, 'unsupported');
  }

  private rawBytes(value: PickleValue, what: string): Uint8Array {
    if (value instanceof Uint8Array) return value;
    if (typeof value === 'string') return latin1Bytes(value, (message) => this.fail(message)); // Python 2 str data
    return this.fail(`gives ${what} its data as a ${describe(value)}; expected bytes`);
  }

  private shape(value: PickleValue): number[] {
    const dims = this.tuple(value, 'the shape of a numpy array');
    return dims.map((dim) => {
      const n = typeof dim === 'bigint' ? Number(dim) : dim;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) this.fail(`gives a numpy array the dimension ${describe(dim)}; expected a non-negative integer`);
      return n as number;
    });
  }

  private guard<T>(make: () => T): T {
    try {
      return make();
    } catch (error) {
      if (error instanceof PickleError) throw error;
      return this.fail(error instanceof Error ? error.message : String(error));
    }
  }

  // -- stack, memo, containers ---------------------------------------------------------------------------------------

  private push(value: StackItem): void {
    this.stack.push(value);
  }

  private popValue(): PickleValue {
    if (this.stack.length === 0) this.fail('pops a value from an empty stack');
    return this.value(this.stack.pop()!);
  }

  private popN(n: number): PickleValue[] {
    if (this.stack.length < n) this.fail(`needs ${n} values but the stack holds ${this.stack.length}`);
    return this.stack.splice(this.stack.length - n, n).map((item) => this.value(item));
  }

  private popMark(): PickleValue[] {
    const items = this.stack.map((item) => this.value(item));
    const previous = this.marks.pop();
    if (!previous) this.fail('closes a MARK that was never opened');
    this.stack = previous!;
    return items;
  }

  private top(): PickleValue {
    if (this.stack.length === 0) this.fail('expects a value on the stack but finds none');
    return this.value(this.stack[this.stack.length - 1]!);
  }

  private value(item: StackItem): PickleValue {
    if (item === MARK) this.fail('uses a MARK as a value');
    return item as PickleValue;
  }

  private memoPut(index: number): void {
    this.memo.set(index, this.top());
  }

  private memoGet(index: number): PickleValue {
    if (!this.memo.has(index)) this.fail(`refers to memo entry ${index}, which was never stored`);
    return this.memo.get(index)!;
  }

  private memoIndex(line: string): number {
    const index = Number(line);
    if (!/^\d+$/.test(line) || !Number.isSafeInteger(index)) this.fail(`has a malformed memo index ${JSON.stringify(line)}`);
    return index;
  }

  private list(value: PickleValue): PickleValue[] {
    if (!Array.isArray(value) || isPickleTuple(value)) this.fail(`appends to a ${describe(value)}; expected a list`);
    return value as PickleValue[];
  }

  private dict(value: PickleValue): Map<PickleKey, PickleValue> {
    if (!(value instanceof Map)) this.fail(`sets an item on a ${describe(value)}; expected a dict`);
    return value as Map<PickleKey, PickleValue>;
  }

  private tuple(value: PickleValue, what: string): PickleTuple {
    if (!Array.isArray(value)) this.fail(`gives ${what} as a ${describe(value)}; expected a tuple`);
    return value as PickleTuple;
  }

  private dictFrom(items: PickleValue[]): Map<PickleKey, PickleValue> {
    if (items.length % 2 !== 0) this.fail('has DICT with a key but no value');
    const dict = new Map<PickleKey, PickleValue>();
    for (let i = 0; i < items.length; i += 2) this.setItem(dict, items[i]!, items[i + 1]!);
    return dict;
  }

  private setItem(dict: Map<PickleKey, PickleValue>, key: PickleValue, value: PickleValue): void {
    if (key !== null && typeof key === 'object') this.fail(`uses a ${describe(key)} as a dict key; only text, numbers, booleans and None are supported`, 'unsupported');
    dict.set(key as PickleKey, value);
  }

  // -- reading bytes -------------------------------------------------------------------------------------------------

  private byte(): number {
    if (this.pos >= this.bytes.length) this.fail('is cut off (it ends without a STOP opcode)');
    return this.bytes[this.pos++]!;
  }

  private take<T>(length: number, read: (view: DataView, at: number) => T): T {
    this.need(length);
    const value = read(this.view, this.pos);
    this.pos += length;
    return value;
  }

  private need(length: number): void {
    if (length > this.bytes.length - this.pos) {
      this.fail(`is cut off: an item needs ${length} bytes, but only ${this.bytes.length - this.pos} remain`);
    }
  }

  private length32(): number {
    const length = this.take(4, (v, at) => v.getUint32(at, true));
    this.need(length);
    return length;
  }

  private length64(): number {
    const length = this.take(8, (v, at) => v.getBigUint64(at, true));
    if (length > BigInt(this.bytes.length - this.pos)) this.fail(`is cut off: an item claims ${length} bytes, but only ${this.bytes.length - this.pos} remain`);
    return Number(length);
  }

  private uint64(): bigint {
    return this.take(8, (v, at) => v.getBigUint64(at, true));
  }

  private slice(length: number): Uint8Array {
    this.need(length);
    const out = this.bytes.slice(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  private utf8(length: number): string {
    const raw = this.slice(length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return this.fail('holds text that is not valid UTF-8');
    }
  }

  private latin1(length: number): string {
    return latin1Text(this.slice(length));
  }

  /** A newline-terminated ASCII argument (protocol 0 style opcodes and GLOBAL). */
  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('is cut off inside a text argument');
    const text = latin1Text(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  private long(length: number): number | bigint {
    if (length < 0) this.fail('has a negative integer length');
    if (length > this.maxLongBytes) this.fail(`holds an integer of ${length} bytes; at most ${this.maxLongBytes} are supported`);
    const raw = this.slice(length);
    if (raw.length === 0) return 0;
    let value = 0n;
    for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]!);
    if (raw[raw.length - 1]! & 0x80) value -= 1n << BigInt(8 * raw.length);
    return normaliseInt(value);
  }

  private textInt(text: string): number | bigint | boolean {
    if (text === '00') return false;
    if (text === '01') return true;
    if (!/^[+-]?\d+$/.test(text)) this.fail(`has a malformed integer ${JSON.stringify(text)}`);
    if (text.replace(/^[+-]/, '').length > this.maxLongBytes * 3) this.fail('holds an integer that is too long');
    return normaliseInt(BigInt(text));
  }

  private textFloat(text: string): number {
    if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
    if (/^[+-]?nan$/i.test(text)) return NaN;
    const value = Number(text);
    if (text.trim() === '' || Number.isNaN(value)) this.fail(`has a malformed float ${JSON.stringify(text)}`);
    return value;
  }

  /** Protocol 0 text: Python's "raw-unicode-escape" (only \uXXXX and \UXXXXXXXX are escapes). */
  private rawUnicodeEscape(text: string): string {
    return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, short: string | undefined, long: string | undefined) => {
      const code = parseInt(short ?? long!, 16);
      if (code > 0x10ffff) this.fail('holds an invalid character escape');
      return String.fromCodePoint(code);
    });
  }

  private refuseOpcode(op: number): never {
    const names: Record<number, string> = {
      0x69: 'INST (creates an instance of a class)',
      0x6f: 'OBJ (creates an instance of a class)',
      0x81: 'NEWOBJ (creates an instance of a class)',
      0x92: 'NEWOBJ_EX (creates an instance of a class)',
      0x50: 'PERSID (a persistent reference to an external object)',
      0x51: 'BINPERSID (a persistent reference to an external object)',
      0x82: 'EXT1 (a registered extension object)',
      0x83: 'EXT2 (a registered extension object)',
      0x84: 'EXT4 (a registered extension object)',
      0x97: 'NEXT_BUFFER (an out-of-band buffer)',
      0x98: 'READONLY_BUFFER (an out-of-band buffer)',
      0x8f: 'EMPTY_SET (a set)',
      0x90: 'ADDITEMS (a set)',
      0x91: 'FROZENSET (a frozen set)',
    };
    const name = names[op];
    if (name) this.fail(`uses the opcode ${name}, which is not supported: only plain data and numpy arrays are read`, 'unsupported');
    return this.fail(`has an unknown opcode 0x${op.toString(16).padStart(2, '0')}; it is not a Python pickle, or it is damaged`);
  }

  private fail(detail: string, kind: 'malformed' | 'unsupported' = 'malformed'): never {
    const lead = kind === 'unsupported' ? `Unsupported object in ${this.source}` : `Cannot read ${this.source}`;
    throw new PickleError(`${lead}: it ${detail} (at byte ${this.opStart}).`, this.opStart);
  }
}

function normaliseInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Bytes as latin-1 text, one character per byte (never spread into String.fromCharCode: megabytes overflow the stack). */
function latin1Text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function latin1Bytes(text: string, fail: (message: string) => never): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) fail('holds binary data as text with characters beyond latin-1');
    out[i] = code;
  }
  return out;
}

/** A short description of a value's Python type, for messages. */
export function describe(value: PickleValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'string') return 'str';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof Map) return 'dict';
  if (value instanceof NumpyArray) return 'numpy array';
  if (value instanceof NumpyDType) return 'numpy dtype';
  if (value instanceof PickleGlobal) return value.qualifiedName;
  if (value instanceof TorchTensorRecord) return 'tensor';
  return isPickleTuple(value) ? 'tuple' : 'list';
}
