/** The messages between the engine client (main thread) and the engine worker. */
import type { SerializedModel } from '../onnx/serialize';
import type { CompileOptions, CompiledGraphInfo, Feeds, NodePlacement, Outputs, ResidentWeights } from './types';

/** What the worker is started with (`workerData`). */
export interface WorkerStart {
  readonly cacheDir: string;
}

export type WorkerRequest =
  | { readonly id: number; readonly type: 'compile'; readonly handle: number; readonly model: SerializedModel; readonly options: CompileOptions }
  | { readonly id: number; readonly type: 'run'; readonly handle: number; readonly feeds: Feeds; readonly outputNames?: readonly string[] }
  | { readonly id: number; readonly type: 'release'; readonly handle: number }
  | { readonly id: number; readonly type: 'weights' }
  /** Releases every session; the worker then has nothing left and may be stopped. */
  | { readonly id: number; readonly type: 'close' };

export interface WorkerResults {
  compile: CompiledGraphInfo;
  run: { readonly outputs: Outputs; readonly nodePlacement?: NodePlacement };
  release: null;
  weights: readonly ResidentWeights[];
  close: null;
}

/** An Error, flattened for postMessage (structured clone keeps only the message of Error subclasses). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly result: WorkerResults[keyof WorkerResults] }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { name: 'Error', message: String(error) };
}

/** Rebuilds a worker's error in this thread, keeping its name and message and both stacks. */
export function deserializeError(error: SerializedError, callerStack?: string): Error {
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  const workerStack = error.stack ? `\n  in the engine worker:\n${error.stack.split('\n').slice(1).join('\n')}` : '';
  rebuilt.stack = `${error.name}: ${error.message}${workerStack}${callerStack ? `\n  called from:\n${callerStack.split('\n').slice(1).join('\n')}` : ''}`;
  return rebuilt;
}
