// `eval/run` on the RPC connection: DragBench's metrics over a folder with the runner `clipdrag eval` uses, the report
// written into the folder. Progress as `$/progress` with the request's token (one value per entry); `$/cancelRequest`
// stops after the current entry and the request still answers, with `state: 'cancelled'` and the report of what was
// scored. It waits on the device queue it shares with edits and batches (docs/protocol.md).
import { ErrorCodes, ResponseError, type MessageConnection } from 'vscode-jsonrpc/node';
import type { EvalOptions, EvalOutcome } from '../../shared/evaluation';
import { EvalProgressType, EvalRunRequestType, type DevicePreference, type EvalRunParams } from '../../shared/protocol';
import { runEvalJob } from '../evaluation/eval-job';
import type { Logger } from '../log';
import { toResponseError } from './errors';
import { abortOn, checkRunChoices, invalidParams, type DeviceQueue } from './front-door';

export interface EvalHandlerContext {
  readonly log: Logger;
  /** The device preference given at `initialize` (the request's own `device` wins). */
  devicePreference(): DevicePreference;
  readonly queue: DeviceQueue;
  /** Pipeline cache folder; default the pipeline's. */
  readonly cacheDir?: string;
}

/** Checks what crosses the process boundary; returns the options without the progress token. */
export function checkEvalParams(params: EvalRunParams | undefined, method: string): EvalOptions {
  const fail = (message: string): never => invalidParams(method, message);
  if (!params || typeof params.folder !== 'string' || params.folder.length === 0) return fail('folder must be the absolute path of a DragBench-layout folder');
  checkRunChoices(method, { device: { name: 'device', value: params.device } });
  for (const key of ['diftModel', 'clipModel', 'lpipsModel', 'hubCacheDirectory'] as const) {
    if (params[key] !== undefined && (typeof params[key] !== 'string' || params[key] === '')) fail(`${key} must be a non-empty string: a hub repo id or a folder`);
  }
  const results = params.results;
  if (results !== undefined && (!Array.isArray(results) || results.length === 0 || results.some((r) => typeof r !== 'string' || r === ''))) {
    fail('results must be a non-empty list of "ours" or folders in the reference layout');
  }
  const seed = params.seed;
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 32)) fail(`seed must be an integer from 0 to 2^32 (got ${JSON.stringify(seed)})`);
  const { progressToken: _token, ...options } = params;
  void _token;
  return options;
}

export function registerEvalHandlers(connection: MessageConnection, context: EvalHandlerContext): void {
  const { log, queue } = context;
  connection.onRequest(EvalRunRequestType, async (params, token): Promise<EvalOutcome> => {
    const options = checkEvalParams(params, 'eval/run');
    const progressToken = params.progressToken;
    return queue.run(async () => {
      const controller = abortOn(token);
      try {
        log.info(`eval/run ${options.folder}: result sets ${(options.results ?? ['ours']).join(', ')}`);
        const { outcome } = await runEvalJob(
          { ...options, device: options.device ?? context.devicePreference() },
          {
            signal: controller.signal,
            onProgress: (progress) => {
              if (progressToken !== undefined) void connection.sendProgress(EvalProgressType, progressToken, progress);
            },
            ...(context.cacheDir ? { cacheDir: context.cacheDir } : {}),
          },
        );
        log.info(`eval/run ${outcome.folder}: ${outcome.state}; ${outcome.scored} of ${outcome.entries} entries scored`);
        return outcome;
      } catch (error) {
        throw evalError(error, log);
      }
    });
  });
}

function evalError(error: unknown, log: Logger): ResponseError<unknown> {
  if (error instanceof ResponseError) return error;
  if ((error as { kind?: unknown } | null)?.kind === 'invalid-input' && error instanceof Error) return new ResponseError(ErrorCodes.InvalidParams, error.message);
  const response = toResponseError(error, 'The evaluation');
  log.warn(`eval: ${response.message}`);
  return response;
}
