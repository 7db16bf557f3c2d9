// The batch requests on the RPC connection: `batch/plan` (what a run would do) and `batch/run` (do it; progress as
// `$/progress` with the request's token; `$/cancelRequest` stops after the current step and the request still
// answers with the report, whose state says `cancelled`). A batch runs on the device queue it shares with edits:
// it waits for the running edit or batch, and an edit asked for meanwhile waits for it (docs/protocol.md).
import { ErrorCodes, ResponseError, type MessageConnection } from 'vscode-jsonrpc/node';
import type { BatchOptions, BatchPlan, BatchReport } from '../../shared/batch';
import { EDIT_MODES } from '../../shared/edit-parameters';
import { BatchPlanRequestType, BatchProgressType, BatchRunRequestType, type BatchRunParams, type DevicePreference } from '../../shared/protocol';
import { runPlannedBatch, type BatchEnvironment } from '../batch/batch-service';
import { BatchFolderError, planBatch } from '../batch/plan';
import type { Logger } from '../log';
import { toResponseError } from './errors';
import { abortOn, checkRunChoices, invalidParams, type DeviceQueue } from './front-door';

export interface BatchHandlerContext {
  readonly log: Logger;
  /** The device preference given at `initialize` (a batch's own `device` wins). */
  devicePreference(): DevicePreference;
  /** The server's one queue of work on the device. */
  readonly queue: DeviceQueue;
  readonly environment?: BatchEnvironment;
}

/** Checks what crosses the process boundary; returns the options without the progress token. */
export function checkBatchParams(params: BatchRunParams | undefined, method: string): BatchOptions {
  const fail = (message: string): never => invalidParams(method, message);
  if (!params || typeof params.folder !== 'string' || params.folder.length === 0) return fail('folder must be the absolute path of the folder to run');
  checkRunChoices(method, { device: { name: 'device', value: params.device }, precision: { name: 'precision', value: params.precision }, workingWidth: params.workingWidth });
  for (const key of ['model', 'clipModel', 'hubCacheDirectory'] as const) {
    if (params[key] !== undefined && typeof params[key] !== 'string') fail(`${key} must be a string`);
  }
  const parameters = params.dragBenchParameters;
  if (parameters !== undefined && (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))) fail('dragBenchParameters must be an object of edit parameters');
  const modes = params.modes;
  if (modes !== undefined && (!Array.isArray(modes) || modes.length === 0 || modes.some((m) => !(EDIT_MODES as readonly unknown[]).includes(m)))) {
    fail(`modes must be a non-empty list of ${EDIT_MODES.join(', ')}`);
  }
  const { progressToken: _token, ...options } = params;
  void _token;
  return options;
}

export function registerBatchHandlers(connection: MessageConnection, context: BatchHandlerContext): void {
  const { log, queue } = context;
  const withDevice = (options: BatchOptions): BatchOptions => ({ ...options, device: options.device ?? context.devicePreference() });

  connection.onRequest(BatchPlanRequestType, async (params): Promise<BatchPlan> => {
    const options = withDevice(checkBatchParams(params, 'batch/plan'));
    try {
      return (await planBatch(options)).plan;
    } catch (error) {
      throw batchError(error, log);
    }
  });

  connection.onRequest(BatchRunRequestType, async (params, token): Promise<BatchReport> => {
    const options = withDevice(checkBatchParams(params, 'batch/run'));
    const progressToken = params.progressToken;
    return queue.run(async () => {
      const controller = abortOn(token);
      try {
        const planning = await planBatch(options);
        log.info(`batch/run ${planning.root}: ${planning.plan.counts.pending} to run, ${planning.plan.counts.done} done, ${planning.plan.counts.invalid} cannot run`);
        const report = await runPlannedBatch(planning, options, context.environment ?? {}, {
          signal: controller.signal,
          onProgress: (progress) => {
            if (progressToken !== undefined) void connection.sendProgress(BatchProgressType, progressToken, progress);
          },
          onReportError: (error) => log.warn(`batch/run: could not update the report: ${error instanceof Error ? error.message : String(error)}`),
        });
        log.info(`batch/run ${planning.root}: ${report.state}; ${report.totals.succeeded} done, ${report.totals.skipped} skipped, ${report.totals.failed} failed`);
        return report;
      } catch (error) {
        throw batchError(error, log);
      }
    });
  });
}

function batchError(error: unknown, log: Logger): ResponseError<unknown> {
  if (error instanceof ResponseError) return error;
  if (error instanceof BatchFolderError) return new ResponseError(ErrorCodes.InvalidParams, error.message);
  const response = toResponseError(error, 'The batch');
  log.warn(`batch: ${response.message}`);
  return response;
}
