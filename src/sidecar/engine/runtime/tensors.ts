/**
 * Checks feeds against a session's inputs and turns them into onnxruntime tensors. onnxruntime's own
 * messages for a bad feed do not say which graph or what was expected in full; these do.
 */
import * as ort from 'onnxruntime-node';
import type { TypedArray } from '../dtype';
import type { Feeds, Outputs, TensorInfo } from './types';

/** The typed array class that carries each element type across the JS boundary. */
type ArrayClass = abstract new (...args: never[]) => TypedArray;
const ARRAY_OF: Readonly<Record<string, ArrayClass>> = {
  float32: Float32Array,
  float16: Uint16Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  uint8: Uint8Array,
};

export class FeedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FeedError';
  }
}

function describe(info: TensorInfo): string {
  return `${info.dtype}[${info.shape.join(', ')}]`;
}

function staticSize(info: TensorInfo, graph: string): number {
  let size = 1;
  for (const d of info.shape) {
    if (typeof d !== 'number') throw new FeedError(`${graph}: input ${info.name} has a symbolic dimension "${d}"; the engine runs static shapes only`);
    size *= d;
  }
  return size;
}

/** Validates every feed (names, element types, sizes) and wraps them as tensors of the input shapes. */
export function toInputTensors(feeds: Feeds, inputs: readonly TensorInfo[], graph: string): Record<string, ort.Tensor> {
  const expected = new Set(inputs.map((i) => i.name));
  const unknown = Object.keys(feeds).filter((name) => !expected.has(name));
  const missing = inputs.filter((i) => feeds[i.name] === undefined).map((i) => i.name);
  if (missing.length > 0 || unknown.length > 0) {
    const parts = [
      missing.length > 0 ? `missing feed(s) ${missing.join(', ')}` : '',
      unknown.length > 0 ? `unknown feed(s) ${unknown.join(', ')}` : '',
    ].filter(Boolean);
    const signature = inputs.map((i) => `${i.name}: ${describe(i)}`).join(', ');
    throw new FeedError(`${graph}: ${parts.join('; ')}. The graph's inputs are ${signature || 'none'}.`);
  }
  const tensors: Record<string, ort.Tensor> = {};
  for (const info of inputs) {
    const data = feeds[info.name]!;
    const arrayType = ARRAY_OF[info.dtype];
    if (!arrayType) throw new FeedError(`${graph}: input ${info.name} has element type ${info.dtype}, which the engine does not feed`);
    if (!(data instanceof arrayType)) {
      throw new FeedError(`${graph}: input ${info.name} is ${describe(info)} and needs a ${arrayType.name}, got a ${data.constructor.name}`);
    }
    const size = staticSize(info, graph);
    if (data.length !== size) {
      throw new FeedError(`${graph}: input ${info.name} is ${describe(info)} (${size} elements), got ${data.length} elements`);
    }
    tensors[info.name] = new ort.Tensor(info.dtype as ort.Tensor.Type, data as never, info.shape as number[]);
  }
  return tensors;
}

/** Checks requested output names; undefined means all outputs. */
export function checkOutputNames(requested: readonly string[] | undefined, outputs: readonly TensorInfo[], graph: string): string[] {
  const names = outputs.map((o) => o.name);
  if (requested === undefined) return names;
  const unknown = requested.filter((name) => !names.includes(name));
  if (unknown.length > 0) throw new FeedError(`${graph}: no output named ${unknown.join(', ')}. Its outputs are ${names.join(', ')}.`);
  if (requested.length === 0) throw new FeedError(`${graph}: asked for no outputs`);
  return [...requested];
}

export function fromOutputTensors(results: Record<string, ort.OnnxValue>, names: readonly string[]): Outputs {
  const outputs: Outputs = {};
  for (const name of names) outputs[name] = (results[name] as ort.Tensor).data as TypedArray;
  return outputs;
}

/**
 * The buffers to transfer when posting typed arrays to another thread. An array that is only a window
 * on a larger buffer is copied first, so transferring never detaches memory that something else uses.
 */
export function transferable(arrays: Record<string, TypedArray>): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const [name, array] of Object.entries(arrays)) {
    const owned = array.byteOffset === 0 && array.byteLength === array.buffer.byteLength && array.buffer instanceof ArrayBuffer;
    const whole = owned ? array : (array.slice() as TypedArray);
    arrays[name] = whole;
    if (!buffers.includes(whole.buffer as ArrayBuffer)) buffers.push(whole.buffer as ArrayBuffer);
  }
  return buffers;
}
