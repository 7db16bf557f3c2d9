// The CLIPDrag editor's document model: an edit spec in editable form, and the edits a user makes to it. The mask is
// kept as what the spec had (nothing, inline RLE or a PNG file) plus brush strokes on top, so a stroke is a small
// append and undo drops it; strokes are rasterised into RLE only when the spec is written. Shared by the extension
// (the authority: it applies edits and owns undo/redo) and the webview (which validates locally before sending);
// no Node- or DOM-only code.
import {
  DEFAULT_EDIT_PARAMETERS,
  EDIT_MODES,
  EDIT_SPEC_VERSION,
  decodeMaskRle,
  encodeMaskRle,
  validateEditSpec,
  type EditMode,
  type EditParameters,
  type EditSpec,
  type ImagePoint,
  type ImageSize,
  type MaskBitmap,
  type MaskSpec,
  type PointPair,
  type RleMask,
} from './edit-spec';
import { EDIT_PARAMETER_NAMES, type EditParameterName } from './edit-parameters';
import { MASK_STROKE_MODES, rasterizeStrokes, type MaskStroke } from './mask-raster';

export type { MaskStroke } from './mask-raster';

/** Where the mask starts from before the strokes. */
export type MaskBase = { kind: 'none' } | { kind: 'rle'; mask: RleMask } | { kind: 'file'; path: string };

export interface MaskLayer {
  base: MaskBase;
  strokes: readonly MaskStroke[];
}

/** One image's edit as the editor holds it. Treated as immutable: every edit makes a new model. */
export interface EditorModel {
  mode: EditMode;
  prompt: string;
  editPrompt: string;
  points: readonly PointPair[];
  /** Only the parameters the user set; the rest take their defaults. */
  parameters: Partial<EditParameters>;
  mask: MaskLayer;
  /** Carried through unchanged from the spec (the editor does not edit them). */
  model?: string;
  clipModel?: string;
}

export type PointEnd = 'handle' | 'target';
export const PROMPT_FIELDS = ['prompt', 'editPrompt'] as const;
export type PromptField = (typeof PROMPT_FIELDS)[number];

/** Everything a user can do to the document; each applied edit is one step on VS Code's undo stack. */
export type EditorEdit =
  | { kind: 'addPair'; pair: PointPair }
  | { kind: 'movePoint'; index: number; end: PointEnd; to: ImagePoint }
  | { kind: 'deletePair'; index: number }
  | { kind: 'maskStroke'; stroke: MaskStroke }
  | { kind: 'clearMask' }
  | { kind: 'setPrompt'; field: PromptField; text: string }
  | { kind: 'setMode'; mode: EditMode }
  /** `value` undefined: back to the default. */
  | { kind: 'setParameter'; name: EditParameterName; value: number | string | undefined }
  /** Removes every point pair and the mask; prompts and parameters stay. */
  | { kind: 'clearAll' };

export type EditOutcome =
  | { kind: 'changed'; model: EditorModel; label: string }
  | { kind: 'unchanged' }
  | { kind: 'rejected'; message: string };

/** Limits on what a webview may send, so a broken or hostile page cannot make the extension allocate wildly. */
export const MAX_STROKE_POINTS = 20_000;
export const MAX_BRUSH_RADIUS = 2_000;
export const MAX_PROMPT_LENGTH = 10_000;

export function emptyModel(): EditorModel {
  return { mode: 'clipdrag', prompt: '', editPrompt: '', points: [], parameters: {}, mask: { base: { kind: 'none' }, strokes: [] } };
}

export function modelFromSpec(spec: EditSpec): EditorModel {
  const base: MaskBase = spec.mask === undefined ? { kind: 'none' } : typeof spec.mask === 'string' ? { kind: 'file', path: spec.mask } : { kind: 'rle', mask: spec.mask };
  const model: EditorModel = {
    mode: spec.mode,
    prompt: spec.prompt,
    editPrompt: spec.editPrompt ?? '',
    points: spec.points.map(copyPair),
    parameters: { ...(spec.parameters ?? {}) },
    mask: { base, strokes: [] },
  };
  if (spec.model !== undefined) model.model = spec.model;
  if (spec.clipModel !== undefined) model.clipModel = spec.clipModel;
  return model;
}

/**
 * The spec this model stands for. `mask` is the mask as it should be written: `maskSpecOf` computes it (it needs the
 * decoded file base when strokes were painted over a PNG mask).
 */
export function specFromModel(model: EditorModel, mask: MaskSpec | undefined): EditSpec {
  const spec: EditSpec = { version: EDIT_SPEC_VERSION, mode: model.mode, prompt: model.prompt, points: model.points.map(copyPair) };
  if (model.editPrompt !== '') spec.editPrompt = model.editPrompt;
  if (mask !== undefined) spec.mask = mask;
  if (Object.keys(model.parameters).length > 0) spec.parameters = { ...model.parameters };
  if (model.model !== undefined) spec.model = model.model;
  if (model.clipModel !== undefined) spec.clipModel = model.clipModel;
  return spec;
}

/** Thrown when strokes sit on a PNG mask whose pixels are not known (the editor page has not decoded it yet). */
export class MaskNotDecodedError extends Error {
  override readonly name = 'MaskNotDecodedError';
}

/**
 * The mask to write for a layer: unchanged base when nothing was painted, otherwise the base with the strokes
 * rasterised, as RLE (absent when nothing is left editable). `size` is needed when there are strokes; `decodedFile`
 * is the PNG base's pixels when it has one.
 */
export function maskSpecOf(layer: MaskLayer, size: ImageSize | undefined, decodedFile?: MaskBitmap): MaskSpec | undefined {
  const { base, strokes } = layer;
  if (strokes.length === 0) return base.kind === 'none' ? undefined : base.kind === 'file' ? base.path : base.mask;
  if (!size) throw new RangeError('The image size is needed to rasterise the mask strokes.');
  const bitmap = maskBitmapOf(layer, size, decodedFile);
  let editable = false;
  for (let i = 0; i < bitmap.data.length; i++) {
    if (bitmap.data[i] !== 0) {
      editable = true;
      break;
    }
  }
  return editable ? encodeMaskRle(bitmap) : undefined;
}

/** The layer's pixels: the base (decoded) with every stroke applied. */
export function maskBitmapOf(layer: MaskLayer, size: ImageSize, decodedFile?: MaskBitmap): MaskBitmap {
  const bitmap = baseBitmap(layer.base, size, decodedFile);
  rasterizeStrokes(bitmap, layer.strokes);
  return bitmap;
}

function baseBitmap(base: MaskBase, size: ImageSize, decodedFile: MaskBitmap | undefined): MaskBitmap {
  switch (base.kind) {
    case 'none':
      return { width: size.width, height: size.height, data: new Uint8Array(size.width * size.height) };
    case 'rle':
      checkMaskSize(base.mask, size, 'The mask in the edit spec');
      return decodeMaskRle(base.mask);
    case 'file':
      if (!decodedFile) throw new MaskNotDecodedError(`The mask file ${base.path} has not been read yet, so the strokes painted over it cannot be saved; wait until the editor shows the image and its mask, then save again.`);
      checkMaskSize(decodedFile, size, `The mask file ${base.path}`);
      return { width: decodedFile.width, height: decodedFile.height, data: decodedFile.data.slice() };
  }
}

function checkMaskSize(mask: { width: number; height: number }, size: ImageSize, what: string): void {
  if (mask.width !== size.width || mask.height !== size.height) {
    throw new RangeError(`${what} is ${mask.width} × ${mask.height} pixels, but the image is ${size.width} × ${size.height}; clear the mask and paint it again.`);
  }
}

/** Applies an edit. `imageSize`, when known, bounds the points. Never mutates `model`. */
export function applyEdit(model: EditorModel, edit: EditorEdit, imageSize?: ImageSize): EditOutcome {
  switch (edit.kind) {
    case 'addPair': {
      const problem = pointProblem(edit.pair.handle, imageSize, 'handle') ?? pointProblem(edit.pair.target, imageSize, 'target');
      if (problem) return { kind: 'rejected', message: problem };
      return changed({ ...model, points: [...model.points, copyPair(edit.pair)] }, `Add Point Pair ${model.points.length + 1}`);
    }
    case 'movePoint': {
      const pair = model.points[edit.index];
      if (!pair) return { kind: 'rejected', message: noPair(edit.index, model) };
      const problem = pointProblem(edit.to, imageSize, edit.end);
      if (problem) return { kind: 'rejected', message: problem };
      const current = pair[edit.end];
      if (current[0] === edit.to[0] && current[1] === edit.to[1]) return { kind: 'unchanged' };
      const points = model.points.map((p, i) => (i === edit.index ? { ...copyPair(p), [edit.end]: [edit.to[0], edit.to[1]] as ImagePoint } : p));
      return changed({ ...model, points }, `Move ${edit.end === 'handle' ? 'Handle' : 'Target'} ${edit.index + 1}`);
    }
    case 'deletePair': {
      if (!model.points[edit.index]) return { kind: 'rejected', message: noPair(edit.index, model) };
      return changed({ ...model, points: model.points.filter((_, i) => i !== edit.index) }, `Delete Point Pair ${edit.index + 1}`);
    }
    case 'maskStroke': {
      const stroke: MaskStroke = { mode: edit.stroke.mode, radius: edit.stroke.radius, points: edit.stroke.points.map((p) => [p[0], p[1]] as ImagePoint) };
      return changed({ ...model, mask: { base: model.mask.base, strokes: [...model.mask.strokes, stroke] } }, stroke.mode === 'paint' ? 'Paint Mask' : 'Erase Mask');
    }
    case 'clearMask':
      if (!hasMask(model)) return { kind: 'unchanged' };
      return changed({ ...model, mask: { base: { kind: 'none' }, strokes: [] } }, 'Clear Mask');
    case 'setPrompt': {
      if (edit.text.length > MAX_PROMPT_LENGTH) return { kind: 'rejected', message: `The ${promptName(edit.field)} is ${edit.text.length} characters long; at most ${MAX_PROMPT_LENGTH} are allowed.` };
      if (model[edit.field] === edit.text) return { kind: 'unchanged' };
      return changed({ ...model, [edit.field]: edit.text }, edit.field === 'prompt' ? 'Edit Prompt' : 'Edit Target Prompt');
    }
    case 'setMode':
      if (model.mode === edit.mode) return { kind: 'unchanged' };
      return changed({ ...model, mode: edit.mode }, 'Change Edit Mode');
    case 'setParameter': {
      const parameters: Partial<EditParameters> = { ...model.parameters };
      if (edit.value === undefined) {
        if (!(edit.name in parameters)) return { kind: 'unchanged' };
        delete parameters[edit.name];
      } else {
        if (parameters[edit.name] === edit.value) return { kind: 'unchanged' };
        (parameters as Record<string, unknown>)[edit.name] = edit.value;
      }
      const problem = parametersProblem(parameters, edit.name);
      if (problem) return { kind: 'rejected', message: problem };
      return changed({ ...model, parameters }, edit.value === undefined ? `Reset ${edit.name}` : `Set ${edit.name}`);
    }
    case 'clearAll':
      if (model.points.length === 0 && !hasMask(model)) return { kind: 'unchanged' };
      return changed({ ...model, points: [], mask: { base: { kind: 'none' }, strokes: [] } }, 'Clear Points and Mask');
  }
}

/** What the spec module says about a parameter set, as one sentence about `name` (undefined when it is fine). */
export function parametersProblem(parameters: Partial<EditParameters>, name?: EditParameterName): string | undefined {
  const validation = validateEditSpec({ version: EDIT_SPEC_VERSION, mode: 'clipdrag', prompt: '', points: [], parameters });
  if (validation.ok) return undefined;
  const relevant = name ? validation.issues.filter((issue) => issue.path === `$.parameters.${name}`) : [];
  const issue = relevant[0] ?? validation.issues[0]!;
  return `${issue.path.replace(/^\$\.parameters\./, '')}: ${issue.message}`;
}

/** The value a parameter has in this model (its default when not set). */
export function effectiveParameter<K extends EditParameterName>(model: EditorModel, name: K): EditParameters[K] {
  return (model.parameters[name] ?? DEFAULT_EDIT_PARAMETERS[name]) as EditParameters[K];
}

export function hasMask(model: EditorModel): boolean {
  return model.mask.base.kind !== 'none' || model.mask.strokes.length > 0;
}

/** Checks an edit from the webview (untrusted) and returns a clean copy, or a sentence saying what is wrong. */
export function parseEditorEdit(value: unknown): EditorEdit | string {
  if (!isRecord(value)) return 'an edit must be an object with a "kind"';
  switch (value.kind) {
    case 'addPair': {
      const pair = parsePair(value.pair);
      return pair ?? 'addPair needs pair: { handle: [x, y], target: [x, y] }';
    }
    case 'movePoint': {
      const to = parsePoint(value.to);
      if (!isIndex(value.index) || (value.end !== 'handle' && value.end !== 'target') || !to) return 'movePoint needs index, end ("handle" or "target") and to: [x, y]';
      return { kind: 'movePoint', index: value.index, end: value.end, to };
    }
    case 'deletePair':
      return isIndex(value.index) ? { kind: 'deletePair', index: value.index } : 'deletePair needs an index';
    case 'maskStroke': {
      const stroke = parseStroke(value.stroke);
      return typeof stroke === 'string' ? stroke : { kind: 'maskStroke', stroke };
    }
    case 'clearMask':
      return { kind: 'clearMask' };
    case 'clearAll':
      return { kind: 'clearAll' };
    case 'setPrompt':
      if (!(PROMPT_FIELDS as readonly unknown[]).includes(value.field) || typeof value.text !== 'string') return 'setPrompt needs field ("prompt" or "editPrompt") and text';
      return { kind: 'setPrompt', field: value.field as PromptField, text: value.text };
    case 'setMode':
      if (!(EDIT_MODES as readonly unknown[]).includes(value.mode)) return `setMode needs mode ${EDIT_MODES.join(' or ')}`;
      return { kind: 'setMode', mode: value.mode as EditMode };
    case 'setParameter': {
      if (!(EDIT_PARAMETER_NAMES as readonly unknown[]).includes(value.name)) return `setParameter needs a parameter name (${EDIT_PARAMETER_NAMES.join(', ')})`;
      const v = value.value;
      if (v !== undefined && typeof v !== 'string' && (typeof v !== 'number' || !Number.isFinite(v))) return 'setParameter needs a finite number, a string or no value';
      return { kind: 'setParameter', name: value.name as EditParameterName, value: v as number | string | undefined };
    }
    default:
      return `unknown edit kind ${JSON.stringify(value.kind)}`;
  }
}

function parseStroke(value: unknown): MaskStroke | string {
  const shape = 'a stroke needs mode ("paint" or "erase"), radius and points [[x, y], ...]';
  if (!isRecord(value) || !(MASK_STROKE_MODES as readonly unknown[]).includes(value.mode) || typeof value.radius !== 'number' || !Array.isArray(value.points)) return shape;
  if (!(value.radius > 0 && value.radius <= MAX_BRUSH_RADIUS)) return `the brush radius must be > 0 and ≤ ${MAX_BRUSH_RADIUS} pixels`;
  if (value.points.length === 0 || value.points.length > MAX_STROKE_POINTS) return `a stroke needs 1 to ${MAX_STROKE_POINTS} points`;
  const points: ImagePoint[] = [];
  for (const item of value.points as unknown[]) {
    const point = parsePoint(item);
    if (!point) return shape;
    points.push(point);
  }
  return { mode: value.mode as MaskStroke['mode'], radius: value.radius, points };
}

function parsePair(value: unknown): { kind: 'addPair'; pair: PointPair } | undefined {
  if (!isRecord(value)) return undefined;
  const handle = parsePoint(value.handle);
  const target = parsePoint(value.target);
  return handle && target ? { kind: 'addPair', pair: { handle, target } } : undefined;
}

function parsePoint(value: unknown): ImagePoint | undefined {
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [x, y] = value as unknown[];
  return typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y) ? [x, y] : undefined;
}

function pointProblem(point: ImagePoint, imageSize: ImageSize | undefined, what: string): string | undefined {
  const [x, y] = point;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return `The ${what} point (${x}, ${y}) is not a pair of finite numbers.`;
  if (x < 0 || y < 0 || (imageSize && (x > imageSize.width - 1 || y > imageSize.height - 1))) {
    const extent = imageSize ? ` (0–${imageSize.width - 1}, 0–${imageSize.height - 1})` : '';
    return `The ${what} point (${x}, ${y}) is outside the image${extent}.`;
  }
  return undefined;
}

function noPair(index: number, model: EditorModel): string {
  return `There is no point pair ${index + 1} (the edit has ${model.points.length}).`;
}

function promptName(field: PromptField): string {
  return field === 'prompt' ? 'prompt' : 'target prompt';
}

function changed(model: EditorModel, label: string): EditOutcome {
  return { kind: 'changed', model, label };
}

function copyPair(pair: PointPair): PointPair {
  return { handle: [pair.handle[0], pair.handle[1]], target: [pair.target[0], pair.target[1]] };
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
