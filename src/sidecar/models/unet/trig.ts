/**
 * sin and cos of a float32 tensor, built from arithmetic, Cast and polynomials.
 *
 * The engine's op library has no Sin/Cos; the UNet needs them only for the sinusoidal timestep embedding
 * (arguments up to ~1000 radians, no gradient). Arguments are reduced to [-π, π] with a two-part
 * constant for 2π (Cody–Waite: the high part has few mantissa bits, so `k · high` is exact for the
 * multiples we meet), then Taylor polynomials in r² give about 1e-7 absolute error.
 */
import type { Value } from '../../engine/graph';
import { add, cast, mul, sub } from '../../engine/ops';

const TWO_PI = 2 * Math.PI;
/** 2π rounded to 12 significant bits, so k·high is exact in float32 for |k| < 4096. */
const TWO_PI_HIGH = Math.round(TWO_PI * 2 ** 9) / 2 ** 9;
const TWO_PI_LOW = TWO_PI - TWO_PI_HIGH;

/** Rounds towards zero (Cast float → int truncates in ONNX runtimes), as float32 again. */
function trunc(x: Value): Value {
  return cast(cast(x, 'int64'), 'float32');
}

/** x − 2πk for k = trunc(x / 2π), in two exact-as-possible steps; result in (−2π, 2π). */
function subtractTurns(x: Value, turns: Value): Value {
  return sub(sub(x, mul(turns, TWO_PI_HIGH)), mul(turns, TWO_PI_LOW));
}

/** Reduces x to [−π, π] with the same sine and cosine. */
function reduceToPi(x: Value): Value {
  const r = subtractTurns(x, trunc(mul(x, 1 / TWO_PI)));
  // trunc(r / π) is −1, 0 or 1 here; subtracting that many turns lands in [−π, π].
  return subtractTurns(r, trunc(mul(r, 1 / Math.PI)));
}

/** c_0·s + c_1·s² + … by Horner's rule (no constant term), for s = r². */
function horner(s: Value, coefficients: readonly number[]): Value {
  let acc: Value | null = null;
  for (let i = coefficients.length - 1; i >= 0; i--) {
    acc = acc === null ? mul(s, coefficients[i]!) : mul(add(acc, coefficients[i]!), s);
  }
  return acc!;
}

function taylor(odd: boolean, terms: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < terms; n++) {
    const k = 2 * n + (odd ? 1 : 0);
    let factorial = 1;
    for (let i = 2; i <= k; i++) factorial *= i;
    out.push((n % 2 === 0 ? 1 : -1) / factorial);
  }
  return out;
}

// Terms up to r^19 (sin) and r^20 (cos): truncation error below 3e-8 on [−π, π].
const SIN = taylor(true, 10);
const COS = taylor(false, 11);

/** Polynomial c0 + c1 s + c2 s² + … with the constant term added last (keeps float32 rounding small). */
function series(s: Value, coefficients: readonly number[]): Value {
  const [c0, ...rest] = coefficients;
  return add(horner(s, rest), c0!);
}

export function sin(x: Value): Value {
  const r = reduceToPi(x);
  return mul(r, series(mul(r, r), SIN));
}

export function cos(x: Value): Value {
  const r = reduceToPi(x);
  return series(mul(r, r), COS);
}
