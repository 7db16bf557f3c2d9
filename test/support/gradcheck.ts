/**
 * Checks reverse-mode gradients against central finite differences along random directions.
 *
 * For a graph y = f(x₁, …, xₖ) and a fixed random cotangent u, the scalar φ(x) = ⟨u, f(x)⟩ has
 * directional derivative Σᵢ ⟨∇ᵢ, dᵢ⟩ along direction d, where ∇ᵢ = vjp(u) w.r.t. xᵢ. The check
 * compares that with (φ(x + h·d) − φ(x − h·d)) / 2h, once per input alone and once for all together.
 *
 * Tolerance, from the step and the values:
 *  - truncation: the central difference D(h) = φ' + h²/6·φ''' + O(h⁴), so D(2h) − D(h) ≈ h²/2·φ''',
 *    and the truncation error of D(h) is estimated from the data as |D(2h) − D(h)|/3 (allowed twice);
 *  - rounding: every output entry yₖ is off by a few units of roundoff ε relative to its size, and
 *    these errors are independent across entries, so φ is off by about c·ε·R with
 *    R = sqrt(Σ (uₖ·yₖ)²) and c = 8; the difference quotient turns two such errors into c·ε·R/h;
 *  - the analytic side itself is rounded: c·ε·Σ|∇ᵢ·dᵢ|.
 * float64 uses h = 1e-5 (rounding ≈ 1e-10·R); float32 uses h = 1e-2, where rounding (≈ 5e-5·R)
 * and truncation balance. A wrong rule is off by a sizeable fraction of the derivative, far above both.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { vjp, type VjpOptions } from '../../src/sidecar/engine/autodiff';
import type { TypedArray } from '../../src/sidecar/engine/dtype';
import { Graph, type Value } from '../../src/sidecar/engine/graph';
import { serializeGraph } from '../../src/sidecar/engine/onnx/serialize';
import { rng } from './reference';

export type FloatDType = 'float32' | 'float64';

export interface GradInput {
  readonly shape: readonly number[];
  /** Fixed values; by default uniform in [lo, hi). */
  readonly data?: ArrayLike<number>;
  readonly lo?: number;
  readonly hi?: number;
}

export interface GradCheckCase {
  readonly inputs: Record<string, GradInput>;
  readonly build: (x: Record<string, Value>, g: Graph) => Value;
  readonly dtype: FloatDType;
  /** Inputs to differentiate w.r.t. (default: all). */
  readonly wrt?: readonly string[];
  readonly seed?: number;
  readonly options?: VjpOptions;
  /** Extra slack on the tolerance (e.g. for deep composite graphs). */
  readonly slack?: number;
}

export interface GradCheckReport {
  readonly checks: { readonly direction: string; readonly analytic: number; readonly numeric: number; readonly tolerance: number }[];
}

const EPS = { float32: 2 ** -24, float64: 2 ** -53 } as const;
const STEP = { float32: 1e-2, float64: 1e-5 } as const;
const ROUNDING_DEPTH = 8;

export async function gradcheck(c: GradCheckCase): Promise<GradCheckReport> {
  const next = rng(c.seed ?? 1);
  const uniform = (n: number, lo = -1, hi = 1) => Float64Array.from({ length: n }, () => lo + (hi - lo) * next());
  const names = Object.keys(c.inputs);
  const wrtNames = c.wrt ?? names;
  const base: Record<string, Float64Array> = {};
  for (const name of names) {
    const spec = c.inputs[name]!;
    const n = spec.shape.reduce((a, b) => a * b, 1);
    base[name] = spec.data ? Float64Array.from(spec.data) : uniform(n, spec.lo, spec.hi);
  }

  // Parameters are graph inputs here so one session can be evaluated at shifted values.
  const g = new Graph('gradcheck');
  const x: Record<string, Value> = {};
  for (const name of names) x[name] = g.input(name, c.dtype, c.inputs[name]!.shape);
  const y = c.build(x, g);
  const u = g.input('cotangent', c.dtype, y.shape);
  const grads = vjp(g, [{ value: y, cotangent: u }], wrtNames.map((n) => x[n]!), c.options);
  g.output('y', y);
  grads.forEach((gr, i) => g.output(`grad_${wrtNames[i]}`, gr ?? zerosLike(g, x[wrtNames[i]!]!)));
  const cotangent = uniform(y.size);

  const session = await createSession(g);
  try {
    const run = async (values: Record<string, Float64Array>) => {
      const feeds: Record<string, ort.Tensor> = { cotangent: tensor(c.dtype, cotangent, y.shape) };
      for (const name of names) feeds[name] = tensor(c.dtype, values[name]!, c.inputs[name]!.shape);
      const out = await session.run(feeds);
      return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Array.from(t.data as TypedArray as Float64Array)]));
    };
    const at = await run(base);
    const phi = (ys: number[]) => ys.reduce((s, v, k) => s + v * cotangent[k]!, 0);
    const spread = Math.sqrt(at.y!.reduce((s, v, k) => s + (v * cotangent[k]!) ** 2, 0));

    const directions: [string, readonly string[]][] = [...wrtNames.map((n) => [n, [n]] as [string, string[]])];
    if (wrtNames.length > 1) directions.push(['all inputs', wrtNames]);
    const h = STEP[c.dtype];
    const report: GradCheckReport = { checks: [] };
    for (const [label, moved] of directions) {
      const d: Record<string, Float64Array> = {};
      for (const n of moved) d[n] = uniform(base[n]!.length);
      const shifted = (step: number) => Object.fromEntries(names.map((n) => [n, d[n] ? base[n]!.map((v, k) => v + step * d[n]![k]!) : base[n]!]));
      const difference = async (step: number) => (phi((await run(shifted(step))).y!) - phi((await run(shifted(-step))).y!)) / (2 * step);
      const numeric = await difference(h);
      const truncation = (2 * Math.abs((await difference(2 * h)) - numeric)) / 3;
      let analytic = 0;
      let analyticMagnitude = 0;
      for (const n of moved) {
        const gr = at[`grad_${n}`]!;
        gr.forEach((v, k) => {
          analytic += v * d[n]![k]!;
          analyticMagnitude += Math.abs(v * d[n]![k]!);
        });
      }
      const eps = EPS[c.dtype];
      const tolerance = (c.slack ?? 1) * (truncation + (ROUNDING_DEPTH * eps * spread) / h + ROUNDING_DEPTH * eps * analyticMagnitude);
      report.checks.push({ direction: label, analytic, numeric, tolerance });
      assert.ok(
        Math.abs(analytic - numeric) <= tolerance,
        `gradient along ${label}: vjp gives ${analytic}, finite differences ${numeric} (|diff| ${Math.abs(analytic - numeric).toExponential(2)} > tolerance ${tolerance.toExponential(2)})`,
      );
    }
    // A gradient that is identically zero would pass any test on a function that ignores its input.
    assert.ok(
      report.checks.some((ch) => Math.abs(ch.analytic) > 10 * ch.tolerance),
      `every directional derivative is within tolerance of zero: the check cannot tell a right gradient from a missing one`,
    );
    return report;
  } finally {
    await session.release();
  }
}

function zerosLike(g: Graph, v: Value): Value {
  return g.scope('zeros', () => g.constant(new Array<number>(v.size).fill(0), v.shape, v.dtype));
}

function tensor(dtype: FloatDType, data: Float64Array, shape: readonly number[]): ort.Tensor {
  return new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(data) : Float32Array.from(data), [...shape]);
}

async function createSession(g: Graph): Promise<ort.InferenceSession> {
  const model = serializeGraph(g);
  return ort.InferenceSession.create(model.bytes, {
    externalData: model.externalFiles.map(({ file, location }) => ({ path: location, data: fs.readFileSync(file) })),
  });
}
