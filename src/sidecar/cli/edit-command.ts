// `clipdrag edit`: one edit from the command line. The spec comes from --spec (or the image's saved spec
// file), or is built from --points/--prompt; flags override it. Progress goes to stderr, the result's paths
// to stdout (with --json: one JSON object). Ctrl-C or SIGTERM cancels (nothing is written).
import * as path from 'node:path';
import { encodeMaskRle, type EditMode, type EditSpec, type PointPair } from '../../shared/edit-spec';
import { isDevicePreference, isPrecisionPreference, type DevicePreference, type EditProgress, type PrecisionPreference } from '../../shared/protocol';
import { readImageInfo, readMaskPng } from '../io/image';
import { readEditSpecFile } from '../io/spec-file';
import { isEditCancelled } from '../pipeline/edit/cancellation';
import { edit, type EditRequest } from '../pipeline/edit/edit';
import { UsageError, type CliIo } from './io';

export const EDIT_USAGE = `clipdrag edit <image> [--spec <file> | --points hx,hy,tx,ty[;...] --prompt <text>] [options]
  --spec <file>          edit spec JSON (default: <image>.clipdrag-edit.json when no --points are given)
  --points <list>        handle → target pairs in image pixels: hx,hy,tx,ty separated by ";"
  --prompt <text>        what the image shows (LoRA, inversion and denoising prompt)
  --edit-prompt <text>   what it should become (CLIP guidance text; default: the prompt)
  --mask <png>           editable region (white = editable)
  --mode drag|clipdrag   drag: DragDiffusion (no CLIP term); clipdrag (default): with CLIP guidance
  --model <repo|dir>     Stable Diffusion 1.5 weights (hub id or folder)
  --clip <repo|dir>      CLIP ViT-B/16 weights
  --device <ep>          auto, cpu, cuda, webgpu, dml or coreml
  --precision <p>        auto (fp32), fp32 or fp16 (half precision: less GPU memory)
  --seed N  --lora-steps N  --max-iters N  --working-width N
  --out <file.png>       write the result here (recipe beside it) instead of <name>.clipdrag.png
  --json                 print one JSON object with the result instead of the paths`;

export interface EditCommandOptions {
  image: string;
  spec?: string;
  points?: PointPair[];
  prompt?: string;
  editPrompt?: string;
  mask?: string;
  mode?: EditMode;
  model?: string;
  clip?: string;
  device?: DevicePreference;
  precision?: PrecisionPreference;
  seed?: number;
  loraSteps?: number;
  maxIters?: number;
  workingWidth?: number;
  out?: string;
  json: boolean;
}

const VALUE_FLAGS = ['--spec', '--points', '--prompt', '--edit-prompt', '--mask', '--mode', '--model', '--clip', '--device', '--precision', '--seed', '--lora-steps', '--max-iters', '--working-width', '--out'] as const;

export function parseEditOptions(args: readonly string[]): EditCommandOptions {
  let image: string | undefined;
  const values = new Map<string, string>();
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--json') json = true;
    else if (arg.startsWith('--')) {
      const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
      if (!(VALUE_FLAGS as readonly string[]).includes(flag)) throw new UsageError(`edit: unknown option ${flag}`);
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`edit: ${flag} needs a value`);
      values.set(flag, value);
    } else if (image === undefined) image = arg;
    else throw new UsageError(`edit: unexpected argument ${JSON.stringify(arg)} (one image per run)`);
  }
  if (image === undefined) throw new UsageError('edit: no image given');
  const integer = (flag: string, min: number): number | undefined => {
    const text = values.get(flag);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`edit: ${flag} must be an integer ≥ ${min} (got ${JSON.stringify(text)})`);
    return n;
  };
  const mode = values.get('--mode');
  if (mode !== undefined && mode !== 'drag' && mode !== 'clipdrag') throw new UsageError(`edit: --mode must be drag or clipdrag (got ${JSON.stringify(mode)})`);
  const device = values.get('--device');
  if (device !== undefined && !isDevicePreference(device)) throw new UsageError(`edit: --device must be one of auto, cpu, cuda, webgpu, dml, coreml (got ${JSON.stringify(device)})`);
  const precision = values.get('--precision');
  if (precision !== undefined && !isPrecisionPreference(precision)) throw new UsageError(`edit: --precision must be one of auto, fp32, fp16 (got ${JSON.stringify(precision)})`);
  const points = values.has('--points') ? parsePoints(values.get('--points')!) : undefined;
  if (values.has('--spec') === false && points !== undefined && !values.has('--prompt')) {
    throw new UsageError('edit: --points needs --prompt (what the image shows; it may be "")');
  }
  const options: EditCommandOptions = { image, json };
  const text = (flag: string) => values.get(flag);
  if (text('--spec') !== undefined) options.spec = text('--spec')!;
  if (points) options.points = points;
  if (text('--prompt') !== undefined) options.prompt = text('--prompt')!;
  if (text('--edit-prompt') !== undefined) options.editPrompt = text('--edit-prompt')!;
  if (text('--mask') !== undefined) options.mask = text('--mask')!;
  if (mode) options.mode = mode;
  if (text('--model') !== undefined) options.model = text('--model')!;
  if (text('--clip') !== undefined) options.clip = text('--clip')!;
  if (device) options.device = device;
  if (precision) options.precision = precision;
  const seed = integer('--seed', 0);
  if (seed !== undefined) options.seed = seed;
  const loraSteps = integer('--lora-steps', 0);
  if (loraSteps !== undefined) options.loraSteps = loraSteps;
  const maxIters = integer('--max-iters', 0);
  if (maxIters !== undefined) options.maxIters = maxIters;
  const workingWidth = integer('--working-width', 8);
  if (workingWidth !== undefined) {
    if (workingWidth % 8 !== 0) throw new UsageError(`edit: --working-width must be a multiple of 8 (got ${workingWidth})`);
    options.workingWidth = workingWidth;
  }
  if (text('--out') !== undefined) options.out = text('--out')!;
  return options;
}

/** "hx,hy,tx,ty;hx,hy,tx,ty" → point pairs. */
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
  } else if (options.points !== undefined) {
    spec = { version: 1, mode: options.mode ?? 'clipdrag', prompt: options.prompt ?? '', points: options.points };
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
  if (options.seed !== undefined) spec.parameters!.seed = options.seed;
  if (options.loraSteps !== undefined) spec.parameters!.loraSteps = options.loraSteps;
  if (options.maxIters !== undefined) spec.parameters!.dragSteps = options.maxIters;
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
        settings: { ...(options.device ? { device: options.device } : {}), ...(options.precision ? { precision: options.precision } : {}) },
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
