/**
 * Conversions between IEEE half precision (F16), bfloat16 (BF16) and float32.
 * Half values travel as their raw 16-bit patterns (Uint16Array), the way they
 * are stored in checkpoints.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Decodes F16 bit patterns to float32 values. */
export function float16BitsToFloat32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  if (out.length !== bits.length) throw new RangeError(`output holds ${out.length} values, input has ${bits.length}`);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = (h & 0x8000) << 16;
    const exponent = h & 0x7c00;
    const mantissa = h & 0x03ff;
    if (exponent === 0x7c00) {
      outBits[i] = sign | 0x7f800000 | (mantissa << 13); // Inf / NaN keep their payload
    } else if (exponent !== 0) {
      outBits[i] = sign | ((exponent + 0x1c000) << 13) | (mantissa << 13); // rebias 15 -> 127
    } else {
      out[i] = (sign ? -mantissa : mantissa) * 2 ** -24; // zero and subnormals are exact in float32
    }
  }
  return out;
}

/** Rounds one float32 value to the nearest F16 bit pattern (ties to even). */
export function float32ToFloat16Bit(value: number): number {
  scratchF32[0] = value;
  const b = scratchU32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exponent = (b >>> 23) & 0xff;
  const mantissa = b & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    // Subnormal half: express the value in units of 2^-24 and round the dropped bits.
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const kept = full >>> shift;
    const dropped = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const roundUp = dropped > halfway || (dropped === halfway && (kept & 1) === 1);
    return sign | (kept + (roundUp ? 1 : 0));
  }
  let half = sign | (halfExponent << 10) | (mantissa >>> 13);
  const dropped = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half++;
  return half;
}

/** Rounds float32 values to F16 bit patterns (ties to even). */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bit(values[i]!);
  return out;
}

/** Decodes BF16 bit patterns (the upper half of a float32) to float32 values. */
export function bfloat16BitsToFloat32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  if (out.length !== bits.length) throw new RangeError(`output holds ${out.length} values, input has ${bits.length}`);
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i]! << 16;
  return out;
}

/** Rounds float32 values to BF16 bit patterns (ties to even; NaN stays NaN). */
export function float32ToBfloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const inBits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const b = inBits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
      out[i] = (b >>> 16) | 0x40; // quiet NaN; plain truncation could turn it into Inf
    } else {
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}
