// Edit-spec files on disk: read and validate `<image>.clipdrag-edit.json`, save one atomically, and load everything
// an edit of one image needs (pixels, spec with defaults, mask), checked against each other.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  EditSpecError,
  assertEditSpec,
  decodeMaskRle,
  encodeMaskRle,
  parseEditSpec,
  serializeEditSpec,
  specPathForImage,
  withDefaults,
  type EditSpec,
  type ImageSize,
  type MaskBitmap,
  type ResolvedEditSpec,
  type ValidateOptions,
} from '../../shared/edit-spec';
import { writeFileAtomic } from './atomic-write';
import { readImageFile, readMaskPng, type DecodedImage } from './image';
import { resolveInsideFolder } from './paths';
import type { ErrorKind } from '../../shared/error-kind';

/** A spec file that is missing or unreadable (a broken one throws `EditSpecError` instead). */
export class SpecFileError extends Error {
  override readonly name = 'SpecFileError';
  readonly kind: ErrorKind = 'invalid-input';
  constructor(
    readonly file: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Reads and validates a spec file; throws `SpecFileError` (missing, unreadable) or `EditSpecError` (invalid). */
export async function readEditSpecFile(specPath: string, options: ValidateOptions = {}): Promise<EditSpec> {
  let text: string;
  try {
    text = await readFile(specPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN';
    const reason = code === 'ENOENT' ? 'does not exist; open the image in the CLIPDrag editor and save an edit first' : `cannot be read (${code})`;
    throw new SpecFileError(specPath, code, `The edit spec ${specPath} ${reason}.`);
  }
  const validation = parseEditSpec(text, options);
  if (!validation.ok) throw new EditSpecError(validation.issues, specPath);
  return validation.spec;
}

/** Validates and saves a spec atomically (the old file stays intact if the write fails). */
export async function writeEditSpecFile(specPath: string, spec: EditSpec): Promise<void> {
  const valid = assertEditSpec(spec, {}, specPath);
  await writeFileAtomic(specPath, serializeEditSpec(valid));
}

/**
 * The spec's mask as a bitmap of the image's size, or undefined when the spec has none. A PNG path is resolved
 * relative to the spec and must stay inside its folder (links included); an inline mask must match the size.
 */
export async function loadSpecMask(spec: EditSpec, specPath: string, imageSize: ImageSize): Promise<{ mask: MaskBitmap; file?: string } | undefined> {
  if (spec.mask === undefined) return undefined;
  if (typeof spec.mask === 'string') {
    const file = await resolveInsideFolder(path.dirname(specPath), spec.mask, { what: 'mask', namedBy: path.basename(specPath) });
    return { mask: await readMaskPng(file, imageSize), file: spec.mask };
  }
  if (spec.mask.width !== imageSize.width || spec.mask.height !== imageSize.height) {
    throw new EditSpecError(
      [{ path: '$.mask', message: `is ${spec.mask.width} × ${spec.mask.height}, but the image is ${imageSize.width} × ${imageSize.height}; the mask must have the image's size` }],
      specPath,
    );
  }
  return { mask: decodeMaskRle(spec.mask) };
}

export interface LoadedEdit {
  imagePath: string;
  specPath: string;
  image: DecodedImage;
  /** Parameters filled in; the mask as written in the file. */
  spec: ResolvedEditSpec;
  /** Absent when no mask was drawn. */
  mask?: MaskBitmap;
  /** The PNG the mask came from, as the spec names it. */
  maskFile?: string;
}

/**
 * Reads an image and its spec (`<image>.clipdrag-edit.json`), and checks the points and mask against the image.
 * `forRun` (default true) also requires at least one point pair.
 */
export async function loadEdit(imagePath: string, options: { forRun?: boolean } = {}): Promise<LoadedEdit> {
  const specPath = specPathForImage(imagePath);
  const image = await readImageFile(imagePath);
  const imageSize = { width: image.width, height: image.height };
  const spec = await readEditSpecFile(specPath, { imageSize, forRun: options.forRun ?? true });
  const loaded: LoadedEdit = { imagePath, specPath, image, spec: withDefaults(spec) };
  const mask = await loadSpecMask(spec, specPath, imageSize);
  if (mask) {
    loaded.mask = mask.mask;
    if (mask.file !== undefined) loaded.maskFile = mask.file;
  }
  return loaded;
}

/** The spec as it ran, for the recipe: parameters complete and the mask inline, whichever file it came from. */
export function specWithInlineMask(spec: ResolvedEditSpec, mask: MaskBitmap | undefined): ResolvedEditSpec {
  const copy: ResolvedEditSpec = { ...spec, parameters: { ...spec.parameters }, points: spec.points.map((pair) => ({ handle: [...pair.handle], target: [...pair.target] })) };
  if (mask) copy.mask = encodeMaskRle(mask);
  else delete copy.mask;
  return copy;
}
