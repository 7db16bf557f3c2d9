// One worker of a batch shared by several processes (on one machine or many, over a shared filesystem). Every worker
// plans the whole folder, then goes through its slice (all of it, or one static shard) in order. Before an item runs,
// the worker claims it: `.clipdrag-batch/claims/<item>.claim`, created exclusively, holding the owner (host, pid,
// start time) and kept alive by a heartbeat. An item claimed by a live worker is left to it and looked at again
// later: when the claim is gone the owner has recorded the item, when its heartbeat stopped (a killed process, a lost
// node) the claim is taken over and the item runs here. The resume rules still decide what is done: after claiming,
// the worker looks for a matching result once more, so an item finished meanwhile by another worker is not redone.
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { batchTotals, type BatchItemResult, type BatchProgress, type BatchReportPart, type BatchShard } from '../../shared/batch';
import { readLease, tryAcquireLease, type HeldLease } from '../io/lease-file';
import type { BatchPlanning } from './plan';
import { mergeBatchReport, SHARED_BATCH_FOLDER, writeReportPart } from './report-parts';
import { runItem, skippedResult, type RunBatchOptions } from './runner';
import { inShard } from './shard';
import { wait } from '../../shared/wait';

/** Default time after which a claim without heartbeat is taken over. */
export const DEFAULT_CLAIM_TIMEOUT_MS = 10 * 60_000;

export interface RunWorkerOptions extends RunBatchOptions {
  /** Run only this slice of the plan (default all of it). */
  shard?: BatchShard;
  /** A claim whose heartbeat is older than this is taken over (default 10 minutes). */
  claimTimeoutMs?: number;
  /** How often items claimed by others are looked at again (default a twentieth of the timeout, 1–10 s). */
  pollMs?: number;
  /** `--force`: run items again even when a matching result exists (one worker each). */
  force?: boolean;
}

export function claimFile(root: string, image: string): string {
  const key = createHash('sha256').update(image).digest('hex').slice(0, 16);
  const readable = path.basename(image).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60);
  return path.join(root, SHARED_BATCH_FOLDER, 'claims', `${readable}-${key}.claim`);
}

/** Runs this worker's part of the plan; resolves to its report part (the merged report is in the folder). */
export async function runWorker(planning: BatchPlanning, options: RunWorkerOptions): Promise<BatchReportPart> {
  const { plan, items, root } = planning;
  const now = options.now ?? (() => new Date());
  const timeoutMs = options.claimTimeoutMs ?? DEFAULT_CLAIM_TIMEOUT_MS;
  const pollMs = options.pollMs ?? Math.min(10_000, Math.max(1000, timeoutMs / 20));
  const started = now();
  const startedClock = performance.now();
  const id = `${os.hostname()}-${process.pid}-${started.getTime().toString(36)}`;
  const mine = items.map((_, index) => index).filter((index) => inShard(index, options.shard));
  const part: BatchReportPart = {
    reportVersion: 1,
    folder: plan.folder,
    startedAt: started.toISOString(),
    state: 'running',
    models: plan.models,
    device: options.device,
    items: mine.map((index) => {
      const { item } = items[index]!;
      return { image: item.image, source: item.source, specFile: item.specFile, status: 'not-run' };
    }),
    totals: batchTotals([]),
    worker: {
      id,
      host: os.hostname(),
      pid: process.pid,
      ...(options.shard ? { shard: options.shard } : {}),
      startedAt: started.toISOString(),
      state: 'running',
      ran: 0,
      succeeded: 0,
      failed: 0,
      editSeconds: 0,
      wallSeconds: 0,
    },
  };
  // Results that were there before this worker started: with --force, only a newer one means another worker did it.
  const baseline = new Map<number, Set<string>>();
  for (const index of mine) {
    const { run } = items[index]!;
    if (run) baseline.set(index, new Set((await planning.previous.of(run.imagePath)).filter((r) => r.fingerprint === run.fingerprint).map((r) => r.recipePath)));
  }
  const finishedElsewhere = async (index: number): Promise<boolean> => {
    const run = items[index]!.run!;
    planning.previous.invalidate(run.imagePath);
    const matching = (await planning.previous.of(run.imagePath)).filter((r) => r.fingerprint === run.fingerprint);
    return options.force ? matching.some((r) => !baseline.get(index)?.has(r.recipePath)) : matching.length > 0;
  };
  const relative = (file: string) => path.relative(root, file).split(path.sep).join('/');
  const resultOf = (index: number) => part.items[mine.indexOf(index)]!;
  const save = async (final: boolean) => {
    part.totals = batchTotals(part.items);
    const ran = part.items.filter((item) => item.worker === id);
    Object.assign(part.worker, {
      state: part.state,
      ran: ran.length,
      succeeded: ran.filter((item) => item.status === 'succeeded').length,
      failed: ran.filter((item) => item.status === 'failed').length,
      editSeconds: Math.round(ran.reduce((sum, item) => sum + (item.seconds ?? 0), 0) * 10) / 10,
      wallSeconds: Math.round((performance.now() - startedClock) / 100) / 10,
      ...(part.finishedAt ? { finishedAt: part.finishedAt } : {}),
    });
    try {
      await writeReportPart(root, part);
    } catch (error) {
      if (final) throw error;
      options.onReportError?.(error);
    }
  };
  const emit = (progress: BatchProgress) => {
    try {
      options.onProgress?.(progress);
    } catch {
      // A listener's failure must not stop the batch.
    }
  };
  const claimDetails = (image: string) => ({ worker: id, image, ...(options.shard ? { shard: `${options.shard.index}/${options.shard.count}` } : {}) });

  let cancelled = false;
  let stopReason: string | undefined;
  /** Runs an item whose claim we hold, unless a result appeared since the plan; releases the claim. */
  const runClaimed = async (index: number, claim: HeldLease) => {
    const result = resultOf(index);
    try {
      const { run } = items[index]!;
      if (await finishedElsewhere(index)) {
        Object.assign(result, await skippedResult(planning, run!, relative));
      } else {
        const outcome = await runItem(planning, index, result, options, emit);
        result.worker = id;
        cancelled = outcome.cancelled;
        stopReason = outcome.stopReason;
      }
    } finally {
      await claim.release();
    }
    await save(false);
    emit({ type: 'item-end', index, total: items.length, item: { ...result } });
  };

  await save(false); // a worker killed in its first item is still listed
  const waiting: number[] = [];
  for (const index of mine) {
    if (options.signal?.aborted) cancelled = true;
    if (cancelled || stopReason) break;
    const { item, run } = items[index]!;
    const result = resultOf(index);
    if (item.state !== 'pending' || !run) {
      await runItem(planning, index, result, options, emit); // records the failure or the skip
      await save(false);
      continue;
    }
    const attempt = await tryAcquireLease(claimFile(root, item.image), claimDetails(item.image), { staleAfterMs: timeoutMs });
    if (attempt.acquired) await runClaimed(index, attempt.lease);
    else waiting.push(index);
  }

  // Items others were running when we came to them: wait until each is released (its owner recorded it) or its
  // claim goes stale (we take it over and run it).
  while (waiting.length > 0 && !cancelled && !stopReason) {
    if (options.signal?.aborted) {
      cancelled = true;
      break;
    }
    await wait(pollMs, options.signal);
    for (const index of [...waiting]) {
      if (cancelled || stopReason || options.signal?.aborted) break;
      const { item, run } = items[index]!;
      const file = claimFile(root, item.image);
      const holder = await readLease(file, timeoutMs);
      if (holder && !holder.stale) continue;
      waiting.splice(waiting.indexOf(index), 1);
      if (!holder) {
        // Released: the owner recorded the item in its own part (done, failed or cancelled).
        const result = resultOf(index);
        if (await finishedElsewhere(index)) Object.assign(result, await skippedResult(planning, run!, relative));
        else result.error = 'another worker ran it and ended without a result; its report part says why';
        await save(false);
        continue;
      }
      const attempt = await tryAcquireLease(file, claimDetails(item.image), { staleAfterMs: timeoutMs });
      if (attempt.acquired) await runClaimed(index, attempt.lease);
      else waiting.push(index);
    }
  }
  if (options.signal?.aborted) cancelled = true;

  for (const index of waiting) resultOf(index).error ??= 'still claimed by another worker when this one stopped';
  part.state = cancelled ? 'cancelled' : stopReason ? 'stopped' : 'completed';
  if (stopReason) part.stopReason = stopReason;
  part.finishedAt = now().toISOString();
  await save(true);
  await mergeBatchReport(root, { planned: skeleton(planning) }).catch((error: unknown) => options.onReportError?.(error));
  return part;
}

/** The plan's items as not-run records, so the merged report lists every item. */
export function skeleton(planning: BatchPlanning): BatchItemResult[] {
  return planning.items.map(({ item }) => ({ image: item.image, source: item.source, specFile: item.specFile, status: 'not-run' }));
}

