/**
 * The engine's graph IR: a typed, statically shaped dataflow graph whose nodes are ONNX operators.
 *
 * Graphs are built eagerly: every op call infers its output dtypes and shapes at once, so a mistake in
 * model code fails where it is written, with the node's module path and the shapes involved. Nodes are
 * kept in creation order, which is a topological order; the ONNX writer emits only what the graph's
 * outputs need, so building extra nodes (e.g. a backward pass that is not asked for) costs nothing.
 */
import { BYTES_PER_ELEMENT, type DType, type TypedArray } from './dtype';
import { formatShape, numel, type Shape } from './shape';
import { getOp } from './op';
import { float32ToFloat16Bits } from './float16';
import type { AttrsArg, OpAttrs, OpType } from './op-attrs';

export type { AttrValue, Attrs, OpAttrs, OpType } from './op-attrs';

export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/**
 * Where a weight's bytes live. `external` points into an existing file (e.g. a safetensors checkpoint) by
 * byte offset and length, so multi-GB checkpoints are referenced in place, never copied.
 */
export type WeightSource =
  | { readonly kind: 'external'; readonly file: string; readonly offset: number; readonly length: number }
  | { readonly kind: 'data'; readonly data: TypedArray };

export type ValueKind = 'input' | 'constant' | 'weight' | 'node';

export class Value implements TensorType {
  /** @internal use Graph methods to create values. */
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: ValueKind,
    readonly producer: Node | null,
    /** Constant data for `constant` values; the source for `weight` values. */
    readonly payload: TypedArray | WeightSource | null = null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  get size(): number {
    return numel(this.shape);
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

/**
 * A weight as the model computes with it when its checkpoint stores it in another dtype: the Cast of a weight (a
 * float16 checkpoint in a float32 graph). Its full-width copy is made where it is read, not held from one reader
 * to the next (autodiff.ts for the backward pass, onnx/serialize.ts for the schedule).
 */
export function isWeightCast(value: Value): boolean {
  const producer = value.producer;
  return producer !== null && producer.op === 'Cast' && producer.inputs[0]!.kind === 'weight';
}

/**
 * The nodes computed from weights and constants alone (no graph input or activation upstream). onnxruntime folds
 * those of constants; those of weights it could run at any time, so the serializer places them (onnx/serialize.ts)
 * and `graphMemory` counts them as weights, not as kept activations.
 */
export function weightAndConstantNodes(graph: Graph): Set<Node> {
  const nodes = new Set<Node>();
  const fixed = (v: Value) => v.kind === 'weight' || v.kind === 'constant' || (v.producer !== null && nodes.has(v.producer));
  for (const node of graph.nodes) if (node.inputs.length > 0 && node.inputs.every(fixed)) nodes.add(node);
  return nodes;
}

/** A node of op `K`, its attributes typed by `OpAttrs`. */
export interface OpNode<K extends OpType> {
  readonly id: number;
  /** Unique, readable name: `<module path>/<Op>_<n>`. */
  readonly name: string;
  readonly op: K;
  /** Module path the node was created in, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`. */
  readonly scope: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attrs: OpAttrs[K];
}

/**
 * A node of any of the ops `K` (all ops by default): a union discriminated by `op`, so testing
 * `node.op === 'Transpose'` types `node.attrs` as Transpose's.
 */
export type Node<K extends OpType = OpType> = K extends OpType ? OpNode<K> : never;

/** A build-time error that names the node, its module path and the shapes involved. */
export class GraphBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphBuildError';
  }
}

export interface GraphOutput {
  readonly name: string;
  readonly value: Value;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: GraphOutput[] = [];
  readonly weights: Value[] = [];
  private readonly scopes: string[] = [];
  private readonly usedNames = new Set<string>();
  private nextId = 0;
  private readonly opCounters = new Map<string, number>();

  constructor(readonly name = 'graph') {}

  /** The current module path (dot-separated), as set by `scope()`. */
  get currentScope(): string {
    return this.scopes.join('.');
  }

  /** Runs `build` with `name` appended to the module path, so nodes created inside carry it. */
  scope<T>(name: string | number, build: () => T): T {
    this.scopes.push(String(name));
    try {
      return build();
    } finally {
      this.scopes.pop();
    }
  }

  /**
   * Runs `build` with the module path replaced by `path` (dot-separated), so nodes created inside carry
   * it; the reverse pass uses this to file backward nodes under the forward node's module path.
   */
  atScope<T>(path: string, build: () => T): T {
    const saved = this.scopes.splice(0, this.scopes.length);
    if (path) this.scopes.push(path);
    try {
      return build();
    } finally {
      this.scopes.splice(0, this.scopes.length, ...saved);
    }
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const value = this.newValue(this.claimName(name), dtype, shape, 'input', null);
    this.inputs.push(value);
    return value;
  }

  /** A constant tensor embedded in the graph. `data` is converted to the dtype's typed array. */
  constant(data: TypedArray | readonly number[], shape: Shape, dtype: DType = 'float32'): Value {
    const array = toTypedArray(data, dtype);
    if (array.length !== numel(shape)) {
      throw new GraphBuildError(
        `constant in ${this.currentScope || '<root>'}: ${array.length} values do not fill shape ${formatShape(shape)}`,
      );
    }
    return this.newValue(this.claimName(this.autoName('const')), dtype, [...shape], 'constant', null, array);
  }

  /** A scalar constant (rank 0) of the given dtype. */
  scalar(value: number, dtype: DType = 'float32'): Value {
    return this.constant([value], [], dtype);
  }

  /** A named weight (ONNX initializer). The name is the checkpoint key, e.g. `conv_in.weight`. */
  weight(name: string, dtype: DType, shape: Shape, source: WeightSource): Value {
    if (source.kind === 'external' && source.length !== numel(shape) * BYTES_PER_ELEMENT[dtype]) {
      throw new GraphBuildError(
        `weight ${name}: ${source.length} bytes in ${source.file} do not hold ${dtype}${formatShape(shape)}`,
      );
    }
    if (source.kind === 'data' && source.data.length !== numel(shape)) {
      throw new GraphBuildError(`weight ${name}: ${source.data.length} values do not fill ${formatShape(shape)}`);
    }
    const value = this.newValue(this.claimName(name), dtype, [...shape], 'weight', null, source);
    this.weights.push(value);
    return value;
  }

  output(name: string, value: Value): Value {
    this.assertOwned(value, `output ${name}`);
    if (this.outputs.some((o) => o.name === name)) throw new GraphBuildError(`graph output ${name} is defined twice`);
    this.outputs.push({ name, value });
    return value;
  }

  /**
   * Adds a node of a registered op, inferring its outputs. Model code calls the typed op functions in
   * `ops/`, which call this.
   */
  apply<K extends OpType>(op: K, inputs: readonly Value[], ...[attrs]: AttrsArg<K>): Value[] {
    const def = getOp(op);
    // AttrsArg lets the attributes be left out only where every one of them is optional.
    const given = (attrs ?? {}) as OpAttrs[K];
    const name = this.autoName(op);
    inputs.forEach((v, i) => this.assertOwned(v, `input ${i} of ${name}`));
    let types: TensorType[];
    try {
      types = def.infer(inputs, given);
    } catch (error) {
      const shapes = inputs.map((v) => `${v.dtype}${formatShape(v.shape)}`).join(', ');
      const reason = error instanceof Error ? error.message : String(error);
      throw new GraphBuildError(`${name}: ${reason} (inputs: ${shapes || 'none'})`);
    }
    const outputs: Value[] = [];
    // An OpNode<K> is the union member of Node for K; TypeScript cannot see that for a generic K.
    const node = { id: this.nextId++, name, op, scope: this.currentScope, inputs: [...inputs], outputs, attrs: given } as OpNode<K> as Node;
    types.forEach((t, i) => {
      outputs.push(this.newValue(types.length === 1 ? name : `${name}:${i}`, t.dtype, [...t.shape], 'node', node));
    });
    this.nodes.push(node);
    return outputs;
  }

  /** Convenience for single-output ops. */
  apply1<K extends OpType>(op: K, inputs: readonly Value[], ...attrs: AttrsArg<K>): Value {
    const [out] = this.apply(op, inputs, ...attrs);
    if (!out) throw new GraphBuildError(`${op} produced no output`);
    return out;
  }

  private newValue(
    name: string,
    dtype: DType,
    shape: Shape,
    kind: ValueKind,
    producer: Node | null,
    payload: TypedArray | WeightSource | null = null,
  ): Value {
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new GraphBuildError(`${name}: shape ${formatShape(shape)} is not a static non-negative shape`);
    }
    return new Value(this, this.nextId++, name, dtype, shape, kind, producer, payload);
  }

  private autoName(op: string): string {
    const scope = this.currentScope;
    const key = `${scope}/${op}`;
    const n = this.opCounters.get(key) ?? 0;
    this.opCounters.set(key, n + 1);
    return scope ? `${scope}/${op}_${n}` : `${op}_${n}`;
  }

  private claimName(name: string): string {
    if (this.usedNames.has(name)) throw new GraphBuildError(`the name ${name} is used twice in graph ${this.name}`);
    this.usedNames.add(name);
    return name;
  }

  private assertOwned(value: Value, what: string): void {
    if (value.graph !== this) throw new GraphBuildError(`${what}: ${value.name} belongs to another graph`);
  }
}

/**
 * `data` as the typed array of `dtype`. Numbers (and a Float32Array given for a float16 constant) are
 * converted; float16 is rounded to nearest even and stored as its bit patterns.
 */
export function toTypedArray(data: TypedArray | readonly number[], dtype: DType): TypedArray {
  if (dtype === 'float16' && (Array.isArray(data) || data instanceof Float32Array || data instanceof Float64Array)) {
    return float32ToFloat16Bits(Float32Array.from(data as ArrayLike<number>));
  }
  if (!Array.isArray(data)) return data as TypedArray;
  const values = data as readonly number[];
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
    case 'float16':
      throw new GraphBuildError('unreachable: float16 numbers are converted above');
  }
}
