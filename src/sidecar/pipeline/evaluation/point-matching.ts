/**
 * DragBench's mean distance, as run_eval_point_matching.py computes it: both feature maps bilinearly resized to the
 * image size (F.interpolate, align_corners=False), the source feature at each handle compared by cosine similarity
 * with every pixel of the result's map, and the distance from the best match (first maximum in row-major order,
 * as numpy's argmax) to the target.
 *
 * The resized maps are never held whole (for SD-2.1 at 512² one would be 1.3 GB): each resized pixel is computed
 * from its four neighbours when it is compared, with PyTorch's float32 weights and order of operations.
 */

const f32 = Math.fround;

/** A feature map [C, H, W] (batch of one), channel-major. */
export interface FeatureMap {
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly data: Float32Array;
}

export type Point = readonly [row: number, col: number];

interface Taps {
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly l0: Float32Array;
  readonly l1: Float32Array;
}

/** PyTorch's bilinear source indices and weights for resizing `input` samples to `output` (align_corners=False). */
function bilinearTaps(input: number, output: number): Taps {
  const scale = f32(input / output);
  const taps = { i0: new Int32Array(output), i1: new Int32Array(output), l0: new Float32Array(output), l1: new Float32Array(output) };
  for (let d = 0; d < output; d++) {
    const real = f32(f32(scale * f32(d + 0.5)) - 0.5);
    const src = real < 0 ? 0 : real;
    const i0 = Math.trunc(src);
    taps.i0[d] = i0;
    taps.i1[d] = i0 < input - 1 ? i0 + 1 : i0;
    taps.l1[d] = f32(src - i0);
    taps.l0[d] = f32(1 - taps.l1[d]!);
  }
  return taps;
}

/** Writes the resized map's vector at (y, x) into `out`. */
function resizedVector(map: FeatureMap, rows: Taps, cols: Taps, y: number, x: number, out: Float32Array): void {
  const { width, height } = map;
  const plane = width * height;
  const r0 = rows.i0[y]! * width;
  const r1 = rows.i1[y]! * width;
  const c0 = cols.i0[x]!;
  const c1 = cols.i1[x]!;
  const h0 = rows.l0[y]!;
  const h1 = rows.l1[y]!;
  const w0 = cols.l0[x]!;
  const w1 = cols.l1[x]!;
  for (let c = 0, base = 0; c < map.channels; c++, base += plane) {
    const top = f32(f32(w0 * map.data[base + r0 + c0]!) + f32(w1 * map.data[base + r0 + c1]!));
    const bottom = f32(f32(w0 * map.data[base + r1 + c0]!) + f32(w1 * map.data[base + r1 + c1]!));
    out[c] = f32(f32(h0 * top) + f32(h1 * bottom));
  }
}

export interface MatchResult {
  /** Where each handle's source feature matches best in the result, [row, col]. */
  readonly matched: Point[];
  /** Euclidean distance from each match to its target, in pixels. */
  readonly distances: number[];
}

/**
 * Matches the handles of `source` features in `result` features, both resized to `size` (the image's), and measures
 * each match's distance to its target. Points are [row, col] pixels of the image.
 */
export function matchPoints(source: FeatureMap, result: FeatureMap, size: { readonly height: number; readonly width: number }, handles: readonly Point[], targets: readonly Point[]): MatchResult {
  if (handles.length !== targets.length) throw new Error(`${handles.length} handles but ${targets.length} targets`);
  if (source.channels !== result.channels) throw new Error(`feature maps with ${source.channels} and ${result.channels} channels cannot be compared`);
  const { height, width } = size;
  for (const [r, c] of [...handles, ...targets]) {
    if (!Number.isInteger(r) || !Number.isInteger(c) || r < 0 || c < 0 || r >= height || c >= width) {
      throw new RangeError(`point [${r}, ${c}] is outside the ${width}×${height} image`);
    }
  }
  const channels = source.channels;
  const queries = handles.map(([r, c]) => {
    const v = new Float32Array(channels);
    resizedVector(source, bilinearTaps(source.height, height), bilinearTaps(source.width, width), r, c, v);
    let norm = 0;
    for (let i = 0; i < channels; i++) norm += v[i]! * v[i]!;
    return { v, norm: Math.sqrt(norm) };
  });
  const rows = bilinearTaps(result.height, height);
  const cols = bilinearTaps(result.width, width);
  const best = queries.map(() => ({ score: -Infinity, at: [0, 0] as Point }));
  const pixel = new Float32Array(channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      resizedVector(result, rows, cols, y, x, pixel);
      let norm = 0;
      for (let i = 0; i < channels; i++) norm += pixel[i]! * pixel[i]!;
      norm = Math.sqrt(norm);
      queries.forEach((q, k) => {
        let dot = 0;
        for (let i = 0; i < channels; i++) dot += q.v[i]! * pixel[i]!;
        // torch.nn.CosineSimilarity's floor on the norms (eps 1e-8).
        const score = dot / (Math.max(q.norm, 1e-8) * Math.max(norm, 1e-8));
        if (score > best[k]!.score) best[k] = { score, at: [y, x] };
      });
    }
  }
  const matched = best.map((b) => b.at);
  const distances = matched.map(([r, c], k) => f32(Math.hypot(targets[k]![0] - r, targets[k]![1] - c)));
  return { matched, distances };
}
