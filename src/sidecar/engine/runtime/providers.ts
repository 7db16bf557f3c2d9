// Which onnxruntime execution providers (EPs) exist on this machine, which of them can really run,
// and which one a device preference resolves to. A provider that was asked for explicitly and cannot
// run is an error that says what is missing: the engine never falls back to the CPU silently.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

/** What the user can ask for. `auto` takes the best provider that actually works here. */
export type DevicePreference = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';

/** `auto` tries these in order and takes the first one that works. */
export const AUTO_PRIORITY: readonly string[] = ['cuda', 'dml', 'webgpu', 'coreml', 'cpu'];

export interface ExecutionProviderInfo {
  /** onnxruntime's name: cpu, cuda, webgpu, dml, coreml, tensorrt, ... */
  name: string;
  /** Ships inside the onnxruntime-node package. */
  bundled: boolean;
  /** Its provider libraries are present next to onnxruntime's binding (bundled ones always are). */
  installed: boolean;
}

export interface ExecutionProviderStatus extends ExecutionProviderInfo {
  /** A session on this provider could be created here (probed with a one-node model). */
  usable: boolean;
  /** Why it is not usable, and what to do about it. */
  problem?: string;
}

export interface ExecutionProviderChoice {
  provider: string;
  /** One line for logs and `clipdrag doctor`: why this provider. */
  reason: string;
}

export class ExecutionProviderUnavailableError extends Error {
  constructor(
    readonly preference: DevicePreference,
    message: string,
  ) {
    super(message);
    this.name = 'ExecutionProviderUnavailableError';
  }
}

const PLATFORM = `${process.platform}/${process.arch}`;
const GPU_DOC = 'docs/gpu.md in the CLIPDrag repository';

/** Provider libraries onnxruntime-node does not ship in its npm package (its install script fetches them). */
function separatelyInstalledLibraries(name: string): string[] | undefined {
  const lib = (base: string) => (process.platform === 'win32' ? `${base}.dll` : `lib${base}.so`);
  if (name === 'cuda') return [lib('onnxruntime_providers_cuda'), lib('onnxruntime_providers_shared')];
  if (name === 'tensorrt') return [lib('onnxruntime_providers_tensorrt'), lib('onnxruntime_providers_shared')];
  return undefined;
}

/** The folder holding onnxruntime-node's native binding and any separately installed provider libraries. */
export function onnxruntimeBinaryFolder(): string {
  const packageRoot = path.resolve(path.dirname(require.resolve('onnxruntime-node')), '..');
  return path.join(packageRoot, 'bin', 'napi-v6', process.platform, process.arch);
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** The providers onnxruntime-node was built with on this platform, and whether their libraries are present. */
export function listExecutionProviders(): ExecutionProviderInfo[] {
  const folder = onnxruntimeBinaryFolder();
  return ort.listSupportedBackends().map(({ name, bundled }) => {
    const libraries = separatelyInstalledLibraries(name);
    const installed = bundled || (libraries !== undefined && libraries.every((file) => fs.existsSync(path.join(folder, file))));
    return { name, bundled, installed };
  });
}

// A valid ONNX model with one Identity node (float32[1] -> float32[1]), encoded by hand so this file
// depends on nothing but onnxruntime: creating a session on it is the cheapest real test of a provider.
function encodeProbeModel(): Uint8Array {
  const varint = (value: number): number[] => {
    const bytes: number[] = [];
    while (value > 0x7f) {
      bytes.push((value & 0x7f) | 0x80);
      value >>>= 7;
    }
    bytes.push(value);
    return bytes;
  };
  const int = (field: number, value: number) => [...varint(field << 3), ...varint(value)];
  const message = (field: number, body: number[]) => [...varint((field << 3) | 2), ...varint(body.length), ...body];
  const text = (field: number, value: string) => message(field, [...Buffer.from(value, 'utf8')]);
  // TypeProto.tensor_type { elem_type: FLOAT, shape { dim { dim_value: 1 } } }
  const floatVector = message(2, message(1, [...int(1, 1), ...message(2, message(1, int(1, 1)))]));
  const valueInfo = (name: string) => [...text(1, name), ...floatVector];
  const node = [...text(1, 'x'), ...text(2, 'y'), ...text(4, 'Identity')];
  const graph = [...message(1, node), ...text(2, 'ep-probe'), ...message(11, valueInfo('x')), ...message(12, valueInfo('y'))];
  // ModelProto { ir_version: 8, opset_import { domain: "", version: 13 }, graph }
  return Uint8Array.from([...int(1, 8), ...message(8, [...text(1, ''), ...int(2, 13)]), ...message(7, graph)]);
}

/** CoreML's ML Program model format (COREML_FLAG_CREATE_MLPROGRAM): more operators and float16, unlike the older NeuralNetwork format. */
const COREML_CREATE_MLPROGRAM = 0x010;

/** How sessions name a provider: CoreML compiles to an ML Program; every other provider with its defaults. */
export function executionProviderOption(name: string): ort.InferenceSession.ExecutionProviderConfig {
  if (name === 'coreml') return { name: 'coreml', coreMlFlags: COREML_CREATE_MLPROGRAM };
  return name;
}

let probeModel: Uint8Array | undefined;

/** Creates (and releases) a session on exactly this provider; resolves to the error message if that fails. */
async function probe(name: string): Promise<string | undefined> {
  probeModel ??= encodeProbeModel();
  if (PROBED_OUT_OF_PROCESS.has(name)) return probeInChildProcess(name, probeModel);
  try {
    const session = await ort.InferenceSession.create(probeModel, { executionProviders: [executionProviderOption(name)], logSeverityLevel: 3 });
    await session.release();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Providers probed in a child process: Dawn (WebGPU) writes its adapter diagnostics ("Couldn't load Vulkan", ...)
 * straight to the process's stderr, where they would land in every command's output. In a child they are captured
 * and become part of the reason the provider is not usable; a driver that crashes takes only the child down.
 */
const PROBED_OUT_OF_PROCESS = new Set(['webgpu']);

const CHILD_PROBE = `
const [ortPath, name, model] = process.argv.slice(-3);
require(ortPath).InferenceSession.create(Buffer.from(model, 'base64'), { executionProviders: [name], logSeverityLevel: 3 })
  .then((session) => session.release())
  .then(() => process.stdout.write('{}'), (error) => process.stdout.write(JSON.stringify({ error: String(error && error.message || error) })));
`;

function probeInChildProcess(name: string, model: Uint8Array): Promise<string | undefined> {
  const args = ['-e', CHILD_PROBE, require.resolve('onnxruntime-node'), name, Buffer.from(model).toString('base64')];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 60_000, windowsHide: true }, (error, stdout, stderr) => {
      const lines = [...new Set(stderr.split('\n').map((line) => line.trim()))].filter((line) => line !== '' && !line.startsWith('at ') && !line.startsWith('- '));
      // Dawn's own lines say why (no Vulkan loader, a driver lacking a feature); others are library chatter.
      const telling = lines.filter((line) => /vulkan|dawn|adapter|d3d|metal|gpu/i.test(line));
      const diagnostics = (telling.length > 0 ? telling : lines).slice(0, 2);
      const native = diagnostics.length > 0 ? `; the driver said: ${diagnostics.join(' ')}` : '';
      let reported: { error?: string } | undefined;
      try {
        reported = JSON.parse(stdout) as { error?: string };
      } catch {
        reported = undefined;
      }
      if (reported && reported.error === undefined) resolve(undefined);
      else if (reported?.error !== undefined) resolve(`${conciseOrtMessage(reported.error)}${native}`);
      else resolve(`the probe process failed (${error?.signal ?? error?.message ?? 'no answer'})${native}`);
    });
  });
}

/** onnxruntime's messages start with a source location and a failed condition; keep the human part. */
function conciseOrtMessage(message: string): string {
  const firstLine = message.split('\n')[0].trim();
  const afterCondition = / was false\. (.+)$/.exec(firstLine);
  return afterCondition ? afterCondition[1] : firstLine;
}

function explainProblem(info: ExecutionProviderInfo, probeError: string): string {
  const firstLine = conciseOrtMessage(probeError);
  const title = info.name === 'cuda' ? 'CUDA' : 'TensorRT';
  switch (info.name) {
    case 'cuda':
    case 'tensorrt':
      if (!info.installed) {
        return (
          `the ${title} provider libraries (${separatelyInstalledLibraries(info.name)?.join(', ')}) are not installed in ` +
          `${onnxruntimeBinaryFolder()}: onnxruntime-node does not ship them in its npm package. In VS Code run ` +
          `"CLIPDrag: Install CUDA Support"; in a clone, re-run onnxruntime-node's install script with ONNXRUNTIME_NODE_INSTALL=cuda12 (see ${GPU_DOC})`
        );
      }
      return (
        `the ${title} provider is installed but could not start (${firstLine}). It needs an NVIDIA GPU with a current ` +
        `driver and the CUDA 12 and cuDNN 9 runtime libraries on the library path (see ${GPU_DOC})`
      );
    case 'webgpu':
      return `no usable WebGPU adapter (${firstLine}). WebGPU needs a GPU with Vulkan (Linux), Direct3D 12 (Windows) or Metal (macOS) drivers`;
    default:
      return `it could not start (${firstLine})`;
  }
}

const statusCache = new Map<string, Promise<ExecutionProviderStatus>>();

async function probeStatus(info: ExecutionProviderInfo): Promise<ExecutionProviderStatus> {
  // A provider whose libraries are absent cannot work; onnxruntime would only log a load failure.
  const error = info.installed ? await probe(info.name) : 'provider libraries not installed';
  return error === undefined ? { ...info, usable: true } : { ...info, usable: false, problem: explainProblem(info, error) };
}

function cachedStatus(info: ExecutionProviderInfo): Promise<ExecutionProviderStatus> {
  const key = `${info.name}:${info.installed}`;
  let status = statusCache.get(key);
  if (!status) statusCache.set(key, (status = probeStatus(info)));
  return status;
}

/** Every provider onnxruntime-node offers here, each probed once per process (probing loads GPU drivers). */
export async function probeExecutionProviders(): Promise<ExecutionProviderStatus[]> {
  return Promise.all(listExecutionProviders().map(cachedStatus));
}

function notOffered(preference: string): string {
  const where: Record<string, string> = {
    dml: 'DirectML is available on Windows only',
    coreml: 'CoreML is available on macOS only',
    cuda: 'onnxruntime-node offers CUDA on Linux x64 only (Windows: DirectML or WebGPU; macOS: CoreML or WebGPU)',
    webgpu: 'this onnxruntime-node build has no WebGPU support on this platform',
  };
  return where[preference] ?? 'onnxruntime-node has no such provider';
}

/**
 * Resolves a preference against provider statuses (pure: the statuses decide, so it can be checked
 * against any machine's situation). Throws ExecutionProviderUnavailableError when nothing fits.
 */
export function selectExecutionProvider(
  preference: DevicePreference,
  statuses: readonly ExecutionProviderStatus[],
  /** Every provider offered here, probed or not (default: those in `statuses`). */
  offeredProviders: readonly ExecutionProviderInfo[] = statuses,
): ExecutionProviderChoice {
  const alternatives = () => {
    const usable = statuses.filter((s) => s.usable).map((s) => s.name);
    return usable.length > 0 ? `Usable here: ${usable.join(', ')}; choose one of those or "auto".` : 'No provider is usable here.';
  };
  if (preference === 'auto') {
    for (const name of AUTO_PRIORITY) {
      const status = statuses.find((s) => s.name === name);
      if (status?.usable) {
        const skipped = AUTO_PRIORITY.slice(0, AUTO_PRIORITY.indexOf(name)).filter((n) => statuses.some((s) => s.name === n));
        return { provider: name, reason: skipped.length > 0 ? `auto: ${skipped.join(', ')} not usable, ${name} is` : `auto: ${name} is the best provider here` };
      }
    }
    const problems = statuses.map((s) => `${s.name}: ${s.problem ?? 'not usable'}`).join('; ');
    throw new ExecutionProviderUnavailableError(preference, `No onnxruntime execution provider can run on this machine (${problems}).`);
  }
  const status = statuses.find((s) => s.name === preference);
  if (!status) {
    const offered = offeredProviders.map((s) => s.name).join(', ');
    throw new ExecutionProviderUnavailableError(
      preference,
      `The "${preference}" device is not available: onnxruntime-node ${onnxruntimeVersion()} offers no ${preference} execution provider on ${PLATFORM} ` +
        `(it offers: ${offered}); ${notOffered(preference)}. ${alternatives()}`,
    );
  }
  if (!status.usable) {
    throw new ExecutionProviderUnavailableError(preference, `The "${preference}" device is not available: ${status.problem ?? 'it could not start'}. ${alternatives()}`);
  }
  return { provider: preference, reason: `requested explicitly` };
}

/**
 * The provider that would be used for this preference on this machine. Only candidates are probed: the provider
 * asked for (and the CPU, for the alternatives an error lists), or for `auto` the providers in priority order up to
 * the first usable one. Probing loads GPU drivers; one that is not a candidate is left alone.
 */
export async function chooseExecutionProvider(preference: DevicePreference): Promise<ExecutionProviderChoice> {
  const offered = listExecutionProviders();
  const candidates = preference === 'auto' ? AUTO_PRIORITY : [preference, 'cpu'];
  const statuses: ExecutionProviderStatus[] = [];
  for (const name of candidates) {
    const info = offered.find((i) => i.name === name);
    if (!info) continue;
    const status = await cachedStatus(info);
    statuses.push(status);
    if (preference === 'auto' && status.usable) break;
  }
  return selectExecutionProvider(preference, statuses, offered);
}
