/**
 * The attributes of every IR op, by op type. `Graph.apply`, `defineOp` and each node's `attrs` are typed
 * from this map, so a misspelt or mistyped attribute fails to compile where the node is built, and an
 * op's shape inference, lowering and gradient read their attributes without casts. A new op adds its
 * entry here first.
 *
 * The attribute types are type aliases (not interfaces) so they stay assignable to `Attrs`, the generic
 * view the ONNX writer uses.
 */
import type { DType } from './dtype';

/** Attribute values of an IR node: plain data, typed for ONNX by each op's definition. */
export type AttrValue = number | string | boolean | readonly number[] | readonly string[];
/** Any op's attributes, seen without its type: what the ONNX writer iterates. */
export type Attrs = Readonly<Record<string, AttrValue | undefined>>;

/** An op without attributes: an empty object, and no attribute name fits. */
export type NoAttrs = { readonly [name: string]: never };

type Ints = readonly number[];
type Pair = readonly [number, number];
/** ONNX's int-coded boolean. */
type Flag = 0 | 1;

export type ConvAttrs = {
  readonly strides: Ints;
  /** [begin per spatial axis..., end per spatial axis...] */
  readonly pads: Ints;
  readonly dilations: Ints;
  readonly group: number;
};

export type ConvTransposeAttrs = ConvAttrs & { readonly output_padding: Ints };

export type PoolAttrs = {
  readonly kernel_shape: Pair;
  readonly strides: Pair;
  /** [top, left, bottom, right] */
  readonly pads: readonly [number, number, number, number];
};

/** Opset 18 reductions (the IR keeps the axes as an attribute; lowering makes them an input). */
export type ReduceAttrs = { readonly axes: Ints; readonly keepdims: Flag };
export type ArgReduceAttrs = { readonly axis: number; readonly keepdims: Flag };
type Axis = { readonly axis: number };
type TargetShape = { readonly shape: Ints };

export type OpAttrs = {
  // arithmetic and unary math
  Add: NoAttrs;
  Sub: NoAttrs;
  Mul: NoAttrs;
  Div: NoAttrs;
  Neg: NoAttrs;
  Pow: NoAttrs;
  Sqrt: NoAttrs;
  Exp: NoAttrs;
  Log: NoAttrs;
  Abs: NoAttrs;
  Reciprocal: NoAttrs;
  Sigmoid: NoAttrs;
  Tanh: NoAttrs;
  Erf: NoAttrs;
  Sin: NoAttrs;
  Cos: NoAttrs;
  Relu: NoAttrs;
  Sign: NoAttrs;
  // clamping and logic
  Max: NoAttrs;
  Min: NoAttrs;
  /** Either bound may be absent. */
  Clip: { readonly min?: number; readonly max?: number };
  Equal: NoAttrs;
  Less: NoAttrs;
  Greater: NoAttrs;
  LessOrEqual: NoAttrs;
  GreaterOrEqual: NoAttrs;
  Not: NoAttrs;
  Where: NoAttrs;
  // conversion
  Cast: { readonly to: DType };
  StopGradient: NoAttrs;
  // reductions
  ReduceSum: ReduceAttrs;
  ReduceMean: ReduceAttrs;
  ReduceMax: ReduceAttrs;
  ArgMax: ArgReduceAttrs;
  ArgMin: ArgReduceAttrs;
  // shape
  Reshape: TargetShape;
  Expand: TargetShape;
  Transpose: { readonly perm: Ints };
  /** Normalised by `slice()`: absolute, in range, one entry per sliced axis. */
  Slice: { readonly starts: Ints; readonly ends: Ints; readonly axes: Ints; readonly steps: Ints };
  Concat: Axis;
  Split: Axis & { readonly split: Ints };
  Gather: Axis;
  GatherElements: Axis;
  ScatterElements: Axis & { readonly reduction: 'add' | 'none' };
  /** ONNX's pad layout; `value` fills (default 0). */
  Pad: { readonly pads: Ints; readonly value?: number };
  Tile: { readonly repeats: Ints };
  // linear algebra and convolution
  MatMul: NoAttrs;
  Gemm: { readonly transA: Flag; readonly transB: Flag; readonly alpha?: number; readonly beta?: number };
  Conv: ConvAttrs;
  ConvTranspose: ConvTransposeAttrs;
  // normalisation
  Softmax: Axis;
  LayerNormalization: Axis & { readonly epsilon: number };
  InstanceNormalization: { readonly epsilon: number };
  // resampling
  /** Output [height, width]; batch and channels are kept. */
  Resize: { readonly sizes: Pair };
  AveragePool: PoolAttrs & { readonly count_include_pad: Flag };
  MaxPool: PoolAttrs;
};

export type OpType = keyof OpAttrs;

/**
 * The attribute argument of `Graph.apply` for op `K`: optional when every attribute is, required
 * otherwise. `NoInfer` keeps the op type coming from the op name alone, so the attributes are checked
 * against it rather than widening it.
 */
export type AttrsArg<K extends OpType> = [Record<string, never>] extends [OpAttrs[K]]
  ? [attrs?: NoInfer<OpAttrs[K]>]
  : [attrs: NoInfer<OpAttrs[K]>];
