/**
 * Turns a serialised model's checkpoint initializers into graph inputs.
 *
 * onnxruntime gives every session its own copy of its initializers (and, on the CPU, a second pre-packed copy
 * per kernel that reads them), and onnxruntime-node cannot share them between sessions. As inputs, the weights
 * are fed at run time from one copy the engine holds (runtime/shared-weights.ts), however many sessions read
 * them. Inline constants stay initializers: they are small and onnxruntime folds them.
 */
import { createHash } from 'node:crypto';
import { ONNX_DTYPE, type DType } from '../dtype';
import { onnx } from './onnx-proto';
import type { SerializedModel } from './serialize';

/** One checkpoint tensor a model takes as an input. */
export interface WeightInput {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The checkpoint file and the byte range of the tensor in it. */
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export interface WeightInputModel {
  /** The model without checkpoint initializers (and without external files). */
  readonly model: SerializedModel;
  readonly weightInputs: readonly WeightInput[];
}

/** protobufjs decodes int64 fields as Long objects where the `long` package is present. */
function toNumber(value: number | { toString(): string }): number {
  return typeof value === 'number' ? value : Number(value.toString());
}

const DTYPE_OF_CODE = new Map<number, DType>(Object.entries(ONNX_DTYPE).map(([dtype, code]) => [code, dtype as DType]));

export function externalWeightsAsInputs(serialized: SerializedModel): WeightInputModel {
  const fileOf = new Map(serialized.externalFiles.map(({ file, location }) => [location, file]));
  const model = onnx.ModelProto.decode(serialized.bytes);
  const graph = model.graph!;
  const kept: onnx.ITensorProto[] = [];
  const weightInputs: WeightInput[] = [];
  for (const tensor of graph.initializer ?? []) {
    if (tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) {
      kept.push(tensor);
      continue;
    }
    const entry = (key: string) => tensor.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location');
    const file = location === undefined ? undefined : fileOf.get(location);
    const dtype = DTYPE_OF_CODE.get(tensor.dataType ?? 0);
    if (file === undefined || dtype === undefined) {
      throw new Error(`initializer ${tensor.name} has external data the engine did not write (location ${location}, type ${tensor.dataType})`);
    }
    weightInputs.push({
      name: tensor.name!,
      dtype,
      shape: (tensor.dims ?? []).map(toNumber),
      file,
      offset: Number(entry('offset') ?? 0),
      length: Number(entry('length')),
    });
  }
  graph.initializer = kept;
  graph.input = [
    ...(graph.input ?? []),
    ...weightInputs.map((w) => ({
      name: w.name,
      type: { tensorType: { elemType: ONNX_DTYPE[w.dtype], shape: { dim: w.shape.map((d) => ({ dimValue: d })) } } },
    })),
  ];
  const bytes = onnx.ModelProto.encode(model).finish();
  // The files stay part of the identity: the same graph over another checkpoint is another model.
  const hash = createHash('sha256').update(bytes);
  for (const { file } of serialized.externalFiles) hash.update(`\0${file}`);
  return {
    model: { ...serialized, bytes, hash: hash.digest('hex'), externalFiles: [] },
    weightInputs,
  };
}
