// DragBench samples: a folder `<category>/<sample>/` with `original_image.png`, `user_drag.png` (a drawing of the
// drag, not edited) and `meta_data.pkl` (a pickled dict: 'prompt', 'points' alternating handle and target in image
// pixels, 'mask' H×W with 1 = editable, float zeros when none was drawn). Read into an edit spec as the DragBench
// protocol runs it: the prompt serves as both prompts.
import { stat, readFile } from 'node:fs/promises';
import type { EditParameters } from '../../shared/edit-parameters';
import { EDIT_SPEC_VERSION, EditSpecError, assertEditSpec, encodeMaskRle, type EditSpec, type ImageSize, type PointPair } from '../../shared/edit-spec';
import { NumpyArray, describe, isPickleTuple, readPickle, type PickleKey, type PickleValue } from '../formats/pickle';

export const DRAGBENCH_IMAGE = 'original_image.png';
export const DRAGBENCH_META = 'meta_data.pkl';
/** meta_data.pkl files are a few hundred kilobytes (a 512 × 512 mask); anything far larger is not one. */
export const MAX_META_BYTES = 64 * 1024 * 1024;

/** A sample whose meta data cannot be turned into an edit: the message names the file and what is wrong. */
export class DragBenchSampleError extends Error {
  override readonly name = 'DragBenchSampleError';
}

/** Reads a sample's meta_data.pkl (a real path, already checked to be inside the batch folder). */
export async function readDragBenchMeta(metaPath: string, label: string): Promise<PickleValue> {
  const info = await stat(metaPath);
  if (info.size > MAX_META_BYTES) {
    throw new DragBenchSampleError(`${label} is ${info.size} bytes; a DragBench meta_data.pkl is far smaller (at most ${MAX_META_BYTES} bytes are read).`);
  }
  return readPickle(await readFile(metaPath), { source: label });
}

/**
 * The edit spec of a DragBench sample: points paired in order (handle, target, handle, target, ...), the mask's
 * non-zero cells editable (an all-zero mask means none was drawn), the prompt as the only prompt (the edit prompt
 * then defaults to it), `parameters` as given for the batch. Validated against the image like a saved spec.
 */
export function dragBenchSpec(meta: PickleValue, imageSize: ImageSize, label: string, parameters?: Partial<EditParameters>): EditSpec {
  const fail = (message: string): never => {
    throw new DragBenchSampleError(`${label}: ${message}`);
  };
  if (!(meta instanceof Map)) return fail(`holds a ${describe(meta)}; a DragBench meta_data.pkl holds a dict with 'prompt', 'points' and 'mask'.`);
  const field = (name: string): PickleValue | undefined => (meta as Map<PickleKey, PickleValue>).get(name);

  const prompt = field('prompt');
  if (typeof prompt !== 'string') fail(`'prompt' is ${prompt === undefined ? 'missing' : `a ${describe(prompt)}`}; expected the text that describes the image.`);

  const points = pointsOf(field('points'), fail);
  if (points.length % 2 !== 0) fail(`'points' holds ${points.length} points; they alternate handle and target, so their number must be even.`);
  const pairs: PointPair[] = [];
  for (let i = 0; i < points.length; i += 2) pairs.push({ handle: points[i]!, target: points[i + 1]! });

  const spec: EditSpec = { version: EDIT_SPEC_VERSION, mode: 'clipdrag', prompt: prompt as string, points: pairs };
  const mask = maskOf(field('mask'), imageSize, fail);
  if (mask) spec.mask = mask;
  if (parameters && Object.keys(parameters).length > 0) spec.parameters = { ...parameters };
  try {
    return assertEditSpec(spec, { imageSize, forRun: true }, label);
  } catch (error) {
    if (error instanceof EditSpecError) fail(`does not make a valid edit:\n${error.issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n')}`);
    throw error;
  }
}

function pointsOf(value: PickleValue | undefined, fail: (message: string) => never): [number, number][] {
  if (value instanceof NumpyArray) {
    // A points array of shape (n, 2).
    if (value.shape.length !== 2 || value.shape[1] !== 2) fail(`'points' is an array of shape (${value.shape.join(', ')}); expected (n, 2).`);
    const flat = value.toNumbers();
    return Array.from({ length: value.shape[0]! }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]);
  }
  if (!Array.isArray(value)) return fail(`'points' is ${value === undefined ? 'missing' : `a ${describe(value)}`}; expected a list of (x, y) pairs.`);
  return value.map((point: PickleValue, i: number) => {
    const items = point instanceof NumpyArray ? [...point.toNumbers()] : Array.isArray(point) ? (point as readonly PickleValue[]) : null;
    const coordinates = items?.map((v) => (typeof v === 'bigint' ? Number(v) : v));
    if (!coordinates || coordinates.length !== 2 || !coordinates.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      fail(`'points'[${i}] is ${describePoint(point)}; expected an (x, y) pair of numbers.`);
    }
    return coordinates as [number, number];
  });
}

function describePoint(point: PickleValue): string {
  if (Array.isArray(point)) return `a ${isPickleTuple(point as PickleValue) ? 'tuple' : 'list'} of ${(point as readonly PickleValue[]).length}`;
  return `a ${describe(point)}`;
}

function maskOf(value: PickleValue | undefined, imageSize: ImageSize, fail: (message: string) => never): EditSpec['mask'] {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof NumpyArray)) return fail(`'mask' is a ${describe(value)}; expected a numpy array of the image's size.`);
  const [height, width, channels = 1] = value.shape;
  if (value.shape.length < 2 || value.shape.length > 3 || height !== imageSize.height || width !== imageSize.width) {
    fail(`'mask' has shape (${value.shape.join(', ')}), but ${DRAGBENCH_IMAGE} is ${imageSize.width} × ${imageSize.height}; expected (${imageSize.height}, ${imageSize.width}).`);
  }
  const numbers = value.toNumbers();
  const data = new Uint8Array(imageSize.width * imageSize.height);
  let editable = 0;
  for (let i = 0; i < data.length; i++) {
    for (let c = 0; c < channels; c++) {
      // The reference treats any value above 0 as editable.
      if (numbers[i * channels + c]! > 0) {
        data[i] = 1;
        editable++;
        break;
      }
    }
  }
  // DragBench stores float zeros when no mask was drawn: no mask, so no background term.
  if (editable === 0) return undefined;
  return encodeMaskRle({ width: imageSize.width, height: imageSize.height, data });
}

/** The files of a sample folder, relative to the batch folder with `/` separators. */
export function dragBenchFiles(sampleDir: string): { image: string; meta: string } {
  const join = (name: string) => (sampleDir === '' ? name : `${sampleDir}/${name}`);
  return { image: join(DRAGBENCH_IMAGE), meta: join(DRAGBENCH_META) };
}
