import type { ErrorKind } from '../../../shared/error-kind';
/** A model folder that cannot be loaded: the folder, and what is wrong with it (a missing or broken file). */
export class ModelLayoutError extends Error {
  readonly kind: ErrorKind = 'model-unavailable';
  constructor(readonly folder: string, problem: string) {
    super(`${folder}: ${problem}`);
    this.name = 'ModelLayoutError';
  }
}
