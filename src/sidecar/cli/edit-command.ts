// `clipdrag edit`: one edit from the command line. The spec comes from --spec (or the image's saved spec
// file), or is built from --points/--prompt; flags override it. Progress goes to stderr, the result's paths
// to stdout (with --json: one JSON object). Ctrl-C or SIGTERM cancels (nothing is written).
import * as path from 'node:path';
import { EDIT_MODES, encodeMaskRle, type EditMode, type EditParameters, type EditSpec, type PointPair } from '../../shared/edit-spec';
import type { DevicePreference, EditProgress, MemoryPolicyPreference, PrecisionPreference } from '../../shared/protocol';
import { readImageInfo, readMaskPng } from '../io/image';
import { readEditSpecFile } from '../io/spec-file';
import { isEditCancelled } from '../pipeline/edit/cancellation';
import { edit, type EditRequest } from '../pipeline/edit/edit';
import { JSON_FLAG, MODEL_FLAGS, PARAMETER_FLAGS, describeFlags, modelSettings, parameterValues, parseFlags, stringFlag, type Flag } from './flags';
import { UsageError, type CliIo } from './io';

const EDIT_FLAGS: readonly Flag[] = [
  { name: 'spec', type: 'string', value: '<file>', help: 'edit spec JSON (default: <image>.clipdrag-edit.json when no --points are given)' },
  { name: 'points', type: 'string', value: '<list>', help: 'handle → target pairs in image pixels: hx,hy,tx,ty separated by ";"' },
  { name: 'prompt', type: 'string', value: '<text>', help: 'what the image shows (LoRA, inversion and denoising prompt)' },
  { name: 'edit-prompt', type: 'string', value: '<text>', help: 'what it should become (CLIP guidance text; default: the prompt)' },
  { name: 'mask', type: 'string', value: '<png>', help: 'editable region (white = editable)' },
  { name: 'mode', type: 'string', value: '<mode>', help: 'clipdrag (default): points + CLIP guidance; drag: DragDiffusion; freedrag: FreeDrag; text: no points, the edit prompt alone (needs --prompt and --edit-prompt)' },
  ...MODEL_FLAGS,
  { name: 'out', type: 'string', value: '<file.png>', help: 'write the result here (recipe beside it) instead of <name>.clipdrag.png' },
  JSON_FLAG,
];

export const EDIT_USAGE = `clipdrag edit <image> [--spec <file> | --points hx,hy,tx,ty[;...] --prompt <text> | --mode text --prompt <text> --edit-prompt <text>] [options]
${describeFlags(EDIT_FLAGS)}
edit parameters (override the spec's):
${describeFlags(PARAMETER_FLAGS)}`;

export interface EditCommandOptions {
  image: string;
  spec?: string;
  points?: PointPair[];
  prompt?: string;
  editPrompt?: string;
  mask?: string;
  mode?: EditMode;
  model?: string;
  /** Config folder for a single-file --model. */
  modelConfig?: string;
  clip?: string;
  device?: DevicePreference;
  precision?: PrecisionPreference;
  memoryPolicy?: MemoryPolicyPreference;
  /** Edit parameters set by flags; they override the spec's. */
  parameters: Partial<EditParameters>;
  workingWidth?: number;
  out?: string;
  json: boolean;
}

/** The options, or `'help'` when --help was asked for. */
export function parseEditOptions(args: readonly string[]): EditCommandOptions | 'help' {
  const { values, positionals, help } = parseFlags('edit', args, [...EDIT_FLAGS, ...PARAMETER_FLAGS]);
  if (help) return 'help';
  if (positionals.length === 0) throw new UsageError('edit: no image given');
  if (positionals.length > 1) throw new UsageError(`edit: unexpected argument ${JSON.stringify(positionals[1])} (one image per run)`);
  const text = (name: string) => stringFlag(values, name);
  const mode = text('mode');
  if (mode !== undefined && !isEditMode(mode)) throw new UsageError(`edit: --mode must be one of ${EDIT_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  const points = text('points') !== undefined ? parsePoints(text('points')!) : undefined;
  if (text('spec') === undefined && points !== undefined && text('prompt') === undefined) {
    throw new UsageError('edit: --points needs --prompt (what the image shows; it may be "")');
  }
  if (mode === 'text' && points !== undefined) throw new UsageError('edit: --mode text edits by the prompts alone; leave out --points');
  const options: EditCommandOptions = { image: positionals[0]!, json: values.json === true, ...modelSettings('edit', values), parameters: parameterValues('edit', values) };
  if (text('spec') !== undefined) options.spec = text('spec')!;
  if (points) options.points = points;
  if (text('prompt') !== undefined) options.prompt = text('prompt')!;
  if (text('edit-prompt') !== undefined) options.editPrompt = text('edit-prompt')!;
  if (text('mask') !== undefined) options.mask = text('mask')!;
  if (mode !== undefined) options.mode = mode as EditMode;
  if (text('out') !== undefined) options.out = text('out')!;
  return options;
}

/** "hx,hy,tx,ty;hx,hy,tx,ty" → point pairs. */
export function isEditMode(value: string): value is EditMode {
  return (EDIT_MODES as readonly string[]).includes(value);
}

export function parsePoints(text: string): PointPair[] {
  const pairs = text.split(';').filter((part) => part.trim() !== '');
  if (pairs.length === 0) throw new UsageError('edit: --points is empty; expected hx,hy,tx,ty[;...]');
  return pairs.map((part, i) => {
    const numbers = part.split(',').map((v) => Number(v.trim()));
    if (numbers.length !== 4 || numbers.some((n) => !Number.isFinite(n))) {
      throw new UsageError(`edit: --points pair ${i + 1} (${JSON.stringify(part)}) is not four numbers hx,hy,tx,ty`);
    }
    const [hx, hy, tx, ty] = numbers as [number, number, number, number];
    return { handle: [hx, hy], target: [tx, ty] };
  });
}

/** The spec and spec path the options describe (flags override the spec file). */
async function buildSpec(options: EditCommandOptions, imagePath: string): Promise<{ spec: EditSpec; specPath?: string }> {
  let spec: EditSpec;
  let specPath: string | undefined;
  if (options.spec !== undefined) {
    specPath = path.resolve(options.spec);
    spec = await readEditSpecFile(specPath);
  } else if (options.points !== undefined || (options.mode === 'text' && options.prompt !== undefined)) {
    spec = { version: 1, mode: options.mode ?? 'clipdrag', prompt: options.prompt ?? '', points: options.points ?? [] };
  } else {
    spec = await readEditSpecFile(`${imagePath}.clipdrag-edit.json`);
  }
  spec = { ...spec, parameters: { ...spec.parameters } };
  if (options.mode) spec.mode = options.mode;
  if (options.prompt !== undefined) spec.prompt = options.prompt;
  if (options.editPrompt !== undefined) spec.editPrompt = options.editPrompt;
  if (options.points) spec.points = options.points;
  if (options.model !== undefined) spec.model = options.model;
  if (options.clip !== undefined) spec.clipModel = options.clip;
  Object.assign(spec.parameters!, options.parameters);
  if (options.mask !== undefined) {
    const size = await readImageInfo(imagePath);
    spec.mask = encodeMaskRle(await readMaskPng(path.resolve(options.mask), size));
  }
  return { spec, ...(specPath ? { specPath } : {}) };
}

function formatProgress(p: EditProgress): string {
  const parts = [`[${p.stage}${p.total > 0 ? ` ${p.step}/${p.total}` : ''}]`];
  if (p.losses) parts.push(Object.entries(p.losses).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join(', '));
  if (p.handles) parts.push(`handles ${p.handles.map(([x, y]) => `(${x.toFixed(1)}, ${y.toFixed(1)})`).join(' ')}`);
  if (p.etaSeconds !== undefined && p.step < p.total) parts.push(`~${Math.ceil(p.etaSeconds)} s left`);
  if (p.message) parts.push(p.message);
  return parts.join(' ');
}

/** Exit codes: 0 written, 1 failed, 130 cancelled by Ctrl-C (SIGINT), 143 by SIGTERM (128 + the signal's number). */
export async function runEdit(options: EditCommandOptions, io: CliIo, extra: Partial<EditRequest> = {}): Promise<number> {
  const imagePath = path.resolve(options.image);
  const controller = new AbortController();
  let stoppedBy: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    io.err(`clipdrag: ${signal}: cancelling, nothing will be written (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to quit at once)`);
    process.off(signal, onSignal); // a second one gets the default action
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const { spec, specPath } = await buildSpec(options, imagePath);
    const outcome = await edit(
      {
        ...extra,
        imagePath,
        spec,
        ...(specPath ? { specPath } : {}),
        settings: {
          ...(options.modelConfig !== undefined ? { modelConfig: path.resolve(options.modelConfig) } : {}),
          ...(options.device ? { device: options.device } : {}),
          ...(options.precision ? { precision: options.precision } : {}),
          ...(options.memoryPolicy ? { memoryPolicy: options.memoryPolicy } : {}),
        },
        ...(options.out !== undefined ? { outPath: options.out } : {}),
        ...(options.workingWidth !== undefined ? { workingWidth: options.workingWidth } : {}),
      },
      { signal: controller.signal, onProgress: (p) => io.err(formatProgress(p)) },
    );
    if (options.json) {
      io.out(
        JSON.stringify({
          image: outcome.imagePath,
          recipe: outcome.recipePath,
          finalHandles: outcome.finalHandles,
          iterations: outcome.iterations,
          reachedTargets: outcome.reachedTargets,
          timings: outcome.timings,
          executionProvider: outcome.executionProvider,
          loraFromCache: outcome.loraFromCache,
        }),
      );
    } else {
      io.out(outcome.imagePath);
      io.out(outcome.recipePath);
    }
    return 0;
  } catch (error) {
    if (isEditCancelled(error)) {
      io.err(`clipdrag: ${error.message}`);
      return stoppedBy === 'SIGTERM' ? 143 : 130;
    }
    io.err(`clipdrag: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
