/**
 * Writes an engine graph as an ONNX model (standard domain only).
 *
 * Only the nodes the graph's outputs depend on are written. Weights that live in checkpoint files are
 * written as external-data initializers that point into those files (offset + length), so a model of
 * several GB serialises to a few hundred KB and loads its weights in place.
 *
 * Values computed from weights alone (with constants) — the Cast of a weight stored in a narrower dtype than the
 * graph computes in, the flipped kernel of a convolution's input gradient — could be computed at any time, and
 * onnxruntime computes them all before the first layer: their copies of the weights then sit in memory together
 * for the whole run. Each is written instead just before the first node that reads it together with an
 * activation, and made to wait for that activation: such a copy exists only while its layer runs. (The backward
 * pass reads casts of its own, autodiff.ts, so the forward's are gone by the time it runs. Nodes of constants
 * alone are placed the same way, with nothing to wait for: onnxruntime folds them.)
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { BYTES_PER_ELEMENT, ONNX_DTYPE, type DType, type TypedArray } from '../dtype';
import { GraphBuildError, toTypedArray, weightAndConstantNodes, type Attrs, type Graph, type Node, type Value, type WeightSource } from '../graph';
import { getOp, type OnnxAttr, type OnnxLowering } from '../op';
import { onnx } from './onnx-proto';

/** The opset every engine graph targets (LayerNormalization 17, GroupNormalization 18, axes as inputs). */
export const OPSET = 18;
const IR_VERSION = 8;

export interface SerializeOptions {
  readonly producerVersion?: string;
}

/**
 * A checkpoint file the model reads weights from. onnxruntime only accepts external data that lies in
 * the model's own folder (no absolute paths, no `..`, no symlinks out), so the model names each file by
 * a plain `location`; whoever loads the model makes `location` resolve to `file` (a hard link next to the
 * model file, or the file's bytes handed over in memory).
 */
export interface ExternalFile {
  readonly file: string;
  readonly location: string;
}

export interface SerializedModel {
  readonly bytes: Uint8Array;
  /** sha256 of the model bytes and the external files' paths: names the graph and where its weights come from. */
  readonly hash: string;
  /** Checkpoint files whose bytes the model references as external data. */
  readonly externalFiles: readonly ExternalFile[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export function serializeGraph(graph: Graph, options: SerializeOptions = {}): SerializedModel {
  if (graph.outputs.length === 0) throw new GraphBuildError(`graph ${graph.name} has no outputs`);
  const writer = new OnnxWriter(graph, options);
  return writer.write();
}

/** Nodes that the outputs depend on, in graph (topological) order. */
export function liveNodes(graph: Graph): Node[] {
  const live = new Set<number>();
  const stack: Value[] = graph.outputs.map((o) => o.value);
  while (stack.length > 0) {
    const value = stack.pop()!;
    const node = value.producer;
    if (!node || live.has(node.id)) continue;
    live.add(node.id);
    stack.push(...node.inputs);
  }
  return graph.nodes.filter((n) => live.has(n.id));
}

/** Smaller weights are not worth a tie (norm scales, biases: a few KB each, a few MB in all). */
export const TIED_WEIGHT_MIN_BYTES = 64 * 2 ** 10;

class OnnxWriter {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly names = new Map<number, string>();
  private readonly constantCache = new Map<string, string>();
  private readonly externalFiles = new Map<string, string>();
  private tempCounter = 0;

  constructor(
    private readonly graph: Graph,
    private readonly options: SerializeOptions,
  ) {}

  write(): SerializedModel {
    const graph = this.graph;
    // Graph outputs produced by a node take the output's name directly; other cases need an Identity.
    const outputAliases = new Map<number, string>();
    for (const { name, value } of graph.outputs) {
      if (value.kind === 'node' && !outputAliases.has(value.id)) outputAliases.set(value.id, name);
    }
    const derived = weightAndConstantNodes(graph);
    const pending = new Set<Node>();
    for (const node of liveNodes(graph)) {
      for (const out of node.outputs) this.names.set(out.id, outputAliases.get(out.id) ?? out.name);
      if (derived.has(node)) {
        pending.add(node);
        continue;
      }
      const reads = node.inputs.filter((v) => v.producer !== null && pending.has(v.producer));
      if (reads.length > 0) {
        const anchor = node.inputs.find((v) => v.kind === 'input' || (v.kind === 'node' && !derived.has(v.producer!)));
        this.lowerWeightDerived(reads, anchor, pending);
      }
      this.lowerNode(node);
    }
    // Weight-derived values that only graph outputs read.
    this.lowerWeightDerived([...pending].flatMap((n) => n.outputs), undefined, pending);
    for (const { name, value } of graph.outputs) {
      const produced = this.nameOf(value);
      if (produced !== name) this.nodes.push({ opType: 'Identity', input: [produced], output: [name], name: `output/${name}` });
    }

    const model: onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'clipdrag-engine',
      producerVersion: this.options.producerVersion ?? '',
      graph: {
        name: graph.name,
        node: this.nodes,
        initializer: this.initializers,
        input: graph.inputs.map((v) => valueInfo(v.name, v.dtype, v.shape)),
        output: graph.outputs.map((o) => valueInfo(o.name, o.value.dtype, o.value.shape)),
      },
    };
    const bytes = onnx.ModelProto.encode(model).finish();
    const externalFiles = [...this.externalFiles].map(([file, location]) => ({ file, location }));
    const hash = createHash('sha256').update(bytes);
    for (const { file } of externalFiles) hash.update(`\0${file}`);
    return {
      bytes,
      hash: hash.digest('hex'),
      externalFiles,
      inputNames: graph.inputs.map((v) => v.name),
      outputNames: graph.outputs.map((o) => o.name),
    };
  }

  private nameOf(value: Value): string {
    const known = this.names.get(value.id);
    if (known) return known;
    // Inputs, constants and weights get their names on first use, so unused ones are not written.
    if (value.kind === 'constant') this.initializers.push(inlineTensor(value.name, value.dtype, value.shape, value.payload as TypedArray));
    else if (value.kind === 'weight') this.initializers.push(this.weightTensor(value));
    else if (value.kind !== 'input') throw new GraphBuildError(`${value.name} is used before the node that produces it`);
    this.names.set(value.id, value.name);
    return value.name;
  }

  private lowerNode(node: Node): void {
    const def = getOp(node.op);
    const inputs = node.inputs.map((v) => this.nameOf(v));
    const outputs = node.outputs.map((v) => this.names.get(v.id)!);
    if (def.lower) {
      def.lower(node, this.loweringFor(node, inputs, outputs));
      return;
    }
    const attrs: OnnxAttr[] = [];
    const given: Attrs = node.attrs;
    for (const [name, type] of Object.entries(def.onnxAttrs ?? {})) {
      const value = given[name];
      if (value === undefined || type === undefined) continue;
      attrs.push({ name, type, value: typeof value === 'boolean' ? Number(value) : (value as OnnxAttr['value']) });
    }
    this.emit(node.name, node.op, inputs, outputs, attrs);
  }

  /**
   * Writes the pending weight-derived nodes that `values` come from, in graph order. The first node that computes
   * from a weight (or from a Reshape of one, which copies nothing and may run whenever) reads it through a Reshape to
   * its own shape whose shape input waits for `anchor`: an integer zero from a comparison that is false for any
   * value, NaN included; onnxruntime's Reshape copies nothing either. Such a tie never feeds a Reshape directly:
   * onnxruntime's fusion of consecutive Reshapes fails on one whose shape is computed. Values under
   * TIED_WEIGHT_MIN_BYTES, and every value when there is no anchor, are read as they are.
   */
  private lowerWeightDerived(values: readonly Value[], anchor: Value | undefined, pending: Set<Node>): void {
    const closure = new Set<Node>();
    const collect = (v: Value) => {
      const producer = v.producer;
      if (!producer || !pending.has(producer) || closure.has(producer)) return;
      closure.add(producer);
      producer.inputs.forEach(collect);
    };
    values.forEach(collect);
    const roots = new Set<Value>();
    const original = new Map<Value, string>();
    let zero: string | undefined;
    for (const node of [...closure].sort((a, b) => a.id - b.id)) {
      pending.delete(node);
      const isRoot = (v: Value) => v.kind === 'weight' || roots.has(v);
      if (node.op === 'Reshape' && isRoot(node.inputs[0]!)) {
        this.lowerNode(node);
        roots.add(node.outputs[0]!);
        continue;
      }
      for (const v of node.inputs) {
        if (!anchor || !isRoot(v) || original.has(v) || v.rank === 0 || v.size * BYTES_PER_ELEMENT[v.dtype] < TIED_WEIGHT_MIN_BYTES) continue;
        zero ??= this.zeroAfter(anchor);
        const name = this.nameOf(v);
        const at = `${name}/after_${this.tempCounter++}`;
        this.emit(`${at}/Shape`, 'Add', [this.constant([...v.shape], 'int64', [v.rank]), zero], [`${at}/shape`], []);
        this.emit(`${at}/Tied`, 'Reshape', [name, `${at}/shape`], [`${at}/tied`], []);
        original.set(v, name);
        this.names.set(v.id, `${at}/tied`);
      }
      this.lowerNode(node);
    }
    for (const [v, name] of original) this.names.set(v.id, name);
  }

  /** An int64 [1] zero that can only be computed once `anchor` is. */
  private zeroAfter(anchor: Value): string {
    const at = (hint: string) => `${this.nameOf(anchor)}/zero_${hint}_${this.tempCounter++}`;
    const flat = at('flat');
    this.emit(flat, 'Reshape', [this.nameOf(anchor), this.constant([-1], 'int64', [1])], [flat], []);
    const first = at('first');
    this.emit(first, 'Slice', [flat, this.constant([0], 'int64', [1]), this.constant([1], 'int64', [1])], [first], []);
    const float = at('float');
    this.emit(float, 'Cast', [first], [float], [{ name: 'to', type: 'int', value: ONNX_DTYPE.float32 }]);
    const never = at('never');
    this.emit(never, 'Less', [float, float], [never], []);
    const zero = at('zero');
    this.emit(zero, 'Cast', [never], [zero], [{ name: 'to', type: 'int', value: ONNX_DTYPE.int64 }]);
    return zero;
  }

  private loweringFor(node: Node, inputs: string[], outputs: string[]): OnnxLowering {
    let part = 0;
    return {
      inputs,
      outputs,
      constant: (values, dtype, shape) => this.constant(values, dtype, shape ?? [values.length]),
      temp: (hint) => `${node.name}/${hint}_${this.tempCounter++}`,
      emit: (opType, ins, outs, attrs = []) => this.emit(`${node.name}/${opType}_${part++}`, opType, ins, outs, attrs),
    };
  }

  private emit(name: string, opType: string, input: readonly string[], output: readonly string[], attrs: readonly OnnxAttr[]): void {
    this.nodes.push({ name, opType, input: [...input], output: [...output], attribute: attrs.map(attributeProto) });
  }

  private constant(values: readonly number[], dtype: DType, shape: readonly number[]): string {
    const key = `${dtype}|${shape.join(',')}|${values.join(',')}`;
    const cached = this.constantCache.get(key);
    if (cached) return cached;
    const name = `const/${dtype}_${this.constantCache.size}`;
    this.initializers.push(inlineTensor(name, dtype, shape, toTypedArray(values, dtype)));
    this.constantCache.set(key, name);
    return name;
  }

  private weightTensor(value: Value): onnx.ITensorProto {
    const source = value.payload as WeightSource;
    if (source.kind === 'data') return inlineTensor(value.name, value.dtype, value.shape, source.data);
    let location = this.externalFiles.get(source.file);
    if (location === undefined) {
      location = `weights${this.externalFiles.size}-${path.basename(source.file)}`;
      this.externalFiles.set(source.file, location);
    }
    return {
      name: value.name,
      dataType: ONNX_DTYPE[value.dtype],
      dims: [...value.shape],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: location },
        { key: 'offset', value: String(source.offset) },
        { key: 'length', value: String(source.length) },
      ],
    };
  }
}

function inlineTensor(name: string, dtype: DType, shape: readonly number[], data: TypedArray): onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length * BYTES_PER_ELEMENT[dtype]);
  return { name, dataType: ONNX_DTYPE[dtype], dims: [...shape], rawData: bytes };
}

function valueInfo(name: string, dtype: DType, shape: readonly number[]): onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ONNX_DTYPE[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  };
}

function attributeProto(attr: OnnxAttr): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (attr.type) {
    case 'int':
      return { name: attr.name, type: AttributeType.INT, i: attr.value as number };
    case 'float':
      return { name: attr.name, type: AttributeType.FLOAT, f: attr.value as number };
    case 'ints':
      return { name: attr.name, type: AttributeType.INTS, ints: [...(attr.value as readonly number[])] };
    case 'floats':
      return { name: attr.name, type: AttributeType.FLOATS, floats: [...(attr.value as readonly number[])] };
    case 'string':
      return { name: attr.name, type: AttributeType.STRING, s: new TextEncoder().encode(attr.value as string) };
  }
}
