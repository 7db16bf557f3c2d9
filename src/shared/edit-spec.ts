// The edit spec: everything one CLIPDrag edit of one image needs (points, mask, prompts, parameters, models), as a
// versioned JSON document saved next to the image. The editor writes it, the pipeline and the batch runner read it.
// Types, validation with JSON-path errors, defaults and file naming; no Node- or DOM-only code (the webview uses it).
import {
  DEFAULT_EDIT_PARAMETERS,
  EDIT_MODES,
  EDIT_PARAMETER_DEFINITIONS,
  EDIT_PARAMETER_NAMES,
  defaultParametersFor,
  describeRange,
  inversionStepCount,
  type EditParameterName,
  type EditMode,
  type EditParameters,
  type EnumParameterDefinition,
  type NumericParameterDefinition,
} from './edit-parameters';
import { rleProblems, type RleMask } from './mask-rle';
import type { ErrorKind } from './error-kind';

export { DEFAULT_EDIT_PARAMETERS, EDIT_MODES, EDIT_PARAMETER_DEFINITIONS, defaultParametersFor, type EditMode, type EditParameters } from './edit-parameters';
export { decodeMaskRle, encodeMaskRle, type MaskBitmap, type RleMask } from './mask-rle';

export const EDIT_SPEC_VERSION = 1;

export const EDIT_MODE_DESCRIPTIONS: Readonly<Record<EditMode, string>> = {
  clipdrag: 'CLIPDrag: the drag points plus CLIP guidance towards the edit prompt',
  drag: 'DragDiffusion: the drag points only (no CLIP term; editPrompt is not used)',
  freedrag: 'FreeDrag: the drag points with adaptive templates and line search, no point tracking (editPrompt is not used)',
  text: 'Text only: no points; the latent follows CLIP guidance towards the edit prompt (both prompts required)',
};

/** A point in pixels of the source image as stored on disk (after EXIF orientation): x to the right, y down. */
export type ImagePoint = [x: number, y: number];

export interface PointPair {
  handle: ImagePoint;
  target: ImagePoint;
}

/** A PNG file path relative to the spec (inside the image's folder, `/`-separated), or an inline RLE mask. */
export type MaskSpec = string | RleMask;

export interface EditSpec {
  version: typeof EDIT_SPEC_VERSION;
  mode: EditMode;
  /** Describes the image as it is (LoRA, inversion and denoising prompt). May be empty, except in `text` mode. */
  prompt: string;
  /**
   * What the image should become (CLIP guidance text); empty or absent: the prompt is used (`clipdrag`). Required in
   * `text` mode; unused in `drag` and `freedrag`.
   */
  editPrompt?: string;
  /** Handle → target pairs; none in `text` mode, at least one in the others (for a run). */
  points: PointPair[];
  /** Absent: no mask drawn (the whole image may change, and there is no background term). */
  mask?: MaskSpec;
  /** Absent parameters take their defaults (`withDefaults`). */
  parameters?: Partial<EditParameters>;
  /** Stable Diffusion 1.5 weights (hub id `owner/name[@revision]` or a folder); absent: the user's setting. */
  model?: string;
  /** CLIP ViT-B/16 weights; absent: the user's setting. */
  clipModel?: string;
}

/** A spec whose parameters are all present. */
export interface ResolvedEditSpec extends Omit<EditSpec, 'parameters'> {
  parameters: EditParameters;
}

export interface ImageSize {
  width: number;
  height: number;
}

/** One problem: a JSON path into the spec (`$.points[0].handle[1]`) and a sentence saying what is expected. */
export interface SpecIssue {
  path: string;
  message: string;
}

export type SpecValidation = { ok: true; spec: EditSpec } | { ok: false; issues: SpecIssue[] };

export interface ValidateOptions {
  /** Size of the image the spec belongs to; when given, points and inline masks are checked against it. */
  imageSize?: ImageSize;
  /**
   * Also require what a run needs (per mode: point pairs, or none and both prompts in `text` mode); a spec being
   * saved may still be a draft.
   */
  forRun?: boolean;
}

/**
 * The spec's fields: which are required and what each means. The validator checks against this table and the JSON
 * Schema (edit-spec-schema.ts) is built from it, so both know the same fields.
 */
export const EDIT_SPEC_FIELDS: { readonly [K in keyof EditSpec]-?: { required: boolean; description: string } } = {
  version: { required: true, description: `The edit spec format version (${EDIT_SPEC_VERSION}).` },
  mode: { required: true, description: 'clipdrag: drag points with CLIP text guidance; drag: drag points only.' },
  prompt: { required: true, description: 'What the image shows (LoRA, inversion and denoising prompt). May be empty.' },
  editPrompt: { required: false, description: 'What the image should become (CLIP guidance text); empty or absent: the prompt.' },
  points: { required: true, description: 'Handle → target pairs in pixels of the source image (may be empty while drafting).' },
  mask: { required: false, description: 'The editable region: a PNG path relative to the spec, or an inline run-length mask. Absent: the whole image may change.' },
  parameters: { required: false, description: 'Edit parameters; absent ones take their defaults.' },
  model: { required: false, description: 'Stable Diffusion 1.5 weights: a hub id "owner/name[@revision]", a folder, or a single-file .safetensors checkpoint. Absent: the clipdrag.model setting.' },
  clipModel: { required: false, description: 'CLIP ViT-B/16 weights: a hub id "owner/name[@revision]" or a folder. Absent: the clipdrag.clipModel setting.' },
};

const TOP_LEVEL_FIELDS = Object.keys(EDIT_SPEC_FIELDS) as (keyof EditSpec)[];
export const POINT_PAIR_FIELDS = ['handle', 'target'] as const satisfies readonly (keyof PointPair)[];
export const MASK_RLE_FIELDS = ['width', 'height', 'rle'] as const satisfies readonly (keyof RleMask)[];
/** Past this many, further problems are summarised: a broken file should not produce pages of errors. */
const MAX_ISSUES = 50;

/** Checks an untrusted value (parsed JSON, a webview message) and returns a clean, typed copy or every problem. */
export function validateEditSpec(value: unknown, options: ValidateOptions = {}): SpecValidation {
  const issues = new IssueList();
  if (!isRecord(value)) {
    issues.add('$', `expected an edit spec object { "version": ${EDIT_SPEC_VERSION}, "mode", "prompt", "points", ... }, got ${describe(value)}`);
    return issues.result();
  }
  if (!checkVersion(value, issues)) return issues.result();
  checkUnknownFields(value, '$', TOP_LEVEL_FIELDS, issues);

  const mode = checkMode(value, issues);
  const prompt = checkString(value, 'prompt', '$', issues, { required: true, what: 'a string describing the image (it may be empty)' });
  const editPrompt = checkString(value, 'editPrompt', '$', issues, { required: false, what: 'a string saying what the image should become' });
  const points = checkPoints(value, options, issues);
  const mask = checkMask(value, options.imageSize, issues);
  const parameters = checkParameters(value, issues);
  const model = checkModelId(value, 'model', issues);
  const clipModel = checkModelId(value, 'clipModel', issues);

  // Counted as given: a pair with a bad coordinate is reported where it is, not as a missing pair.
  if (options.forRun && mode !== undefined && points !== undefined) checkRunnable(mode, prompt, editPrompt, value.points as unknown[], issues);
  if (issues.count > 0 || mode === undefined || prompt === undefined || points === undefined) return issues.result();
  const spec: EditSpec = { version: EDIT_SPEC_VERSION, mode, prompt, points };
  if (editPrompt !== undefined) spec.editPrompt = editPrompt;
  if (mask !== undefined) spec.mask = mask;
  if (parameters !== undefined) spec.parameters = parameters;
  if (model !== undefined) spec.model = model;
  if (clipModel !== undefined) spec.clipModel = clipModel;
  return { ok: true, spec };
}

/** Parses spec JSON text (a leading BOM is fine) and validates it; a syntax error is reported at `$`. */
export function parseEditSpec(text: string, options: ValidateOptions = {}): SpecValidation {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    return { ok: false, issues: [{ path: '$', message: `not valid JSON (${error instanceof Error ? error.message : String(error)}); fix the syntax or delete the file to start over` }] };
  }
  return validateEditSpec(value, options);
}

/** Thrown by `assertEditSpec`; its message lists every problem with its path. */
export class EditSpecError extends Error {
  override readonly name = 'EditSpecError';
  readonly kind: ErrorKind = 'invalid-input';
  constructor(
    readonly issues: readonly SpecIssue[],
    /** The spec's file name or another label for messages. */
    readonly source?: string,
  ) {
    super(formatSpecIssues(issues, source));
  }
}

/** Like `validateEditSpec`, but returns the spec or throws an `EditSpecError`. */
export function assertEditSpec(value: unknown, options: ValidateOptions = {}, source?: string): EditSpec {
  const validation = validateEditSpec(value, options);
  if (!validation.ok) throw new EditSpecError(validation.issues, source);
  return validation.spec;
}

export function formatSpecIssues(issues: readonly SpecIssue[], source?: string): string {
  const head = `${source ? `Edit spec ${source}` : 'The edit spec'} is not valid (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):`;
  return [head, ...issues.map((issue) => `  ${issue.path}: ${issue.message}`)].join('\n');
}

/** The spec with every parameter filled in (given values win over the mode's defaults). */
export function withDefaults(spec: EditSpec): ResolvedEditSpec {
  const parameters: EditParameters = defaultParametersFor(spec.mode);
  const given = spec.parameters ?? {};
  for (const name of EDIT_PARAMETER_NAMES) {
    const value = given[name];
    if (value !== undefined) (parameters as unknown as Record<string, unknown>)[name] = value;
  }
  return { ...spec, parameters };
}

/**
 * The spec as file text: fixed field order, two-space indent, number arrays on one line (points, RLE runs), and a
 * final newline, so saving the same edit twice gives the same bytes.
 */
export function serializeEditSpec(spec: EditSpec | ResolvedEditSpec): string {
  const ordered: Record<string, unknown> = {};
  for (const field of TOP_LEVEL_FIELDS) {
    const value = (spec as unknown as Record<string, unknown>)[field];
    if (value === undefined) continue;
    if (field === 'parameters') {
      const parameters: Record<string, unknown> = {};
      for (const name of EDIT_PARAMETER_NAMES) {
        const parameter = (value as Record<string, unknown>)[name];
        if (parameter !== undefined) parameters[name] = parameter;
      }
      ordered.parameters = parameters;
    } else if (field === 'mask' && typeof value === 'object') {
      const mask = value as RleMask;
      ordered.mask = { width: mask.width, height: mask.height, rle: mask.rle };
    } else {
      ordered[field] = value;
    }
  }
  const text = JSON.stringify(ordered, null, 2);
  return `${text.replace(/\[\s*(-?\d[\d.eE+-]*(?:,\s*-?\d[\d.eE+-]*)*)\s*\]/g, (_match, items: string) => `[${items.split(/,\s*/).join(', ')}]`)}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// File naming

/** A spec for `cat.png` is `cat.png.clipdrag-edit.json` in the same folder (the full name keeps cat.png and cat.jpg apart). */
export const EDIT_SPEC_SUFFIX = '.clipdrag-edit.json';

/** Image file extensions the editor and the pipeline accept (lower case, with the dot). */
export const EDITABLE_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'] as const;

/** The spec file of an image (works on `/` and `\` paths alike, and on bare names). */
export function specPathForImage(imagePath: string): string {
  return `${imagePath}${EDIT_SPEC_SUFFIX}`;
}

/** The image a spec file belongs to, or undefined if the name does not follow the convention. */
export function imagePathForSpec(specPath: string): string | undefined {
  if (!specPath.endsWith(EDIT_SPEC_SUFFIX)) return undefined;
  const imagePath = specPath.slice(0, -EDIT_SPEC_SUFFIX.length);
  return isEditableImageName(baseName(imagePath)) ? imagePath : undefined;
}

export function isEditableImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return EDITABLE_IMAGE_EXTENSIONS.some((extension) => lower.endsWith(extension) && lower.length > extension.length);
}

/** Files CLIPDrag itself writes next to images (specs, masks, results, recipes), which a batch must not edit again. */
export function isClipdragArtifactName(name: string): boolean {
  return /\.clipdrag(-\d+)?\.(png|json)$/i.test(name) || /\.clipdrag-(edit\.json|mask\.png)$/i.test(name);
}

/** The conventional name of a PNG mask saved for an image: `cat.png` → `cat.png.clipdrag-mask.png`. */
export function maskFileNameForImage(imageName: string): string {
  return `${baseName(imageName)}.clipdrag-mask.png`;
}

/** Why a mask path cannot be used (a sentence), or undefined. Checks the text only; the sidecar also resolves links. */
export function maskPathProblem(path: string): string | undefined {
  const example = 'e.g. "cat.png.clipdrag-mask.png"';
  if (path.length === 0) return `is empty; expected a PNG file path relative to the spec, ${example}`;
  if (path.includes('\0')) return 'contains a NUL character; expected a plain relative file path';
  if (path.includes('\\')) return `uses "\\"; write the path with "/" separators so the spec works on every system, ${example}`;
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return `is absolute; expected a path relative to the spec inside the image's folder, ${example}`;
  let depth = 0;
  for (const segment of path.split('/')) {
    if (segment === '..') depth--;
    else if (segment !== '' && segment !== '.') depth++;
    if (depth < 0) return `leaves the image's folder (".."); the mask must be inside the folder of the image and its spec`;
  }
  if (!path.toLowerCase().endsWith('.png')) return `is not a .png file; expected a PNG mask (white or any non-zero colour = editable), ${example}`;
  return undefined;
}

function baseName(path: string): string {
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return path.slice(slash + 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Field checks

class IssueList {
  private readonly issues: SpecIssue[] = [];
  private dropped = 0;

  get count(): number {
    return this.issues.length + this.dropped;
  }

  add(path: string, message: string): void {
    if (this.issues.length < MAX_ISSUES) this.issues.push({ path, message });
    else this.dropped++;
  }

  result(): { ok: false; issues: SpecIssue[] } {
    const issues = [...this.issues];
    if (this.dropped > 0) issues.push({ path: '$', message: `${this.dropped} more problems not listed; fix the ones above first` });
    return { ok: false, issues };
  }
}

type JsonRecord = Record<string, unknown>;

function isRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function has(record: JsonRecord, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key) && record[key] !== undefined;
}

/** Returns false when the version makes further checks pointless (a newer format). */
function checkVersion(spec: JsonRecord, issues: IssueList): boolean {
  if (!has(spec, 'version')) {
    issues.add('$.version', `missing; expected ${EDIT_SPEC_VERSION} (the edit spec format version)`);
    return true;
  }
  const version = spec.version;
  if (version === EDIT_SPEC_VERSION) return true;
  if (typeof version === 'number' && Number.isInteger(version) && version > EDIT_SPEC_VERSION) {
    issues.add('$.version', `unsupported version ${version}: this CLIPDrag reads edit specs of version ${EDIT_SPEC_VERSION}; update the CLIPDrag extension to open this file`);
    return false;
  }
  issues.add('$.version', `unsupported version ${describe(version)}; expected ${EDIT_SPEC_VERSION}`);
  return true;
}

function checkUnknownFields(record: JsonRecord, path: string, known: readonly string[], issues: IssueList): void {
  for (const key of Object.keys(record)) {
    if (known.includes(key)) continue;
    const suggestion = closest(key, known);
    issues.add(childPath(path, key), `unknown field${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; expected only ${known.join(', ')}`);
  }
}

function checkMode(spec: JsonRecord, issues: IssueList): EditSpec['mode'] | undefined {
  const expected = `one of ${EDIT_MODES.map((mode) => `"${mode}"`).join(', ')}`;
  if (!has(spec, 'mode')) {
    issues.add('$.mode', `missing; expected ${expected}`);
    return undefined;
  }
  const mode = spec.mode;
  if (typeof mode === 'string' && (EDIT_MODES as readonly string[]).includes(mode)) return mode as EditSpec['mode'];
  issues.add('$.mode', `expected ${expected}, got ${describe(mode)}`);
  return undefined;
}

/** Whether a prompt says something: empty and whitespace-only prompts count as absent everywhere. */
export function hasText(prompt: string | undefined): prompt is string {
  return prompt !== undefined && prompt.trim() !== '';
}

/** What each mode needs before any model work: points (or none in `text` mode) and, in `text` mode, both prompts. */
function checkRunnable(mode: EditMode, prompt: string | undefined, editPrompt: string | undefined, points: readonly unknown[], issues: IssueList): void {
  if (mode !== 'text') {
    if (points.length === 0) {
      issues.add('$.points', `no handle → target pairs; ${mode} mode drags points: place at least one handle and its target, or choose "text" mode to edit by the prompts alone`);
    }
    return;
  }
  if (points.length > 0) {
    issues.add('$.points', `text mode edits by the prompts alone and takes no points, got ${points.length} ${points.length === 1 ? 'pair' : 'pairs'}; remove them or choose a drag mode`);
  }
  if (prompt !== undefined && !hasText(prompt)) {
    issues.add('$.prompt', 'is empty; text mode needs a prompt describing the image as it is (LoRA, inversion and denoising use it)');
  }
  if (!hasText(editPrompt)) {
    issues.add('$.editPrompt', `${editPrompt === undefined ? 'missing' : 'is empty'}; text mode needs an edit prompt saying what the image should become (the CLIP guidance text)`);
  }
}

function checkString(
  record: JsonRecord,
  key: string,
  path: string,
  issues: IssueList,
  options: { required: boolean; what: string },
): string | undefined {
  const fieldPath = childPath(path, key);
  if (!has(record, key)) {
    if (options.required) issues.add(fieldPath, `missing; expected ${options.what}`);
    return undefined;
  }
  const value = record[key];
  if (typeof value === 'string') return value;
  issues.add(fieldPath, `expected ${options.what}, got ${describe(value)}`);
  return undefined;
}

function checkModelId(spec: JsonRecord, key: 'model' | 'clipModel', issues: IssueList): string | undefined {
  const what = key === 'model' ? 'Stable Diffusion 1.5' : 'CLIP ViT-B/16';
  const expected = `a ${what} model: a hub id "owner/name" (optionally "@revision") or a folder path`;
  const value = checkString(spec, key, '$', issues, { required: false, what: expected });
  if (value === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (value.trim().length === 0 || /[\u0000-\u001f]/.test(value)) {
    issues.add(`$.${key}`, `${describe(value)} is not a model id; expected ${expected}, or leave the field out to use the setting`);
    return undefined;
  }
  return value;
}

function checkPoints(spec: JsonRecord, options: ValidateOptions, issues: IssueList): PointPair[] | undefined {
  const shape = 'an array of { "handle": [x, y], "target": [x, y] } in image pixels';
  if (!has(spec, 'points')) {
    issues.add('$.points', `missing; expected ${shape} (may be empty while drafting)`);
    return undefined;
  }
  const value = spec.points;
  if (!Array.isArray(value)) {
    issues.add('$.points', `expected ${shape}, got ${describe(value)}`);
    return undefined;
  }
  const pairs: PointPair[] = [];
  value.forEach((item: unknown, index) => {
    const path = `$.points[${index}]`;
    if (!isRecord(item)) {
      const bare = Array.isArray(item) && item.length === 2 && item.every((n) => typeof n === 'number');
      issues.add(
        path,
        bare
          ? 'is a bare point [x, y]; expected a pair { "handle": [x, y], "target": [x, y] }: every handle needs its target'
          : `expected a pair { "handle": [x, y], "target": [x, y] }, got ${describe(item)}`,
      );
      return;
    }
    checkUnknownFields(item, path, POINT_PAIR_FIELDS, issues);
    const handle = checkPairEnd(item, 'handle', path, options.imageSize, issues);
    const target = checkPairEnd(item, 'target', path, options.imageSize, issues);
    if (handle && target) pairs.push({ handle, target });
  });
  return pairs;
}

function checkPairEnd(pair: JsonRecord, end: 'handle' | 'target', pairPath: string, imageSize: ImageSize | undefined, issues: IssueList): ImagePoint | undefined {
  const path = `${pairPath}.${end}`;
  if (!has(pair, end)) {
    const other = end === 'handle' ? 'target' : 'handle';
    issues.add(path, `missing: this ${other} has no ${end}; every pair needs both a handle and a target point [x, y]`);
    return undefined;
  }
  const value = pair[end];
  if (!Array.isArray(value) || value.length !== 2) {
    issues.add(path, `expected a point [x, y] (two numbers, image pixels), got ${describe(value)}`);
    return undefined;
  }
  let ok = true;
  (['x', 'y'] as const).forEach((axis, index) => {
    const coordinate: unknown = value[index];
    const coordinatePath = `${path}[${index}]`;
    if (typeof coordinate !== 'number') {
      issues.add(coordinatePath, `expected ${axis} as a number of image pixels, got ${describe(coordinate)}`);
      ok = false;
    } else if (!Number.isFinite(coordinate)) {
      issues.add(coordinatePath, `${axis} is ${describe(coordinate)}; expected a finite number of image pixels`);
      ok = false;
    } else if (imageSize) {
      const extent = axis === 'x' ? imageSize.width : imageSize.height;
      if (coordinate < 0 || coordinate > extent - 1) {
        issues.add(
          coordinatePath,
          `${axis} = ${coordinate} is outside the image; expected 0 ≤ ${axis} ≤ ${extent - 1} (the image is ${imageSize.width} × ${imageSize.height} pixels)`,
        );
        ok = false;
      }
    } else if (coordinate < 0) {
      issues.add(coordinatePath, `${axis} = ${coordinate} is negative; expected a pixel position ≥ 0`);
      ok = false;
    }
  });
  return ok ? [value[0] as number, value[1] as number] : undefined;
}

function checkMask(spec: JsonRecord, imageSize: ImageSize | undefined, issues: IssueList): MaskSpec | undefined {
  if (!has(spec, 'mask')) return undefined;
  const value = spec.mask;
  if (typeof value === 'string') {
    const problem = maskPathProblem(value);
    if (problem) issues.add('$.mask', `${JSON.stringify(value)} ${problem}`);
    return problem ? undefined : value;
  }
  if (!isRecord(value)) {
    issues.add('$.mask', `expected a PNG file path relative to the spec or { "width", "height", "rle": [runs] }, got ${describe(value)}`);
    return undefined;
  }
  checkUnknownFields(value, '$.mask', MASK_RLE_FIELDS, issues);
  const width = checkDimension(value, 'width', issues);
  const height = checkDimension(value, 'height', issues);
  const runs = checkRuns(value, issues);
  if (width === undefined || height === undefined || runs === undefined) return undefined;
  const mask: RleMask = { width, height, rle: runs };
  let ok = true;
  for (const problem of rleProblems(mask)) {
    issues.add('$.mask.rle', problem);
    ok = false;
  }
  if (imageSize && (width !== imageSize.width || height !== imageSize.height)) {
    issues.add('$.mask', `is ${width} × ${height}, but the image is ${imageSize.width} × ${imageSize.height}; the mask must have the image's size`);
    ok = false;
  }
  return ok ? mask : undefined;
}

function checkDimension(mask: JsonRecord, key: 'width' | 'height', issues: IssueList): number | undefined {
  const path = `$.mask.${key}`;
  if (!has(mask, key)) {
    issues.add(path, `missing; expected the mask ${key} in pixels (the image's ${key})`);
    return undefined;
  }
  const value = mask[key];
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  issues.add(path, `expected a positive integer (the image's ${key} in pixels), got ${describe(value)}`);
  return undefined;
}

function checkRuns(mask: JsonRecord, issues: IssueList): number[] | undefined {
  const expected = 'an array of run lengths alternating keep (0) and editable (1) pixels, row-major, starting with keep';
  if (!has(mask, 'rle')) {
    issues.add('$.mask.rle', `missing; expected ${expected}`);
    return undefined;
  }
  const value = mask.rle;
  if (!Array.isArray(value)) {
    issues.add('$.mask.rle', `expected ${expected}, got ${describe(value)}`);
    return undefined;
  }
  let ok = true;
  value.forEach((run: unknown, index) => {
    if (typeof run !== 'number' || !Number.isSafeInteger(run) || run < 0) {
      issues.add(`$.mask.rle[${index}]`, `expected a run length (an integer ≥ 0), got ${describe(run)}`);
      ok = false;
    }
  });
  return ok ? (value as number[]) : undefined;
}

function checkParameters(spec: JsonRecord, issues: IssueList): Partial<EditParameters> | undefined {
  if (!has(spec, 'parameters')) return undefined;
  const value = spec.parameters;
  if (!isRecord(value)) {
    issues.add('$.parameters', `expected an object of parameters (any subset of ${EDIT_PARAMETER_NAMES.join(', ')}), got ${describe(value)}`);
    return undefined;
  }
  checkUnknownFields(value, '$.parameters', EDIT_PARAMETER_NAMES, issues);
  const parameters: Record<string, unknown> = {};
  for (const name of EDIT_PARAMETER_NAMES) {
    if (!has(value, name)) continue;
    const checked = checkParameter(name, value[name], issues);
    if (checked !== undefined) parameters[name] = checked;
  }
  const typed = parameters as Partial<EditParameters>;
  checkParameterCombinations(typed, issues);
  return typed;
}

function checkParameter(name: EditParameterName, value: unknown, issues: IssueList): number | string | undefined {
  const path = `$.parameters.${name}`;
  const definition = EDIT_PARAMETER_DEFINITIONS[name] as NumericParameterDefinition | EnumParameterDefinition;
  if (definition.kind === 'enum') {
    if (typeof value === 'string' && definition.values.includes(value)) return value;
    issues.add(path, `expected one of ${definition.values.map((v) => `"${v}"`).join(', ')} (${definition.description}), got ${describe(value)}`);
    return undefined;
  }
  const range = describeRange(definition);
  if (typeof value !== 'number') {
    issues.add(path, `expected ${range} (${definition.description}), got ${describe(value)}`);
    return undefined;
  }
  if (!Number.isFinite(value)) {
    issues.add(path, `${describe(value)} is not a finite number; expected ${range}`);
    return undefined;
  }
  const belowMin = definition.minExclusive ? value <= definition.min : value < definition.min;
  if ((definition.kind === 'integer' && !Number.isInteger(value)) || belowMin || value > definition.max) {
    issues.add(path, `expected ${range} (${definition.description}), got ${value}`);
    return undefined;
  }
  return value;
}

/** Constraints between parameters; missing ones count with their defaults. */
function checkParameterCombinations(given: Partial<EditParameters>, issues: IssueList): void {
  const inferenceSteps = given.inferenceSteps ?? DEFAULT_EDIT_PARAMETERS.inferenceSteps;
  const inversionStrength = given.inversionStrength ?? DEFAULT_EDIT_PARAMETERS.inversionStrength;
  if (inversionStepCount({ inferenceSteps, inversionStrength }) < 1) {
    issues.add(
      '$.parameters.inversionStrength',
      `round(${inversionStrength} × ${inferenceSteps} steps) = 0 inversion steps; expected a strength of at least ${(0.5 / inferenceSteps).toPrecision(3)} with ${inferenceSteps} steps`,
    );
  }
  const masaStartStep = given.masaStartStep ?? DEFAULT_EDIT_PARAMETERS.masaStartStep;
  if (masaStartStep > inferenceSteps) {
    issues.add('$.parameters.masaStartStep', `${masaStartStep} is after the last of the ${inferenceSteps} inference steps; expected an integer from 0 to ${inferenceSteps}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Message helpers

function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** A short rendering of a value for messages (NaN and Infinity spelled out, long strings cut). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** The known name closest to a misspelt one (edit distance ≤ 2, or same letters in another case). */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
