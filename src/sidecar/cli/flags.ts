// The CLI's flags as tables: each command lists the flags it takes, `node:util`'s parseArgs reads them, and the
// usage text is printed from the same rows. The edit-parameter flags (`--drag-steps`, `--inference-steps`, …) are
// derived from the parameter definitions, so every parameter of the edit spec can be set from the command line.
import { parseArgs } from 'node:util';
import {
  EDIT_PARAMETER_DEFINITIONS,
  EDIT_PARAMETER_NAMES,
  describeRange,
  type EditParameterName,
  type EditParameters,
  type NumericParameterDefinition,
} from '../../shared/edit-parameters';
import {
  DEVICE_PREFERENCES,
  PRECISION_PREFERENCES,
  isDevicePreference,
  isMemoryPolicyPreference,
  isPrecisionPreference,
  type DevicePreference,
  type MemoryPolicyPreference,
  type PrecisionPreference,
} from '../../shared/protocol';
import { UsageError } from './io';

export interface Flag {
  /** The long name without dashes. */
  name: string;
  type: 'string' | 'boolean';
  /** The value's placeholder in the usage text (`<file>`, `N`). */
  value?: string;
  /** May be given more than once (every value is kept). */
  multiple?: boolean;
  short?: string;
  help: string;
}

export const HELP_FLAG: Flag = { name: 'help', short: 'h', type: 'boolean', help: 'print this help' };
export const JSON_FLAG: Flag = { name: 'json', type: 'boolean', help: 'print one JSON object instead of lines of text' };

export const MODEL_FLAGS: readonly Flag[] = [
  { name: 'model', type: 'string', value: '<repo|dir|file>', help: 'Stable Diffusion 1.5 weights: hub id, diffusers folder or single-file .safetensors' },
  { name: 'model-config', type: 'string', value: '<dir>', help: 'for a single-file --model: a diffusers-layout folder whose unet/, vae/, text_encoder/ config.json replace the configs inferred from the tensors' },
  { name: 'clip', type: 'string', value: '<repo|dir>', help: 'CLIP ViT-B/16 weights' },
  { name: 'device', type: 'string', value: '<ep>', help: DEVICE_PREFERENCES.join(', ') },
  { name: 'precision', type: 'string', value: '<p>', help: 'auto (fp32, or fp16-weights when only that fits), fp32, fp16 (half precision: less GPU memory) or fp16-weights (float16 weights, float32 arithmetic: half the weight memory)' },
  { name: 'memory', type: 'string', value: '<policy>', help: 'auto (chosen from image size, precision and memory), attention or blocks' },
  { name: 'working-width', type: 'string', value: 'N', help: 'width images are edited at, a multiple of 8 (default 512)' },
];

/** `dragSteps` → `drag-steps`. */
export function parameterFlagName(name: EditParameterName): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** Earlier spellings that still work: `--max-iters N` is `--drag-steps N`. */
const PARAMETER_ALIASES: Readonly<Record<string, EditParameterName>> = { 'max-iters': 'dragSteps' };

/** One flag per edit parameter, its help from the definition, plus the aliases and the generic `--param name=value`. */
export const PARAMETER_FLAGS: readonly Flag[] = [
  ...EDIT_PARAMETER_NAMES.map((name): Flag => {
    const definition = EDIT_PARAMETER_DEFINITIONS[name];
    const accepts = definition.kind === 'enum' ? definition.values.join('|') : describeRange(definition as NumericParameterDefinition);
    return { name: parameterFlagName(name), type: 'string', value: definition.kind === 'enum' ? '<rule>' : 'N', help: `${definition.description}: ${accepts} (default ${definition.default})` };
  }),
  ...Object.entries(PARAMETER_ALIASES).map(([alias, name]): Flag => ({ name: alias, type: 'string', value: 'N', help: `same as --${parameterFlagName(name)}` })),
  { name: 'param', type: 'string', multiple: true, value: 'name=value', help: 'any parameter by its spec name, e.g. --param dragSteps=40 (repeatable)' },
];

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Parses `args` against `flags` (plus --help); a mistake becomes a UsageError that names the command. */
export function parseFlags(command: string, args: readonly string[], flags: readonly Flag[]): { values: FlagValues; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const flag of [...flags, HELP_FLAG]) {
    options[flag.name] = { type: flag.type, ...(flag.multiple ? { multiple: true } : {}), ...(flag.short ? { short: flag.short } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
    return { values: values as FlagValues, positionals, help: values.help === true };
  } catch (error) {
    // parseArgs says e.g. "Unknown option '--x'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--x\"" — keep the first sentence.
    const message = error instanceof Error ? error.message.split(/\.\s/)[0]!.replace(/\.$/, '') : String(error);
    throw new UsageError(`${command}: ${message} (see clipdrag ${command} --help)`);
  }
}

/** The usage lines of a flag table, aligned. */
export function describeFlags(flags: readonly Flag[]): string {
  const rows = flags.map((flag) => [`--${flag.name}${flag.value ? ` ${flag.value}` : ''}`, flag.help] as const);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`).join('\n');
}

export function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The model and run settings common to `edit` and `batch`, checked. */
export function modelSettings(
  command: string,
  values: FlagValues,
): { model?: string; modelConfig?: string; clip?: string; device?: DevicePreference; precision?: PrecisionPreference; memoryPolicy?: MemoryPolicyPreference; workingWidth?: number } {
  const out: ReturnType<typeof modelSettings> = {};
  const model = stringFlag(values, 'model');
  if (model !== undefined) out.model = model;
  const modelConfig = stringFlag(values, 'model-config');
  if (modelConfig !== undefined) out.modelConfig = modelConfig;
  const clip = stringFlag(values, 'clip');
  if (clip !== undefined) out.clip = clip;
  const device = stringFlag(values, 'device');
  if (device !== undefined) {
    if (!isDevicePreference(device)) throw new UsageError(`${command}: --device must be one of ${DEVICE_PREFERENCES.join(', ')} (got ${JSON.stringify(device)})`);
    out.device = device;
  }
  const precision = stringFlag(values, 'precision');
  if (precision !== undefined) {
    if (!isPrecisionPreference(precision)) throw new UsageError(`${command}: --precision must be one of ${PRECISION_PREFERENCES.join(', ')} (got ${JSON.stringify(precision)})`);
    out.precision = precision;
  }
  const memory = stringFlag(values, 'memory');
  if (memory !== undefined) {
    if (!isMemoryPolicyPreference(memory)) throw new UsageError(`${command}: --memory must be one of auto, attention, blocks (got ${JSON.stringify(memory)})`);
    out.memoryPolicy = memory;
  }
  const width = stringFlag(values, 'working-width');
  if (width !== undefined) {
    const n = Number(width);
    if (width.trim() === '' || !Number.isSafeInteger(n) || n < 8 || n % 8 !== 0) {
      throw new UsageError(`${command}: --working-width must be a positive multiple of 8 (got ${JSON.stringify(width)})`);
    }
    out.workingWidth = n;
  }
  return out;
}

/** The edit parameters the flags set, each checked against its definition (kind and range). */
export function parameterValues(command: string, values: FlagValues): Partial<EditParameters> {
  const out: Record<string, number | string> = {};
  const set = (name: EditParameterName, raw: string, spelled: string) => {
    out[name] = parameterValue(command, name, raw, spelled);
  };
  for (const text of (values.param as string[] | undefined) ?? []) {
    const eq = text.indexOf('=');
    const name = text.slice(0, Math.max(eq, 0)).trim();
    if (eq < 0 || !(EDIT_PARAMETER_NAMES as string[]).includes(name)) {
      throw new UsageError(`${command}: --param expects name=value with one of ${EDIT_PARAMETER_NAMES.join(', ')} (got ${JSON.stringify(text)})`);
    }
    set(name as EditParameterName, text.slice(eq + 1).trim(), `--param ${name}`);
  }
  for (const [alias, name] of Object.entries(PARAMETER_ALIASES)) {
    const raw = stringFlag(values, alias);
    if (raw !== undefined) set(name, raw, `--${alias}`);
  }
  // The parameter's own flag wins over an alias or --param naming the same parameter.
  for (const name of EDIT_PARAMETER_NAMES) {
    const raw = stringFlag(values, parameterFlagName(name));
    if (raw !== undefined) set(name, raw, `--${parameterFlagName(name)}`);
  }
  return out as Partial<EditParameters>;
}

function parameterValue(command: string, name: EditParameterName, raw: string, spelled: string): number | string {
  const definition = EDIT_PARAMETER_DEFINITIONS[name];
  if (definition.kind === 'enum') {
    if ((definition.values as readonly string[]).includes(raw)) return raw;
    throw new UsageError(`${command}: ${spelled} must be one of ${definition.values.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  const numeric = definition as NumericParameterDefinition;
  const value = Number(raw);
  const belowMin = numeric.minExclusive ? value <= numeric.min : value < numeric.min;
  if (raw.trim() === '' || !Number.isFinite(value) || (numeric.kind === 'integer' && !Number.isInteger(value)) || belowMin || value > numeric.max) {
    throw new UsageError(`${command}: ${spelled} must be ${describeRange(numeric)} (${numeric.description}; got ${JSON.stringify(raw)})`);
  }
  return value;
}
