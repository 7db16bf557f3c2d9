// The JSON-RPC protocol between the extension and the sidecar process (vscode-jsonrpc over stdio).
// Only types and method descriptors live here: both processes import this file, and so does the
// webview's type-check, so nothing node-only may be imported.
import { RequestType, RequestType0 } from 'vscode-jsonrpc';

/** The extension sets this to its own pid, so the sidecar notices when the extension host is gone. */
export const SIDECAR_PARENT_PID_ENV = 'CLIPDRAG_PARENT_PID';

/** Device preference as the user sets it (`clipdrag.device`). `auto` picks the best available provider. */
export const DEVICE_PREFERENCES = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export type DevicePreference = (typeof DEVICE_PREFERENCES)[number];

export function isDevicePreference(value: unknown): value is DevicePreference {
  return typeof value === 'string' && (DEVICE_PREFERENCES as readonly string[]).includes(value);
}

/** One execution provider that onnxruntime-node offers on this machine, and whether it can run. */
export interface ExecutionProviderReport {
  /** onnxruntime's name for it: cpu, cuda, webgpu, dml, coreml, tensorrt, ... */
  name: string;
  /** Ships inside the onnxruntime-node package. */
  bundled: boolean;
  /** Its provider libraries are present (always true for bundled ones). */
  installed: boolean;
  /** A session on this provider could actually be created here. */
  usable: boolean;
  /** Why it is not usable, and what to do about it. */
  problem?: string;
}

/** The provider the engine will use for the requested preference, or why the request cannot be met. */
export type ExecutionProviderChoiceReport =
  | { ok: true; preference: DevicePreference; provider: string; reason: string }
  | { ok: false; preference: DevicePreference; error: string };

export interface InitializeParams {
  /** Who is asking, for the sidecar's log ("CLIPDrag VS Code extension 0.1.0"). */
  client: string;
  devicePreference: DevicePreference;
}

export interface InitializeResult {
  /** Version of the sidecar (the extension's package version). */
  version: string;
  pid: number;
  nodeVersion: string;
  onnxruntimeVersion: string;
  executionProviders: ExecutionProviderReport[];
  executionProvider: ExecutionProviderChoiceReport;
}

/** `initialize`: the first request after spawning; reports versions and the execution provider choice. */
export const InitializeRequest = new RequestType<InitializeParams, InitializeResult, void>('initialize');

/** `shutdown`: the sidecar answers, then closes its connection and exits. */
export const ShutdownRequest = new RequestType0<void, void>('shutdown');

/** Error codes of ResponseErrors the sidecar sends (JSON-RPC reserves -32768..-32000 for itself). */
export const SidecarErrorCodes = {
  /** The request was cancelled through `$/cancelRequest` (same number LSP uses). */
  RequestCancelled: -32800,
} as const;
