/**
 * Tiny, slow, obviously-correct JS implementations of the engine's ops over float64 arrays, written
 * from the definitions (PyTorch/ONNX docs), for checking what onnxruntime computes from our graphs.
 */

export interface Ref {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function ref(shape: readonly number[], data: ArrayLike<number>): Ref {
  if (data.length !== numel(shape)) throw new Error(`ref: ${data.length} values for shape [${shape}]`);
  return { shape: [...shape], data: Float64Array.from(data) };
}

/** Builds a tensor by evaluating `f` at every multi-index (row-major). */
export function fromFn(shape: readonly number[], f: (idx: number[]) => number): Ref {
  const n = numel(shape);
  const data = new Float64Array(n);
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    data[k] = f(idx);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { shape: [...shape], data };
}

export function get(t: Ref, idx: readonly number[]): number {
  const s = strides(t.shape);
  let k = 0;
  for (let i = 0; i < idx.length; i++) k += idx[i]! * s[i]!;
  return t.data[k]!;
}

/** Value of a broadcast operand at an output index (NumPy rules). */
function getBroadcast(t: Ref, outIdx: readonly number[]): number {
  const lead = outIdx.length - t.shape.length;
  return get(
    t,
    t.shape.map((d, i) => (d === 1 ? 0 : outIdx[lead + i]!)),
  );
}

export function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => Math.max(...shapes.map((s) => s[s.length - rank + i] ?? 1)));
}

export function map(t: Ref, f: (v: number) => number): Ref {
  return { shape: t.shape, data: t.data.map(f) };
}

export function zip(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  return fromFn(broadcastShape(a.shape, b.shape), (i) => f(getBroadcast(a, i), getBroadcast(b, i)));
}

export function zip3(a: Ref, b: Ref, c: Ref, f: (x: number, y: number, z: number) => number): Ref {
  return fromFn(broadcastShape(a.shape, b.shape, c.shape), (i) => f(getBroadcast(a, i), getBroadcast(b, i), getBroadcast(c, i)));
}

export function matmul(a: Ref, b: Ref): Ref {
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape.at(-1)!;
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return fromFn([...batch, m, n], (idx) => {
    const bi = idx.slice(0, -2);
    const [i, j] = idx.slice(-2) as [number, number];
    let s = 0;
    for (let p = 0; p < k; p++) s += getBroadcast(a, [...bi, i, p]) * getBroadcast(b, [...bi, p, j]);
    return s;
  });
}

export function transpose(t: Ref, perm: readonly number[]): Ref {
  return fromFn(
    perm.map((p) => t.shape[p]!),
    (idx) => {
      const src = new Array<number>(perm.length);
      perm.forEach((p, i) => (src[p] = idx[i]!));
      return get(t, src);
    },
  );
}

/** Reduces `axes` (kept as size 1) with `f` over the values of each slice. */
export function reduce(t: Ref, axes: readonly number[], f: (values: number[]) => number): Ref {
  const outShape = t.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  const os = strides(outShape);
  fromFn(t.shape, (idx) => {
    const key = idx.reduce((k, v, i) => k + (axes.includes(i) ? 0 : v * os[i]!), 0);
    const list = groups.get(key) ?? [];
    list.push(get(t, idx));
    groups.set(key, list);
    return 0;
  });
  return fromFn(outShape, (idx) => f(groups.get(idx.reduce((k, v, i) => k + v * os[i]!, 0))!));
}

export const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
export const mean = (v: number[]) => sum(v) / v.length;

export function softmax(t: Ref, axis: number): Ref {
  const max = reduce(t, [axis], (v) => Math.max(...v));
  const e = zip(t, max, (x, m) => Math.exp(x - m));
  const s = reduce(e, [axis], sum);
  return zip(e, s, (x, d) => x / d);
}

/** Normalises over `axes` with biased variance, then applies scale and shift already broadcast to t. */
export function normalize(t: Ref, axes: readonly number[], eps: number): Ref {
  const mu = reduce(t, axes, mean);
  const centered = zip(t, mu, (x, m) => x - m);
  const variance = reduce(centered, axes, (v) => mean(v.map((x) => x * x)));
  return zip(centered, variance, (x, v) => x / Math.sqrt(v + eps));
}

export function groupNorm(t: Ref, groups: number, weight: Ref, bias: Ref, eps: number): Ref {
  const [n, c] = t.shape as [number, number];
  const grouped = { shape: [n, groups, numel(t.shape) / (n * groups)], data: t.data };
  const normed = { shape: t.shape, data: normalize(grouped, [2], eps).data };
  const perChannel = (p: Ref) => ({ shape: [c, ...t.shape.slice(2).map(() => 1)], data: p.data });
  return zip(zip(normed, perChannel(weight), (x, w) => x * w), perChannel(bias), (x, b) => x + b);
}

export function conv2d(
  x: Ref,
  w: Ref,
  bias: Ref | null,
  { stride = [1, 1], pads = [0, 0, 0, 0], dilation = [1, 1], groups = 1 }: { stride?: number[]; pads?: number[]; dilation?: number[]; groups?: number },
): Ref {
  const [n, , h, wd] = x.shape as [number, number, number, number];
  const [o, cg, kh, kw] = w.shape as [number, number, number, number];
  const oh = Math.floor((h + pads[0]! + pads[2]! - (kh - 1) * dilation[0]! - 1) / stride[0]!) + 1;
  const ow = Math.floor((wd + pads[1]! + pads[3]! - (kw - 1) * dilation[1]! - 1) / stride[1]!) + 1;
  const og = o / groups;
  return fromFn([n, o, oh, ow], ([b, oc, y, xx]) => {
    const gq = Math.floor(oc! / og);
    let s = bias ? bias.data[oc!]! : 0;
    for (let ci = 0; ci < cg; ci++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const iy = y! * stride[0]! + i * dilation[0]! - pads[0]!;
          const ix = xx! * stride[1]! + j * dilation[1]! - pads[1]!;
          if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
          s += get(x, [b!, gq * cg + ci, iy, ix]) * get(w, [oc!, ci, i, j]);
        }
      }
    }
    return s;
  });
}

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform values in [lo, hi). */
export function random(shape: readonly number[], next: () => number, lo = -1, hi = 1): Ref {
  return fromFn(shape, () => lo + (hi - lo) * next());
}
