// `clipdrag doctor`: what onnxruntime-node offers on this machine and which provider would be used.
import { isDevicePreference, type DevicePreference } from '../../shared/protocol';
import { ExecutionProviderUnavailableError, chooseExecutionProvider, onnxruntimeBinaryFolder, onnxruntimeVersion, probeExecutionProviders } from '../engine/runtime/providers';
import { SIDECAR_VERSION } from '../version';
import { UsageError, type CliIo } from './io';

export interface DoctorOptions {
  device: DevicePreference;
  json: boolean;
}

export function parseDoctorOptions(args: string[]): DoctorOptions {
  const options: DoctorOptions = { device: 'auto', json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--json') options.json = true;
    else if (arg === '--device' || arg.startsWith('--device=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[++i];
      if (!isDevicePreference(value)) throw new UsageError(`--device must be one of auto, cpu, cuda, webgpu, dml, coreml (got ${JSON.stringify(value ?? '')})`);
      options.device = value;
    } else throw new UsageError(`doctor: unknown option ${arg}`);
  }
  return options;
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
