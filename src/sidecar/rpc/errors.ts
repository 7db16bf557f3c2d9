// How pipeline failures reach the client: a ResponseError whose code says what kind of failure it was
// (cancelled, unusable input, model unavailable, failed while running) and whose message says what to do.
// The kind is the error's own (`shared/error-kind.ts`): this front door knows no layer's error classes.
import { ResponseError } from 'vscode-jsonrpc/node';
import { EditSpecError } from '../../shared/edit-spec';
import { errorKind } from '../../shared/error-kind';
import { SidecarErrorCodes, type ModelUnavailableData } from '../../shared/protocol';

export function toResponseError(error: unknown, what: string): ResponseError<unknown> {
  const message = error instanceof Error ? error.message : String(error);
  switch (errorKind(error)) {
    case 'cancelled':
      return new ResponseError(SidecarErrorCodes.RequestCancelled, message);
    case 'invalid-input':
      // A spec's problems travel as data too, so the editor can show each next to its field.
      return new ResponseError(SidecarErrorCodes.InvalidEditInput, message, error instanceof EditSpecError ? { issues: error.issues } : undefined);
    case 'model-unavailable': {
      // The model store's errors say why (OFFLINE, NOT_FOUND, …) in their `code`.
      const code = (error as { code?: unknown }).code;
      const data: ModelUnavailableData = typeof code === 'string' ? { storeCode: code } : {};
      return new ResponseError(SidecarErrorCodes.ModelUnavailable, message, data);
    }
    case 'write-failed':
      return new ResponseError(SidecarErrorCodes.EditFailed, message);
    default:
      return new ResponseError(SidecarErrorCodes.EditFailed, `${what} failed: ${message}`);
  }
}
