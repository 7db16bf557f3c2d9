// The one error type of the model store. `code` lets callers (RPC, VS Code command) react without parsing text;
// `message` is written for the person who has to fix the problem.
import type { ErrorKind } from '../../shared/error-kind';

export type ModelStoreErrorCode =
  /** The model string is neither a usable folder nor a valid `owner/name[@revision]`. */
  | 'INVALID_SOURCE'
  /** The hub cannot be reached (or offline mode is on) and the model is not in the cache. */
  | 'OFFLINE'
  /** 401/403: private or gated repo without (sufficient) token, or license not accepted. */
  | 'UNAUTHORIZED'
  /** 404: repo, revision or file does not exist. */
  | 'NOT_FOUND'
  /** The repo, cache snapshot or folder lacks files the model needs (or only has pickle weights). */
  | 'MISSING_FILES'
  /** Not enough disk space (checked before downloading, or ENOSPC while writing). */
  | 'DISK_FULL'
  /** A file's hash differs from the one the hub publishes. */
  | 'CORRUPT'
  /** The caller's AbortSignal fired. Partial downloads are kept and resume next time. */
  | 'CANCELLED'
  /** The connection broke or stalled and retries ran out, or the hub answered with a server error. */
  | 'NETWORK';

export class ModelStoreError extends Error {
  override readonly name = 'ModelStoreError';
  /** Whatever the code, the models are not available: the front doors answer by this kind. */
  readonly kind: ErrorKind = 'model-unavailable';
  constructor(
    readonly code: ModelStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isModelStoreError(error: unknown, code?: ModelStoreErrorCode): error is ModelStoreError {
  return error instanceof ModelStoreError && (code === undefined || error.code === code);
}

export function cancelledError(what: string): ModelStoreError {
  return new ModelStoreError('CANCELLED', `${what} was cancelled`);
}

/** Throws CANCELLED when the signal has fired; call between steps of long work. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw cancelledError(what);
}

/** 1536 → "1.5 KiB"; used in messages so sizes read the same everywhere. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The `code` of a Node system error (ENOSPC, ENOENT, ...), if it is one. */
export function systemErrorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
