// The sidecar's RPC front door: vscode-jsonrpc over a pair of streams (stdin/stdout in production).
import type { Readable, Writable } from 'node:stream';
import { ErrorCodes, ResponseError, StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import {
  InitializeRequest,
  ShutdownRequest,
  isDevicePreference,
  type DevicePreference,
  type ExecutionProviderChoiceReport,
  type InitializeParams,
  type InitializeResult,
} from '../../shared/protocol';
import { ExecutionProviderUnavailableError, onnxruntimeVersion, probeExecutionProviders, selectExecutionProvider } from '../engine/runtime/providers';
import type { Logger } from '../log';
import { defaultPipelineCacheDir } from '../pipeline/runtime/cache-dir';
import { SIDECAR_VERSION } from '../version';
import { registerBatchHandlers } from './batch-handlers';
import { registerEvalHandlers } from './eval-handlers';
import { DeviceQueue } from './front-door';
import { registerPipelineHandlers } from './pipeline-handlers';

export interface RpcServerOptions {
  input: Readable;
  output: Writable;
  log: Logger;
  /** Called once when the server is done: after `shutdown` + end of input, or when the input closes. */
  onExit: (code: number) => void;
}

/** How long the sidecar waits, after answering `shutdown`, for the client to close its input. */
const SHUTDOWN_GRACE_MS = 2000;

export function startRpcServer({ input, output, log, onExit }: RpcServerOptions): MessageConnection {
  const connection = createMessageConnection(new StreamMessageReader(input), new StreamMessageWriter(output));
  let exited = false;
  const exit = (code: number, why: string) => {
    if (exited) return;
    exited = true;
    log.info(`exiting (${why})`);
    connection.dispose();
    onExit(code);
  };

  let devicePreference: DevicePreference = 'auto';
  connection.onRequest(InitializeRequest, async (params) => {
    if (!params || !isDevicePreference(params.devicePreference)) {
      throw new ResponseError(ErrorCodes.InvalidParams, `initialize: devicePreference must be one of auto, cpu, cuda, webgpu, dml, coreml (got ${JSON.stringify(params?.devicePreference)})`);
    }
    log.info(`initialize from ${params.client}; device preference: ${params.devicePreference}; cache folder: ${defaultPipelineCacheDir()}`);
    devicePreference = params.devicePreference;
    return initialize(params, log);
  });

  connection.onRequest(ShutdownRequest, () => {
    log.info('shutdown requested');
    // The client closes our input once it has the answer; exit anyway if it does not.
    setTimeout(() => exit(0, 'shutdown'), SHUTDOWN_GRACE_MS).unref();
  });

  // One queue for everything that runs on the device: an edit asked for during a batch waits for it (and v.v.).
  const queue = new DeviceQueue();
  registerPipelineHandlers(connection, { log, queue, devicePreference: () => devicePreference });
  registerBatchHandlers(connection, { log, queue, devicePreference: () => devicePreference });
  registerEvalHandlers(connection, { log, queue, devicePreference: () => devicePreference });

  connection.onClose(() => exit(0, 'input closed'));
  connection.onError(([error]) => log.error(`protocol error: ${error.message}`));
  connection.listen();
  return connection;
}

async function initialize(params: InitializeParams, log: Logger): Promise<InitializeResult> {
  const providers = await probeExecutionProviders();
  let executionProvider: ExecutionProviderChoiceReport;
  try {
    const choice = selectExecutionProvider(params.devicePreference, providers);
    executionProvider = { ok: true, preference: params.devicePreference, ...choice };
    log.info(`execution provider: ${choice.provider} (${choice.reason})`);
  } catch (error) {
    if (!(error instanceof ExecutionProviderUnavailableError)) throw error;
    executionProvider = { ok: false, preference: params.devicePreference, error: error.message };
    log.warn(error.message);
  }
  return {
    version: SIDECAR_VERSION,
    pid: process.pid,
    nodeVersion: process.version,
    onnxruntimeVersion: onnxruntimeVersion(),
    executionProviders: providers.map(({ name, bundled, installed, usable, problem }) => ({ name, bundled, installed, usable, ...(problem ? { problem } : {}) })),
    executionProvider,
  };
}
