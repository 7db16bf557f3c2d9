/**
 * Binds checkpoint tensors into engine graphs by their checkpoint key names, in place.
 *
 * A weight is referenced by file, byte offset and length (ONNX external data), so a multi-GB checkpoint
 * is never copied or read into memory to build a graph. Every weight enters the graph in the binder's
 * compute dtype (`dtype`): with float32, half-precision tensors are bound as float16 and cast to float32
 * right after (the engine makes each cast where its layer runs, so the weights stay float16 in memory: the
 * fp16-weights precision); with float16, F16 tensors are used as they are and F32 ones are cast down (the
 * pipeline avoids that Cast by binding a float16 copy of an fp32 checkpoint, see `half-precision-copy.ts`).
 *
 * Model code binds weights relative to the current module path:
 *
 *     const w = weights.scoped(graph);
 *     graph.scope('conv_in', () => conv2d(x, w('weight', [c, 4, 3, 3]), w('bias', [c])));
 *
 * resolves `conv_in.weight` and `conv_in.bias`. After a model is built, `assertAllBound(graph)` reports
 * checkpoint keys the model did not use, which catches a checkpoint of another architecture.
 */
import type { DType } from '../engine/dtype';
import type { Graph, Value } from '../engine/graph';
import { cast } from '../engine/ops';
import { formatShape, sameShape, type Shape } from '../engine/shape';
import { SafetensorsFile, withSafetensorsFile, type SafetensorsTensorInfo } from './checkpoint/safetensors';

export class CheckpointKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointKeyError';
  }
}

/** Binds a weight named relative to the graph's current module path; `shape` is checked when given. */
export type ScopedWeights = (name: string, shape?: Shape) => Value;

/** The dtypes a model can compute in. */
export type ComputeDType = 'float32' | 'float16';

/** Where a model's weights come from while it is built: a checkpoint, or a recorder of what is needed. */
export interface WeightBinder {
  /** The dtype every bound weight has in the graph, and so the dtype the model computes in. */
  readonly dtype: ComputeDType;
  scoped(graph: Graph): ScopedWeights;
  /** Throws when the model built into `graph` left weights of this source unused. */
  assertAllBound(graph: Graph): void;
}

interface StoredTensor {
  readonly file: string;
  readonly info: SafetensorsTensorInfo;
}

/** Checkpoint dtypes that can be bound, with the graph dtype they are stored as. */
const GRAPH_DTYPE: Partial<Record<SafetensorsTensorInfo['dtype'], DType>> = {
  F32: 'float32',
  F16: 'float16',
  F64: 'float64',
};

export class CheckpointWeights implements WeightBinder {
  private readonly bound = new WeakMap<Graph, Map<string, Value>>();

  private constructor(
    /** The safetensors files, in the order given (a sharded checkpoint has several). */
    readonly files: readonly string[],
    private readonly tensors: ReadonlyMap<string, StoredTensor>,
    readonly dtype: ComputeDType,
  ) {}

  /**
   * Reads the headers of one or more safetensors files (no tensor data is read). `dtype` is the compute
   * dtype weights are bound in (default float32).
   */
  static async open(files: string | readonly string[], options: { readonly dtype?: ComputeDType } = {}): Promise<CheckpointWeights> {
    const list = typeof files === 'string' ? [files] : [...files];
    const tensors = new Map<string, StoredTensor>();
    for (const file of list) {
      const opened = await SafetensorsFile.open(file);
      try {
        for (const info of opened.tensors()) {
          const earlier = tensors.get(info.name);
          if (earlier) throw new CheckpointKeyError(`tensor ${info.name} is in both ${earlier.file} and ${file}`);
          tensors.set(info.name, { file, info });
        }
      } finally {
        await opened.close();
      }
    }
    return new CheckpointWeights(list, tensors, options.dtype ?? 'float32');
  }

  /**
   * One component of a single-file checkpoint: `mapping` names each weight (diffusers name → the file's tensor and
   * the shape it is read as; the bytes are the same). Tensors of the file that are not mapped are not this model's.
   */
  static async openMapped(file: string, mapping: ReadonlyMap<string, { readonly source: string; readonly shape: readonly number[] }>, options: { readonly dtype?: ComputeDType } = {}): Promise<CheckpointWeights> {
    const tensors = new Map<string, StoredTensor>();
    await withSafetensorsFile(file, async (opened) => {
      for (const [name, { source, shape }] of mapping) tensors.set(name, { file, info: { ...opened.info(source), name, shape } });
    });
    return new CheckpointWeights([file], tensors, options.dtype ?? 'float32');
  }

  /** The same checkpoint, binding its weights in another compute dtype. */
  withDtype(dtype: ComputeDType): CheckpointWeights {
    return dtype === this.dtype ? this : new CheckpointWeights(this.files, this.tensors, dtype);
  }

  /** A readable name for error messages: the file, or the first file and how many more. */
  get source(): string {
    return this.files.length === 1 ? this.files[0]! : `${this.files[0]} (+${this.files.length - 1} more files)`;
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(key: string): boolean {
    return this.tensors.has(key);
  }

  info(key: string): SafetensorsTensorInfo {
    return this.stored(key).info;
  }

  /**
   * Binds the tensor `key` into `graph` in the compute dtype (once per graph; later calls return the same value).
   * Throws naming the file and key when the key is missing or its shape is not `shape`.
   */
  bind(graph: Graph, key: string, shape?: Shape): Value {
    let perGraph = this.bound.get(graph);
    if (!perGraph) this.bound.set(graph, (perGraph = new Map()));
    const { file, info } = this.stored(key);
    if (shape && !sameShape(shape, info.shape)) {
      throw new CheckpointKeyError(
        `${file}: tensor ${key} has shape ${formatShape(info.shape)}, the model config expects ${formatShape(shape)}`,
      );
    }
    const known = perGraph.get(key);
    if (known) return known;
    const dtype = GRAPH_DTYPE[info.dtype];
    if (!dtype) {
      throw new CheckpointKeyError(`${file}: tensor ${key} is ${info.dtype}; only F32, F16 and F64 weights can be used`);
    }
    const stored = graph.weight(key, dtype, info.shape, { kind: 'external', file, offset: info.byteOffset, length: info.byteLength });
    const value = cast(stored, this.dtype);
    perGraph.set(key, value);
    return value;
  }

  /** A binder that resolves names under the graph's current module path (see the module comment). */
  scoped(graph: Graph): ScopedWeights {
    return (name, shape) => {
      const prefix = graph.currentScope;
      return this.bind(graph, prefix ? `${prefix}.${name}` : name, shape);
    };
  }

  /** Keys of the checkpoint that were not bound into `graph`. */
  unboundKeys(graph: Graph): string[] {
    const perGraph = this.bound.get(graph);
    return this.keys().filter((k) => !perGraph?.has(k));
  }

  /** Throws naming the unexpected keys when the model built into `graph` left checkpoint tensors unused. */
  assertAllBound(graph: Graph, ignore: (key: string) => boolean = () => false): void {
    const unexpected = this.unboundKeys(graph).filter((k) => !ignore(k));
    if (unexpected.length === 0) return;
    const shown = unexpected.slice(0, 8).join(', ');
    const more = unexpected.length > 8 ? ` and ${unexpected.length - 8} more` : '';
    throw new CheckpointKeyError(
      `${this.source}: ${unexpected.length} tensor(s) are not used by the model built from its config: ${shown}${more} ` +
        '(is the checkpoint from a different architecture or config?)',
    );
  }

  private stored(key: string): StoredTensor {
    const found = this.tensors.get(key);
    if (found) return found;
    throw new CheckpointKeyError(`${this.source}: tensor ${key} is missing${this.nearbyKeys(key)}`);
  }

  /** Keys that share the missing key's module path, to make a naming mismatch obvious. */
  private nearbyKeys(key: string): string {
    const parts = key.split('.');
    for (let keep = parts.length - 1; keep > 0; keep--) {
      const prefix = `${parts.slice(0, keep).join('.')}.`;
      const near = this.keys().filter((k) => k.startsWith(prefix));
      if (near.length > 0) {
        const shown = near.slice(0, 6).join(', ');
        return ` (the checkpoint has ${shown}${near.length > 6 ? `, … ${near.length - 6} more` : ''})`;
      }
    }
    return ` (the checkpoint has ${this.tensors.size} tensors, none under ${parts[0]}.)`;
  }
}

/** A weight a model asked for: its key and shape. */
export interface WeightSpec {
  readonly key: string;
  readonly shape: Shape;
}

/**
 * Binds every weight as a graph input and records its key and shape, in the order the model asks.
 * Building a model with it lists the parameters a config implies (e.g. to generate a random-weight
 * checkpoint) without any file.
 */
export class RecordingWeights implements WeightBinder {
  readonly specs: WeightSpec[] = [];
  private readonly bound = new WeakMap<Graph, Map<string, Value>>();

  /** `dtype`: the dtype of the weight inputs (and so of the model's computation). */
  constructor(readonly dtype: ComputeDType = 'float32') {}

  scoped(graph: Graph): ScopedWeights {
    return (name, shape) => {
      const prefix = graph.currentScope;
      const key = prefix ? `${prefix}.${name}` : name;
      if (!shape) throw new Error(`weight ${key}: a recording binder needs the expected shape`);
      let perGraph = this.bound.get(graph);
      if (!perGraph) this.bound.set(graph, (perGraph = new Map()));
      const known = perGraph.get(key);
      if (known) {
        if (!sameShape(known.shape, shape)) {
          throw new Error(`weight ${key} is asked for as ${formatShape(shape)} and as ${formatShape(known.shape)}`);
        }
        return known;
      }
      const value = graph.input(key, this.dtype, shape);
      perGraph.set(key, value);
      this.specs.push({ key, shape: [...shape] });
      return value;
    };
  }

  assertAllBound(): void {
    // Every recorded weight was asked for by the model: nothing can be unused.
  }
}
