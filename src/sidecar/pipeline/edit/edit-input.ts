/**
 * Everything an edit reads before any model runs: the source image (decoded once), the spec (given or
 * read from the image's spec file, with overrides applied and every parameter filled in), the mask,
 * and their geometry at the pipeline's working size: the image resized to the working width, handles
 * and targets on the supervision grid, and the mask at latent size.
 */
import * as path from 'node:path';
import {
  EditSpecError,
  assertEditSpec,
  specPathForImage,
  withDefaults,
  type EditSpec,
  type ImagePoint,
  type MaskBitmap,
  type ResolvedEditSpec,
} from '../../../shared/edit-spec';
import type { EditOverrides } from '../../../shared/protocol';
import { readImageFile, type DecodedImage, type RgbImage } from '../../io/image';
import { resizeBilinearLikePil, resizeNearestLikeOpenCv } from '../../io/resize';
import { loadSpecMask, readEditSpecFile } from '../../io/spec-file';
import { supervisionSize } from '../drag/feature-upsample';
import { backgroundWeights, resizeMaskNearest } from '../drag/mask-term';
import type { Point } from '../drag/tracking';

const f32 = Math.fround;

/** The reference works on images resized to width 512. */
export const DEFAULT_WORKING_WIDTH = 512;

export interface EditInputRequest {
  readonly imagePath: string;
  readonly spec?: EditSpec;
  readonly specPath?: string;
  readonly overrides?: EditOverrides;
}

export interface EditInput {
  readonly imagePath: string;
  readonly specPath: string;
  readonly image: DecodedImage;
  readonly spec: ResolvedEditSpec;
  readonly mask?: MaskBitmap;
  readonly maskFile?: string;
}

/** Reads and validates the image and its spec; errors name the file and say what is wrong. */
export async function readEditInput(request: EditInputRequest): Promise<EditInput> {
  const imagePath = path.resolve(request.imagePath);
  const specPath = path.resolve(request.specPath ?? specPathForImage(imagePath));
  const image = await readImageFile(imagePath);
  const imageSize = { width: image.width, height: image.height };
  const given = request.spec ?? (await readEditSpecFile(specPath, { imageSize }));
  const merged = applyOverrides(given, request.overrides);
  // Validate what will actually run: the given or stored spec with the overrides, against this image.
  const spec = assertEditSpec(merged, { imageSize, forRun: true }, request.spec ? 'given for this run' : specPath);
  const loaded = await loadSpecMask(spec, specPath, imageSize);
  return {
    imagePath,
    specPath,
    image,
    spec: withDefaults(spec),
    ...(loaded ? { mask: loaded.mask } : {}),
    ...(loaded?.file !== undefined ? { maskFile: loaded.file } : {}),
  };
}

function applyOverrides(spec: EditSpec, overrides: EditOverrides | undefined): unknown {
  if (!overrides) return spec;
  const out: Record<string, unknown> = { ...spec };
  for (const key of ['mode', 'prompt', 'editPrompt', 'points', 'model', 'clipModel'] as const) {
    if (overrides[key] !== undefined) out[key] = overrides[key];
  }
  if (overrides.parameters) out.parameters = { ...spec.parameters, ...overrides.parameters };
  return out;
}

/** The edit at the pipeline's working size. */
export interface WorkingGeometry {
  /** The image resized to the working width (height a multiple of 8). */
  readonly image: RgbImage;
  readonly latentHeight: number;
  readonly latentWidth: number;
  /** The supervision grid (int(H/2), int(W/2)) of the working image. */
  readonly supervision: readonly [number, number];
  /** Handles and targets as [row, col] on the supervision grid. */
  readonly handles: Point[];
  readonly targets: Point[];
  /** The mask (1 = editable) on the supervision grid, or null when none is drawn. */
  readonly supervisionMask: Float32Array | null;
  /** λ·(1 − mask) at latent size, or null when no mask is drawn (or it has no editable cell there). */
  readonly backgroundWeights: Float32Array | null;
}

/**
 * The working size: width `workingWidth`, height int(width·H/W) as the reference, rounded to the nearest
 * multiple of 8 (the VAE and UNet need it; the reference would fail or crop on other heights).
 */
export function workingSize(size: { width: number; height: number }, workingWidth: number, factor = 8): { width: number; height: number } {
  if (!Number.isInteger(workingWidth) || workingWidth < factor || workingWidth % factor !== 0) {
    throw new RangeError(`the working width must be a positive multiple of ${factor}, got ${workingWidth}`);
  }
  const height = Math.trunc((workingWidth * size.height) / size.width);
  return { width: workingWidth, height: Math.max(factor, Math.round(height / factor) * factor) };
}

/** numpy/torch rounding: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A source-image point on the supervision grid: round([y/H·Hs, x/W·Ws]) as the reference (in float32),
 * clamped into the grid (the reference indexes out of range for points on the last row or column).
 */
export function toSupervision(point: ImagePoint, size: { width: number; height: number }, supervision: readonly [number, number]): Point {
  const [hs, ws] = supervision;
  const row = roundHalfEven(f32((point[1] / size.height) * hs));
  const col = roundHalfEven(f32((point[0] / size.width) * ws));
  return [Math.min(Math.max(row, 0), hs - 1), Math.min(Math.max(col, 0), ws - 1)];
}

/** A supervision-grid point in source-image pixels. */
export function toImagePixels(point: Point, size: { width: number; height: number }, supervision: readonly [number, number]): ImagePoint {
  return [(point[1] / supervision[1]) * size.width, (point[0] / supervision[0]) * size.height];
}

export function workingGeometry(input: EditInput, workingWidth: number, latentFactor: number): WorkingGeometry {
  const size = workingSize(input.image, workingWidth, latentFactor);
  const image = resizeBilinearLikePil(input.image, size.width, size.height);
  const supervision = supervisionSize(size.height, size.width);
  const handles = input.spec.points.map((p) => toSupervision(p.handle, input.image, supervision));
  const targets = input.spec.points.map((p) => toSupervision(p.target, input.image, supervision));
  const latentHeight = size.height / latentFactor;
  const latentWidth = size.width / latentFactor;
  let weights: Float32Array | null = null;
  let atSupervision: Float32Array | null = null;
  if (input.mask) {
    // The UI's nearest resize to the working size, then the reference's two torch nearest resizes.
    const resized = resizeNearestLikeOpenCv({ ...input.mask, channels: 1 }, size.width, size.height);
    const binary = Float32Array.from(resized.data, (v) => (v > 0 ? 1 : 0));
    atSupervision = resizeMaskNearest(binary, [size.height, size.width], supervision);
    const atLatent = resizeMaskNearest(atSupervision, supervision, [latentHeight, latentWidth]);
    const candidate = backgroundWeights(atLatent, input.spec.parameters.maskWeight);
    if (atLatent.some((v) => v !== 0)) weights = candidate;
  }
  return { image, latentHeight, latentWidth, supervision, handles, targets, supervisionMask: atSupervision, backgroundWeights: weights };
}

export { EditSpecError };
