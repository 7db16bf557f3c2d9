/**
 * Op definitions: what every IR operator must say about itself — how to infer its outputs, how it is
 * written as ONNX, and (optionally) how to pull a cotangent back through it.
 *
 * IR ops are ONNX operators (same names and semantics) except that parameters ONNX takes as constant
 * input tensors (Reshape's shape, Slice's starts, ReduceSum's axes, ...) are plain attributes here:
 * shapes are static, so they are known at build time and shape inference stays simple. Lowering turns
 * them back into int64 initializers.
 */
import type { DType } from './dtype';
import type { Node, TensorType, Value } from './graph';
import type { OpAttrs, OpType } from './op-attrs';

export type OnnxAttrType = 'int' | 'float' | 'ints' | 'floats' | 'string';

export interface OnnxAttr {
  readonly name: string;
  readonly type: OnnxAttrType;
  readonly value: number | string | readonly number[];
}

/** What a custom lowering may do while writing one IR node as ONNX nodes. */
export interface OnnxLowering {
  /** ONNX names of the IR node's inputs and outputs, in order. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Adds (or reuses) a constant initializer and returns its name. */
  constant(values: readonly number[], dtype: DType, shape?: readonly number[]): string;
  /** A fresh name for an intermediate value of this lowering. */
  temp(hint: string): string;
  emit(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: readonly OnnxAttr[]): void;
}

/**
 * Pulls cotangents back through one node. `cotangents[i]` is the gradient flowing into output i (null
 * when no gradient reaches that output); `needs[j]` says whether input j needs a gradient. Returns one
 * entry per input: its gradient (same dtype and shape as the input), or null when it is not needed or
 * is identically zero. Rules build their graph with the same op functions as model code.
 */
export type VjpRule<K extends OpType = OpType> = (node: Node<K>, cotangents: readonly (Value | null)[], needs: readonly boolean[]) => (Value | null)[];

/** The attribute names of the ops `K` (of all ops by default). */
export type AttrName<K extends OpType = OpType> = K extends OpType ? keyof OpAttrs[K] & string : never;

export interface OpDef<K extends OpType = OpType> {
  readonly type: K;
  /** Output types from input types and attributes; throws a plain Error with the reason on misuse. */
  infer(inputs: readonly TensorType[], attrs: OpAttrs[K]): TensorType[];
  /**
   * ONNX attributes for the default lowering (one ONNX node, same op type and inputs). An IR attribute
   * not listed here is not written.
   */
  readonly onnxAttrs?: Readonly<Partial<Record<AttrName<K>, OnnxAttrType>>>;
  /** Custom lowering, for ops whose IR attributes are ONNX input tensors or that expand to several nodes. */
  lower?(node: Node<K>, onnx: OnnxLowering): void;
  /** Reverse-mode rule; an op without one is not differentiable, and `vjp` refuses to pass through it. */
  readonly vjp?: VjpRule<K>;
  /**
   * Inputs that never carry a gradient by design (Gather's indices, Where's condition, StopGradient's
   * operand): the output is treated as constant in them, so paths through them are not gradient paths.
   */
  readonly noGradInputs?: readonly number[];
}

/** Definitions by op type; each entry is the OpDef of its own key (defineOp stores it so). */
const registry = new Map<OpType, unknown>();

export function defineOp<K extends OpType>(def: OpDef<K>): OpDef<K> {
  if (registry.has(def.type)) throw new Error(`op ${def.type} is defined twice`);
  registry.set(def.type, def);
  return def;
}

export function getOp<K extends OpType>(type: K): OpDef<K> {
  const def = registry.get(type);
  if (!def) throw new Error(`unknown op ${type}: it is not defined in the engine's op library`);
  return def as OpDef<K>;
}

export function registeredOps(): string[] {
  return [...registry.keys()].sort();
}
