// Image files in and out, with sharp: decode png/jpg/jpeg/webp to 8-bit RGB (EXIF orientation applied, alpha
// composited on white), convert to and from the float layouts the models use, encode PNG, and read mask PNGs.
// Source files are only ever opened for reading.
import { readFile } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from 'sharp';
import type { ImageSize, MaskBitmap } from '../../shared/edit-spec';
import type { ErrorKind } from '../../shared/error-kind';
import { findPngChunkDamage, isPng } from './png-chunks';

/** 8-bit RGB, interleaved, row-major (H × W × 3). */
export interface RgbImage {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

export const SUPPORTED_IMAGE_FORMATS = ['png', 'jpeg', 'webp'] as const;
export type SupportedImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

export interface DecodedImage extends RgbImage {
  format: SupportedImageFormat;
  /** The file had an alpha channel, which was composited on white. */
  hadAlpha: boolean;
}

export type ImageFileProblem = 'not-found' | 'unreadable' | 'unsupported' | 'corrupt' | 'too-large';

/** A file that cannot be used as an image or mask; the message names the file and says what to do. */
export class ImageFileError extends Error {
  override readonly name = 'ImageFileError';
  readonly kind: ErrorKind = 'invalid-input';
  constructor(
    readonly problem: ImageFileProblem,
    readonly file: string,
    message: string,
  ) {
    super(message);
  }
}

/** Larger inputs are refused before decoding (16383 × 16383); the pipeline works at width 512 anyway. */
export const MAX_INPUT_PIXELS = 268_402_689;

const WHITE = { r: 255, g: 255, b: 255 };

/** Reads and decodes an image file. */
export async function readImageFile(file: string): Promise<DecodedImage> {
  return decodeImage(await readSourceBytes(file, 'image'), file);
}

/** Size and format of an image file after EXIF orientation, without decoding its pixels. */
export async function readImageInfo(file: string): Promise<ImageSize & { format: SupportedImageFormat }> {
  const bytes = await readSourceBytes(file, 'image');
  const metadata = await checkedMetadata(bytes, file, 'image');
  return { width: metadata.autoOrient.width, height: metadata.autoOrient.height, format: metadata.format };
}

/**
 * Decodes encoded image bytes (PNG, JPEG or WebP) into 8-bit RGB. `name` is used in messages. EXIF orientation is
 * applied, as the reference's `exif_transpose` does; transparency is composited on white (the reference's
 * Gradio upload drops alpha instead, which turns transparent areas into whatever colour they hide); colour
 * profiles are converted to sRGB; 16-bit files are reduced to 8 bits.
 */
export async function decodeImage(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  const metadata = await checkedMetadata(bytes, name, 'image');
  try {
    const { data, info } = await sharp(bytes, sharpInputOptions())
      .autoOrient()
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
    return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), format: metadata.format, hadAlpha: metadata.hasAlpha };
  } catch (error) {
    throw corruptError(name, 'image', error);
  }
}

/**
 * Reads a mask PNG: a pixel is editable (1) when any colour channel is above 0 and it is not fully transparent,
 * like the reference's `mask / 255 > 0`. With `expectedSize`, a mask of another size is an error.
 */
export async function readMaskPng(file: string, expectedSize?: ImageSize): Promise<MaskBitmap> {
  const bytes = await readSourceBytes(file, 'mask');
  const metadata = await checkedMetadata(bytes, file, 'mask');
  if (metadata.format !== 'png') {
    throw new ImageFileError('unsupported', file, `The mask ${describeFile(file)} is a ${metadata.format.toUpperCase()} file; masks must be PNG. Save the mask as PNG (white = editable, black = keep).`);
  }
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(bytes, sharpInputOptions()).autoOrient().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw corruptError(file, 'mask', error);
  }
  const { data, info } = decoded;
  if (expectedSize && (info.width !== expectedSize.width || info.height !== expectedSize.height)) {
    throw new ImageFileError(
      'unsupported',
      file,
      `The mask ${describeFile(file)} is ${info.width} × ${info.height} pixels, but the image is ${expectedSize.width} × ${expectedSize.height}. Paint the mask again in the editor, or resize it to the image's size.`,
    );
  }
  const colourChannels = info.hasAlpha ? info.channels - 1 : info.channels;
  const mask = new Uint8Array(info.width * info.height);
  for (let i = 0, p = 0; i < mask.length; i++, p += info.channels) {
    if (info.hasAlpha && data[p + colourChannels] === 0) continue;
    for (let c = 0; c < colourChannels; c++) {
      if (data[p + c]! > 0) {
        mask[i] = 1;
        break;
      }
    }
  }
  return { width: info.width, height: info.height, data: mask };
}

/** Encodes 8-bit RGB as PNG. */
export async function encodePng(image: RgbImage): Promise<Buffer> {
  checkRgb(image);
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).png().toBuffer();
}

/** Encodes a mask as an 8-bit grayscale PNG: 255 = editable, 0 = keep. */
export async function encodeMaskPng(mask: MaskBitmap): Promise<Buffer> {
  if (mask.data.length !== mask.width * mask.height) throw new RangeError(`Mask of ${mask.data.length} bytes does not match ${mask.width} × ${mask.height}`);
  const gray = new Uint8Array(mask.data.length);
  for (let i = 0; i < gray.length; i++) gray[i] = mask.data[i] !== 0 ? 255 : 0;
  return sharp(gray, { raw: { width: mask.width, height: mask.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** RGB → planar float32 C × H × W in [-1, 1], as the reference's `image / 127.5 - 1` (same float32 rounding). */
export function rgbToSignedChw(image: RgbImage): Float32Array {
  return toChw(image, (value) => Math.fround(Math.fround(value / 127.5) - 1));
}

/** RGB → planar float32 C × H × W in [0, 1] (`value / 255`). */
export function rgbToUnitChw(image: RgbImage): Float32Array {
  return toChw(image, (value) => Math.fround(value / 255));
}

/**
 * Planar float C × H × W in [0, 1] → 8-bit RGB, as the reference's `(image * 255).astype(np.uint8)` on float32:
 * the product is rounded to float32 and truncated. Values outside [0, 1] are clamped; NaN becomes 0.
 */
export function unitChwToRgb(planes: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  if (planes.length !== 3 * plane) throw new RangeError(`Expected 3 × ${height} × ${width} = ${3 * plane} values, got ${planes.length}`);
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const scaled = Math.fround(planes[c * plane + i]! * 255);
      data[i * 3 + c] = scaled > 0 ? (scaled >= 255 ? 255 : Math.trunc(scaled)) : 0;
    }
  }
  return { width, height, channels: 3, data };
}

function toChw(image: RgbImage, convert: (value: number) => number): Float32Array {
  checkRgb(image);
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = convert(image.data[i * 3]!);
    out[plane + i] = convert(image.data[i * 3 + 1]!);
    out[2 * plane + i] = convert(image.data[i * 3 + 2]!);
  }
  return out;
}

function checkRgb(image: RgbImage): void {
  if (!(image.width > 0 && image.height > 0) || image.data.length !== image.width * image.height * 3) {
    throw new RangeError(`RGB image of ${image.data.length} bytes does not match ${image.width} × ${image.height} × 3`);
  }
}

function sharpInputOptions(): SharpOptions {
  // 'truncated' rejects cut-off files but tolerates the benign warnings many real-world JPEGs carry.
  return { failOn: 'truncated', limitInputPixels: MAX_INPUT_PIXELS };
}

type FileRole = 'image' | 'mask';

/** Reads the whole file; opening it read-only is the only access to the source. */
async function readSourceBytes(file: string, role: FileRole): Promise<Buffer> {
  try {
    return await readFile(file, { flag: 'r' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageFileError('not-found', file, `The ${role} ${describeFile(file)} does not exist. Check the path, or save the file again.`);
    if (code === 'EISDIR') throw new ImageFileError('unreadable', file, `The ${role} path ${describeFile(file)} is a folder, not a file.`);
    throw new ImageFileError('unreadable', file, `The ${role} ${describeFile(file)} cannot be read (${code ?? String(error)}). Check its permissions.`);
  }
}

interface CheckedMetadata {
  format: SupportedImageFormat;
  hasAlpha: boolean;
  autoOrient: ImageSize;
}

async function checkedMetadata(bytes: Uint8Array, name: string, role: FileRole): Promise<CheckedMetadata> {
  if (bytes.byteLength === 0) {
    throw new ImageFileError('corrupt', name, `The ${role} ${describeFile(name)} is empty (0 bytes). Save or export it again.`);
  }
  if (isPng(bytes)) {
    const damage = findPngChunkDamage(bytes);
    if (damage) throw corruptError(name, role, new Error(damage));
  }
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, sharpInputOptions()).metadata();
  } catch (error) {
    if (/exceeds pixel limit/i.test(String(error))) throw await tooLargeError(bytes, name, role);
    throw corruptError(name, role, error);
  }
  const format = metadata.format as string | undefined;
  if (!format || !(SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new ImageFileError(
      'unsupported',
      name,
      `The ${role} ${describeFile(name)} is ${format ? `a ${format.toUpperCase()} file` : 'in an unknown format'}; CLIPDrag reads PNG, JPEG and WebP. Convert it to PNG and open that.`,
    );
  }
  return { format: format as SupportedImageFormat, hasAlpha: metadata.hasAlpha === true, autoOrient: { width: metadata.autoOrient.width, height: metadata.autoOrient.height } };
}

function corruptError(name: string, role: FileRole, error: unknown): ImageFileError {
  const detail = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
  const unknownFormat = /unsupported image format/i.test(detail);
  return new ImageFileError(
    unknownFormat ? 'unsupported' : 'corrupt',
    name,
    unknownFormat
      ? `The ${role} ${describeFile(name)} is not a PNG, JPEG or WebP image (its content is not a known image format, whatever its name says). Pick an image file, or convert it to PNG.`
      : `The ${role} ${describeFile(name)} is damaged or incomplete and cannot be decoded (${detail}). Re-export it from an image editor, or restore it from a copy.`,
  );
}

/** An image over the pixel limit (a real photo scan or a decompression bomb): its size is read from the header only. */
async function tooLargeError(bytes: Uint8Array, name: string, role: FileRole): Promise<ImageFileError> {
  const header = await sharp(bytes, { limitInputPixels: false }).metadata().catch(() => undefined);
  const size = header?.width && header.height ? `${header.width} × ${header.height} pixels` : 'larger than that';
  return new ImageFileError(
    'too-large',
    name,
    `The ${role} ${describeFile(name)} is ${size}, over CLIPDrag's limit of ${MAX_INPUT_PIXELS.toLocaleString('en-US')} pixels (16383 × 16383). Downscale it in an image editor (edits run at width 512) and open the smaller copy.`,
  );
}

function describeFile(file: string): string {
  return `"${file}"`;
}
