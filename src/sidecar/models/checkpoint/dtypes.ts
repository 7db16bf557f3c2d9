/**
 * The element types a safetensors file can declare, with their sizes and the
 * order in which the reference writer lays tensors out.
 */

export const SAFETENSORS_DTYPES = [
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
] as const;

export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const ELEMENT_SIZE: Record<SafetensorsDtype, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
};

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && (SAFETENSORS_DTYPES as readonly string[]).includes(value);
}

export function dtypeByteSize(dtype: SafetensorsDtype): number {
  return ELEMENT_SIZE[dtype];
}

/**
 * Rank used to order tensors in a written file: the reference writer sorts by
 * dtype in descending declaration order (which groups by element size, largest
 * first, so every tensor stays aligned to its element size), then by name.
 */
export function dtypeLayoutRank(dtype: SafetensorsDtype): number {
  return SAFETENSORS_DTYPES.indexOf(dtype);
}
