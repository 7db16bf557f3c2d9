// The report of a batch shared by workers. Each worker writes its own part, `.clipdrag-batch/parts/<worker>.json`
// (atomically, after every item), so workers never write the same file. The folder's report is the merge of every
// part: each worker merges when it ends (under a lease, so the last to finish writes last and sees every part) and
// `clipdrag batch <folder> --report` merges on demand.
import { mkdir, readFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { batchTotals, BATCH_REPORT_VERSION, type BatchItemResult, type BatchReport, type BatchReportPart, type BatchWorkerSummary } from '../../shared/batch';
import { writeFileAtomic } from '../io/atomic-write';
import { acquireLease } from '../io/lease-file';
import { batchReportFiles } from './plan';
import { writeBatchReport } from './report';

/** Where workers of a folder keep their claims and report parts (hidden: not searched for items). */
export const SHARED_BATCH_FOLDER = '.clipdrag-batch';

export function partsFolder(root: string): string {
  return path.join(root, SHARED_BATCH_FOLDER, 'parts');
}

export async function writeReportPart(root: string, part: BatchReportPart): Promise<void> {
  await mkdir(partsFolder(root), { recursive: true });
  await writeFileAtomic(path.join(partsFolder(root), `${part.worker.id}.json`), `${JSON.stringify(part, null, 2)}\n`);
}

/** Every readable part of the folder, oldest worker first; unreadable ones are skipped (reported by the caller). */
export async function readReportParts(root: string, onProblem?: (file: string, error: unknown) => void): Promise<BatchReportPart[]> {
  let names: string[];
  try {
    names = (await readdir(partsFolder(root))).filter((name) => name.endsWith('.json') && !name.startsWith('.'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parts: BatchReportPart[] = [];
  for (const name of names) {
    const file = path.join(partsFolder(root), name);
    try {
      const part = JSON.parse(await readFile(file, 'utf8')) as BatchReportPart;
      if (part.reportVersion !== BATCH_REPORT_VERSION || !Array.isArray(part.items) || typeof part.worker?.id !== 'string') throw new Error('not a batch report part');
      parts.push(part);
    } catch (error) {
      onProblem?.(file, error);
    }
  }
  return parts.sort((a, b) => a.worker.startedAt.localeCompare(b.worker.startedAt) || a.worker.id.localeCompare(b.worker.id));
}

/** An item's record from the part that says most about it (see mergeReportParts). */
const OUTCOME_RANK: Record<BatchItemResult['status'], number> = { 'not-run': 0, cancelled: 1, failed: 2, skipped: 3, succeeded: 3 };

/**
 * One report from the parts. Per item, the latest worker's record that ran it or found it done wins over older
 * ones; a record that says less (not run, or cancelled, when another says failed or done) never hides one that says
 * more; a skip keeps the record of the worker that made that result. Items in the order of their image paths.
 */
export function mergeReportParts(parts: readonly BatchReportPart[], planned: readonly BatchItemResult[] = []): BatchReport | undefined {
  const newest = parts.at(-1);
  if (!newest) return undefined;
  // Items of the plan that no part mentions (a task that never started) are listed as not run.
  const chosen = new Map<string, BatchItemResult>(planned.map((item) => [item.image, { ...item, status: 'not-run' }]));
  for (const part of parts) {
    for (const item of part.items) {
      const current = chosen.get(item.image);
      const tagged = { ...item, ...(item.status === 'succeeded' || item.status === 'failed' || item.status === 'cancelled' ? { worker: part.worker.id } : {}) };
      if (!current || OUTCOME_RANK[item.status] > OUTCOME_RANK[current.status]) chosen.set(item.image, tagged);
      else if (OUTCOME_RANK[item.status] === OUTCOME_RANK[current.status] && item.status !== 'not-run') {
        // Same rank, later worker: it reflects the folder as it is now, unless it only skipped the result we have.
        const sameResult = item.status === 'skipped' && current.status === 'succeeded' && item.result === current.result;
        if (!sameResult) chosen.set(item.image, tagged);
      }
    }
  }
  const items = [...chosen.values()].sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  const workers: BatchWorkerSummary[] = parts.map((part) => part.worker);
  const everyoneEnded = workers.every((worker) => worker.finishedAt !== undefined);
  const resolved = items.every((item) => item.status !== 'not-run' && item.status !== 'cancelled');
  // Finished when every item has its outcome, even if a worker that was killed never said it ended.
  const finishedAt = resolved ? workers.flatMap((w) => (w.finishedAt ? [w.finishedAt] : [])).sort().at(-1) : undefined;
  const stopped = parts.find((part) => part.state === 'stopped');
  const report: BatchReport = {
    reportVersion: BATCH_REPORT_VERSION,
    folder: newest.folder,
    startedAt: workers.map((w) => w.startedAt).sort()[0]!,
    state: finishedAt ? 'completed' : stopped ? 'stopped' : everyoneEnded ? 'cancelled' : 'running',
    ...(stopped?.stopReason ? { stopReason: stopped.stopReason } : {}),
    models: newest.models,
    device: newest.device,
    items,
    totals: batchTotals(items),
    workers,
  };
  if (finishedAt) report.finishedAt = finishedAt;
  return report;
}

/** Merges the parts into the folder's report; resolves to the merged report (undefined: no parts yet). */
export async function mergeBatchReport(
  root: string,
  options: { planned?: readonly BatchItemResult[]; staleAfterMs?: number; onProblem?: (file: string, error: unknown) => void } = {},
): Promise<BatchReport | undefined> {
  // Merges one at a time: the last merge reads the parts after every earlier writer finished its own.
  const lease = await acquireLease(path.join(root, SHARED_BATCH_FOLDER, 'report.lock'), { job: 'merge' }, { staleAfterMs: options.staleAfterMs ?? 30_000 });
  try {
    const report = mergeReportParts(await readReportParts(root, options.onProblem), options.planned);
    if (report) await writeBatchReport(report, batchReportFiles(root));
    return report;
  } finally {
    await lease.release();
  }
}
