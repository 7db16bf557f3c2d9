// `clipdrag doctor`: what onnxruntime-node offers on this machine and which provider would be used.
import { DEVICE_PREFERENCES, type DevicePreference } from '../../shared/protocol';
import { ExecutionProviderUnavailableError, chooseExecutionProvider, onnxruntimeBinaryFolder, onnxruntimeVersion, probeExecutionProviders } from '../engine/runtime/providers';
import { SIDECAR_VERSION } from '../version';
import { JSON_FLAG, describeFlags, modelSettings, parseFlags, type Flag } from './flags';
import { UsageError, type CliIo } from './io';

export interface DoctorOptions {
  device: DevicePreference;
  json: boolean;
}

const DOCTOR_FLAGS: readonly Flag[] = [
  { name: 'device', type: 'string', value: '<ep>', help: `the device to check: ${DEVICE_PREFERENCES.join(', ')} (default auto)` },
  { ...JSON_FLAG, help: 'print the facts as one JSON object' },
];

export const DOCTOR_USAGE = `clipdrag doctor [options]
  lists the onnxruntime execution providers on this machine and the one that would be used
${describeFlags(DOCTOR_FLAGS)}`;

/** The options, or `'help'` when --help was asked for. */
export function parseDoctorOptions(args: readonly string[]): DoctorOptions | 'help' {
  const { values, positionals, help } = parseFlags('doctor', args, DOCTOR_FLAGS);
  if (help) return 'help';
  if (positionals.length > 0) throw new UsageError(`doctor: unexpected argument ${JSON.stringify(positionals[0])}`);
  const { device = 'auto' } = modelSettings('doctor', values);
  return { device, json: values.json === true };
}

/** Exit code 0 when the requested device can be used, 1 when it cannot (the report says why). */
export async function runDoctor(options: DoctorOptions, io: CliIo): Promise<number> {
  const providers = await probeExecutionProviders();
  let choice: { ok: true; provider: string; reason: string } | { ok: false; error: string };
  try {
    choice = { ok: true, ...(await chooseExecutionProvider(options.device)) };
  } catch (error) {
    if (!(error instanceof ExecutionProviderUnavailableError)) throw error;
    choice = { ok: false, error: error.message };
  }
  if (options.json) {
    io.out(JSON.stringify({ version: SIDECAR_VERSION, node: process.version, platform: `${process.platform}/${process.arch}`, onnxruntime: onnxruntimeVersion(), providers, device: options.device, choice }, null, 2));
    return choice.ok ? 0 : 1;
  }
  io.out(`clipdrag ${SIDECAR_VERSION} (Node ${process.version}, ${process.platform}/${process.arch})`);
  io.out(`onnxruntime-node ${onnxruntimeVersion()} (${onnxruntimeBinaryFolder()})`);
  io.out('');
  io.out('Execution providers:');
  const width = Math.max(...providers.map((p) => p.name.length));
  for (const p of providers) {
    const packaging = p.bundled ? 'bundled' : p.installed ? 'installed' : 'not installed';
    io.out(`  ${p.name.padEnd(width)}  ${packaging.padEnd(13)}  ${p.usable ? 'usable' : `not usable: ${p.problem}`}`);
  }
  io.out('');
  if (choice.ok) io.out(`Device "${options.device}" would use: ${choice.provider} (${choice.reason})`);
  else io.err(`Device "${options.device}" cannot be used: ${choice.error}`);
  return choice.ok ? 0 : 1;
}
