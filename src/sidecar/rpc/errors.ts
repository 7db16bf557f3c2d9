// How pipeline failures reach the client: a ResponseError whose code says what kind of failure it was
// (cancelled, unusable input, model unavailable, failed while running) and whose message says what to do.
import { ResponseError } from 'vscode-jsonrpc/node';
import { EditSpecError } from '../../shared/edit-spec';
import { SidecarErrorCodes, type ModelUnavailableData } from '../../shared/protocol';
import { isModelStoreError } from '../hub';
import { FileWriteError } from '../io/atomic-write';
import { ImageFileError } from '../io/image';
import { PathSafetyError } from '../io/paths';
import { SpecFileError } from '../io/spec-file';
import { ModelLayoutError } from '../models/checkpoint/layout';
import { isEditCancelled } from '../pipeline/edit/cancellation';
import { OutputPathError } from '../pipeline/edit/edit';
import { RecipeError } from '../pipeline/edit/recipe-replay';

/** Errors that mean "this input cannot be edited" rather than "the edit broke". */
export function isInputError(error: unknown): boolean {
  return (
    error instanceof EditSpecError ||
    error instanceof ImageFileError ||
    error instanceof SpecFileError ||
    error instanceof PathSafetyError ||
    error instanceof RecipeError ||
    error instanceof OutputPathError
  );
}

export function isModelError(error: unknown): boolean {
  return isModelStoreError(error) || error instanceof ModelLayoutError;
}

export function toResponseError(error: unknown, what: string): ResponseError<unknown> {
  const message = error instanceof Error ? error.message : String(error);
  if (isEditCancelled(error)) return new ResponseError(SidecarErrorCodes.RequestCancelled, message);
  if (error instanceof EditSpecError) return new ResponseError(SidecarErrorCodes.InvalidEditInput, message, { issues: error.issues });
  if (isInputError(error)) return new ResponseError(SidecarErrorCodes.InvalidEditInput, message);
  if (isModelError(error)) {
    const data: ModelUnavailableData = isModelStoreError(error) ? { storeCode: error.code } : {};
    return new ResponseError(SidecarErrorCodes.ModelUnavailable, message, data);
  }
  if (error instanceof FileWriteError) return new ResponseError(SidecarErrorCodes.EditFailed, message);
  return new ResponseError(SidecarErrorCodes.EditFailed, `${what} failed: ${message}`);
}
