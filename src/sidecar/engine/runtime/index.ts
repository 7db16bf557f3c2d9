/** Compile and run engine graphs on onnxruntime-node, in a worker thread, on a chosen execution provider. */
export { Engine, EngineWorkerError, type CompiledGraph, type EngineOptions, type RunOptions } from './engine';
export { SessionStore, SessionCreationError, GraphRunError, defaultCacheDir, type RunResult } from './sessions';
export { ExternalWeightsError } from './model-folder';
export { FeedError } from './tensors';
export {
  chooseExecutionProvider,
  listExecutionProviders,
  probeExecutionProviders,
  ExecutionProviderUnavailableError,
  type DevicePreference,
  type ExecutionProviderChoice,
  type ExecutionProviderInfo,
  type ExecutionProviderStatus,
} from './providers';
export * from './types';
