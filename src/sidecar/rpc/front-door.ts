// What every long request of the RPC front door shares: the one queue of work on the device, cancellation as an
// AbortSignal, and the checks of the run choices (device, precision, working width) with one wording.
import { ErrorCodes, ResponseError, type CancellationToken } from 'vscode-jsonrpc/node';
import { isDevicePreference, isPrecisionPreference, PRECISION_PREFERENCES } from '../../shared/protocol';

/**
 * Work on the device, one task at a time, in arrival order: edits, batch runs and model preparation share it.
 * An edit and a batch at once would each hold a full set of models and graphs in memory (two full-size CLIPDrag
 * steps do not fit where one does) and split one device between them, neither finishing sooner; so a second
 * task waits for the first, and a failed or cancelled task leaves the queue ready for the next.
 */
export class DeviceQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** An AbortController that fires when the request is cancelled (also when it already was). */
export function abortOn(token: CancellationToken): AbortController {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller;
}

export function invalidParams(method: string, message: string): never {
  throw new ResponseError(ErrorCodes.InvalidParams, `${method}: ${message}`);
}

/** The run choices a request may make, each under the name it has in that request's params. */
export interface RunChoices {
  readonly device?: { readonly name: string; readonly value: unknown };
  readonly precision?: { readonly name: string; readonly value: unknown };
  readonly workingWidth?: unknown;
}

/** Refuses a device, precision or working width the engine does not know, saying what it accepts. */
export function checkRunChoices(method: string, choices: RunChoices): void {
  const { device, precision, workingWidth } = choices;
  if (device && device.value !== undefined && !isDevicePreference(device.value)) {
    invalidParams(method, `${device.name} must be one of auto, cpu, cuda, webgpu, dml, coreml (got ${JSON.stringify(device.value)})`);
  }
  if (precision && precision.value !== undefined && !isPrecisionPreference(precision.value)) {
    invalidParams(method, `${precision.name} must be one of ${PRECISION_PREFERENCES.join(', ')} (got ${JSON.stringify(precision.value)})`);
  }
  if (workingWidth !== undefined && (typeof workingWidth !== 'number' || !Number.isInteger(workingWidth) || workingWidth < 8 || workingWidth % 8 !== 0)) {
    invalidParams(method, `workingWidth must be a positive multiple of 8 (got ${JSON.stringify(workingWidth)})`);
  }
}
