/**
 * Adam in the form torch.optim.Adam applies it to the latent (no weight decay,
 * not AMSGrad):
 *   m = β1·m + (1−β1)·g,  v = β2·v + (1−β2)·g²
 *   z −= lr/(1−β1ᵏ) · m / (√v/√(1−β2ᵏ) + ε)
 * Pure: each step returns a new parameter and a new state.
 */

const f32 = Math.fround;

export interface AdamOptions {
  readonly lr: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
}

export interface AdamState {
  /** First moment (exp_avg). */
  readonly m: Float32Array;
  /** Second moment (exp_avg_sq). */
  readonly v: Float32Array;
  /** Steps taken so far (k before the next step is k+1). */
  readonly step: number;
}

export function initialAdamState(size: number): AdamState {
  return { m: new Float32Array(size), v: new Float32Array(size), step: 0 };
}

export function adamStep(
  param: Float32Array,
  grad: Float32Array,
  state: AdamState,
  options: AdamOptions,
): { param: Float32Array; state: AdamState } {
  const n = param.length;
  if (grad.length !== n || state.m.length !== n || state.v.length !== n) {
    throw new RangeError(`Adam: parameter has ${n} values, gradient ${grad.length}, moments ${state.m.length}/${state.v.length}`);
  }
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const eps = options.eps ?? 1e-8;
  const step = state.step + 1;
  // Scalars are Python floats (float64) in the reference; tensor ops round to float32.
  const stepSize = options.lr / (1 - beta1 ** step);
  const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
  const b1 = f32(beta1);
  const b2 = f32(beta2);
  const oneMinusB1 = f32(1 - beta1);
  const oneMinusB2 = f32(1 - beta2);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = grad[i]!;
    m[i] = f32(f32(state.m[i]! * b1) + f32(g * oneMinusB1));
    v[i] = f32(f32(state.v[i]! * b2) + f32(f32(g * g) * oneMinusB2));
    const denom = f32(f32(f32(Math.sqrt(v[i]!)) / f32(correction2Sqrt)) + f32(eps));
    out[i] = f32(param[i]! - f32(f32(stepSize) * f32(m[i]! / denom)));
  }
  return { param: out, state: { m, v, step } };
}
