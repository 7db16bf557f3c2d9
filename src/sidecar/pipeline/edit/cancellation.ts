/**
 * Cancellation of a running edit: every stage checks its AbortSignal between engine runs (one run is
 * never interrupted), and a cancelled edit ends with an `EditCancelledError` that the front doors
 * report as a cancellation, not a failure.
 */
import type { ErrorKind } from '../../../shared/error-kind';

export class EditCancelledError extends Error {
  override readonly name = 'EditCancelledError';
  readonly kind: ErrorKind = 'cancelled';
  constructor(stage?: string) {
    super(stage ? `The edit was cancelled during ${stage}; nothing was written.` : 'The edit was cancelled; nothing was written.');
  }
}

export function isEditCancelled(error: unknown): error is EditCancelledError {
  return error instanceof EditCancelledError;
}

/** Throws an `EditCancelledError` naming the stage when the signal has fired. */
export function throwIfCancelled(signal: AbortSignal | undefined, stage?: string): void {
  if (signal?.aborted) throw new EditCancelledError(stage);
}
