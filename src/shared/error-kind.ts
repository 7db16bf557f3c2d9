/**
 * What kind of failure an error is, carried by the error itself (`kind`), so that the front doors (RPC, CLI,
 * batch runs) answer it without knowing every layer's error classes.
 *
 * - `invalid-input`: this image, spec, path or recipe cannot be edited as given; the message says what to fix.
 * - `model-unavailable`: the models cannot be found, downloaded or opened.
 * - `write-failed`: a result could not be written (disk full, no permission, …).
 * - `cancelled`: the user stopped it; nothing was written.
 */
export type ErrorKind = 'invalid-input' | 'model-unavailable' | 'write-failed' | 'cancelled';

/** The kind an error carries, if it is one of ours. */
export function errorKind(error: unknown): ErrorKind | undefined {
  if (!(error instanceof Error)) return undefined;
  const kind = (error as { kind?: unknown }).kind;
  return kind === 'invalid-input' || kind === 'model-unavailable' || kind === 'write-failed' || kind === 'cancelled' ? kind : undefined;
}
