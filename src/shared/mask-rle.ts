// Editable-region masks as bitmaps and as run-length encodings (the compact form an edit spec can carry inline).
// Shared by the editor and the pipeline; no Node- or DOM-only code.

/** One byte per pixel, row-major: 1 = editable, 0 = keep as it is. */
export interface MaskBitmap {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Run-length encoded mask: `rle` holds alternating run lengths of 0 (keep) and 1 (editable) pixels in row-major
 * order, starting with a run of 0s (which may be empty). The runs add up to width × height.
 */
export interface RleMask {
  width: number;
  height: number;
  rle: number[];
}

/** Encodes a mask; any non-zero byte counts as editable. The output is canonical: only the first run may be 0. */
export function encodeMaskRle(mask: MaskBitmap): RleMask {
  checkBitmapSize(mask);
  const runs: number[] = [];
  // Starts in a 0-run, so a mask whose first pixel is editable begins with an empty run.
  let current = 0;
  let length = 0;
  for (let i = 0; i < mask.data.length; i++) {
    const bit = mask.data[i] !== 0 ? 1 : 0;
    if (bit === current) {
      length++;
    } else {
      runs.push(length);
      current = bit;
      length = 1;
    }
  }
  runs.push(length);
  return { width: mask.width, height: mask.height, rle: runs };
}

/** Problems with an RLE mask's own numbers (not its size relative to an image), as sentences; empty when valid. */
export function rleProblems(mask: RleMask): string[] {
  const problems: string[] = [];
  let total = 0;
  for (let i = 0; i < mask.rle.length; i++) {
    const run = mask.rle[i]!;
    if (!Number.isSafeInteger(run) || run < 0) {
      problems.push(`run ${i} is ${String(run)}; runs must be non-negative integers`);
      continue;
    }
    total += run;
  }
  const expected = mask.width * mask.height;
  if (problems.length === 0 && total !== expected) {
    problems.push(`the runs add up to ${total} pixels, but width × height is ${mask.width} × ${mask.height} = ${expected}`);
  }
  return problems;
}

/** Decodes an RLE mask into a bitmap of 0/1 bytes; throws RangeError if the runs do not cover the mask exactly. */
export function decodeMaskRle(mask: RleMask): MaskBitmap {
  if (!isDimension(mask.width) || !isDimension(mask.height)) {
    throw new RangeError(`RLE mask size ${mask.width} × ${mask.height} is not a pair of positive integers`);
  }
  const problems = rleProblems(mask);
  if (problems.length > 0) throw new RangeError(`Invalid RLE mask: ${problems.join('; ')}`);
  const data = new Uint8Array(mask.width * mask.height);
  let offset = 0;
  for (let i = 0; i < mask.rle.length; i++) {
    const run = mask.rle[i]!;
    if (i % 2 === 1) data.fill(1, offset, offset + run);
    offset += run;
  }
  return { width: mask.width, height: mask.height, data };
}

/** Number of editable pixels. */
export function countEditable(mask: MaskBitmap): number {
  let count = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== 0) count++;
  return count;
}

function isDimension(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0;
}

function checkBitmapSize(mask: MaskBitmap): void {
  if (!isDimension(mask.width) || !isDimension(mask.height) || mask.data.length !== mask.width * mask.height) {
    throw new RangeError(`Mask bitmap of ${mask.data.length} bytes does not match its size ${mask.width} × ${mask.height}`);
  }
}
