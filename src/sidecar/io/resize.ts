// Resizing that reproduces the reference's preprocessing bit for bit: the image goes to width 512 with Pillow's
// BILINEAR resample (a separable triangle filter widened when shrinking, in 22-bit fixed point with an 8-bit
// intermediate), and the mask follows with OpenCV's INTER_NEAREST (source index = floor(dst × src / dst)).
// Plain TypeScript on interleaved 8-bit pixels: sharp's kernels are close to these but not equal.

/** Interleaved 8-bit pixels, row-major. */
export interface Pixels8 {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** Fixed-point precision of Pillow's 8-bit resampling: 32 bits − 8 for the value − 2 for headroom. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** The reference's input size: width `targetWidth`, height int(targetWidth × H / W) (truncated, at least 1). */
export function sizeForWidth(size: { width: number; height: number }, targetWidth = 512): { width: number; height: number } {
  return { width: targetWidth, height: Math.max(1, Math.trunc((targetWidth * size.height) / size.width)) };
}

/** Pillow `Image.resize(size, BILINEAR)` on an 8-bit image without alpha (RGB or L). */
export function resizeBilinearLikePil<T extends Pixels8>(image: T, width: number, height: number): T {
  return resizeLikePil(image, width, height, TRIANGLE);
}

/** Pillow `Image.resize(size, BICUBIC)` on an 8-bit image without alpha (what CLIP's preprocessing runs). */
export function resizeBicubicLikePil<T extends Pixels8>(image: T, width: number, height: number): T {
  return resizeLikePil(image, width, height, BICUBIC);
}

function resizeLikePil<T extends Pixels8>(image: T, width: number, height: number, filter: PilFilter): T {
  checkPixels(image);
  checkTargetSize(width, height);
  if (width === image.width && height === image.height) return { ...image, data: image.data.slice() };
  let current: Pixels8 = image;
  // Pillow resamples horizontally first, rounding to 8 bits in between, then vertically.
  if (width !== image.width) current = resampleRows(current, width, pilCoefficients(image.width, width, filter));
  if (height !== image.height) current = resampleColumns(current, height, pilCoefficients(image.height, height, filter));
  return { ...image, width, height, data: current.data };
}

/** OpenCV `cv2.resize(..., interpolation=INTER_NEAREST)`: output pixel (x, y) takes source (⌊x·sx⌋, ⌊y·sy⌋). */
export function resizeNearestLikeOpenCv<T extends Pixels8>(image: T, width: number, height: number): T {
  checkPixels(image);
  checkTargetSize(width, height);
  const { channels } = image;
  // OpenCV computes the inverse scale as 1 / (dst / src); keep its exact double arithmetic so borders agree.
  const inverseX = 1 / (width / image.width);
  const inverseY = 1 / (height / image.height);
  const sourceColumn = new Int32Array(width);
  for (let x = 0; x < width; x++) sourceColumn[x] = Math.min(Math.floor(x * inverseX), image.width - 1);
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const sourceRow = Math.min(Math.floor(y * inverseY), image.height - 1) * image.width;
    for (let x = 0; x < width; x++) {
      const from = (sourceRow + sourceColumn[x]!) * channels;
      const to = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) data[to + c] = image.data[from + c]!;
    }
  }
  return { ...image, width, height, data };
}

interface Coefficients {
  /** Taps per output pixel (the stride of `weights`). */
  taps: number;
  /** First input index of each output pixel. */
  start: Int32Array;
  /** Number of input pixels used by each output pixel. */
  count: Int32Array;
  /** Fixed-point weights, `taps` per output pixel. */
  weights: Int32Array;
}

/** One of Pillow's resampling filters: its support at scale 1 and its kernel. */
interface PilFilter {
  readonly support: number;
  readonly kernel: (x: number) => number;
}

const TRIANGLE: PilFilter = { support: 1, kernel: (x) => (x < 0 ? -x : x) < 1 ? 1 - (x < 0 ? -x : x) : 0 };

/** Pillow's bicubic_filter: Keys' cubic with a = −0.5. */
const BICUBIC: PilFilter = {
  support: 2,
  kernel: (value) => {
    const a = -0.5;
    const x = value < 0 ? -value : value;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  },
};

/** Pillow's filter coefficients for resizing `inSize` samples to `outSize`. */
function pilCoefficients(inSize: number, outSize: number, filter: PilFilter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale; // widened when shrinking
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const raw = new Float64Array(taps);
  // Pillow multiplies by the reciprocal rather than dividing; the last bits of the weights depend on it.
  const reciprocal = 1 / filterScale;
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    // C casts to int truncate toward zero.
    const first = Math.max(0, Math.trunc(center - support + 0.5));
    const last = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = last - first;
    let total = 0;
    for (let i = 0; i < n; i++) {
      raw[i] = filter.kernel((i + first - center + 0.5) * reciprocal);
      total += raw[i]!;
    }
    for (let i = 0; i < n; i++) {
      const normalised = total !== 0 ? raw[i]! / total : raw[i]!;
      weights[out * taps + i] = Math.trunc(normalised < 0 ? -0.5 + normalised * ONE : 0.5 + normalised * ONE);
    }
    start[out] = first;
    count[out] = n;
  }
  return { taps, start, count, weights };
}

function clip8(sum: number): number {
  if (sum >= ONE * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / ONE);
}

function resampleRows(image: Pixels8, width: number, k: Coefficients): Pixels8 {
  const { height, channels } = image;
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const rowIn = y * image.width * channels;
    const rowOut = y * width * channels;
    for (let x = 0; x < width; x++) {
      const first = k.start[x]!;
      const n = k.count[x]!;
      const w = x * k.taps;
      for (let c = 0; c < channels; c++) {
        let sum = HALF;
        for (let i = 0; i < n; i++) sum += image.data[rowIn + (first + i) * channels + c]! * k.weights[w + i]!;
        data[rowOut + x * channels + c] = clip8(sum);
      }
    }
  }
  return { width, height, channels, data };
}

function resampleColumns(image: Pixels8, height: number, k: Coefficients): Pixels8 {
  const { width, channels } = image;
  const stride = width * channels;
  const data = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const first = k.start[y]!;
    const n = k.count[y]!;
    const w = y * k.taps;
    for (let i = 0; i < stride; i++) {
      let sum = HALF;
      for (let j = 0; j < n; j++) sum += image.data[(first + j) * stride + i]! * k.weights[w + j]!;
      data[y * stride + i] = clip8(sum);
    }
  }
  return { width, height, channels, data };
}

function checkPixels(image: Pixels8): void {
  const { width, height, channels } = image;
  if (!(width > 0 && height > 0 && channels > 0) || image.data.length !== width * height * channels) {
    throw new RangeError(`Pixel buffer of ${image.data.length} bytes does not match ${width} × ${height} × ${channels}`);
  }
}

function checkTargetSize(width: number, height: number): void {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`Cannot resize to ${width} × ${height}: the size must be positive integers`);
  }
}
