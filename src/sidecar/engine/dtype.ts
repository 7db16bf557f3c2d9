/** Element types the engine's graphs carry, and their ONNX encodings. */

export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'bool' | 'uint8';

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
};

/** The typed array that holds each dtype's data in JS (float16 travels as raw bits). */
export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
  uint8: Uint8Array;
}
export type TypedArray = TypedArrayOf[DType];

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'float64';
}
