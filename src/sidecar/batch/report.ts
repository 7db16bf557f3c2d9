// The batch report in the folder: `clipdrag-batch-report.json` (the BatchReport as it is) and
// `clipdrag-batch-report.md` (the same for people). Both are written atomically: a reader sees the old report or
// the new one, never half of one.
import { writeFileAtomic } from '../io/atomic-write';
import { formatDuration, type BatchItemResult, type BatchReport } from '../../shared/batch';

export async function writeBatchReport(report: BatchReport, files: { markdown: string; json: string }): Promise<void> {
  await writeFileAtomic(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomic(files.markdown, batchReportMarkdown(report));
}

const STATUS_WORDS: Record<BatchItemResult['status'], string> = {
  succeeded: 'done',
  skipped: 'skipped (result exists)',
  failed: 'FAILED',
  cancelled: 'cancelled',
  'not-run': 'not run',
};

export function batchReportMarkdown(report: BatchReport): string {
  const t = report.totals;
  const lines: string[] = ['# CLIPDrag batch report', ''];
  lines.push(`- Folder: \`${report.folder}\``);
  lines.push(`- Started: ${report.startedAt}`);
  if (report.stopReason) lines.push(`- **Stopped:** ${report.stopReason}`);
  if (report.finishedAt) lines.push(`- Finished: ${report.finishedAt} (${report.state})`);
  else lines.push('- **Not finished:** the batch was interrupted or is still running; run it again to do the rest (finished items are skipped).');
  const providers = [...new Set(report.items.map((item) => item.executionProvider).filter((p): p is string => p !== undefined))];
  lines.push(`- Models: Stable Diffusion \`${report.models.model}\`, CLIP \`${report.models.clipModel}\` (where a spec names none)`);
  lines.push(`- Device: ${report.device}${providers.length > 0 ? ` (ran on ${providers.join(', ')})` : ''}`);
  lines.push('');
  lines.push(
    `**${t.items} items:** ${t.succeeded} done, ${t.skipped} skipped, ${t.failed} failed, ${t.cancelled} cancelled, ${t.notRun} not run; ` +
      `${formatDuration(t.seconds)} of editing.`,
  );
  if (t.meanDistance !== null) lines.push(`Mean final handle-to-target distance: ${t.meanDistance} px.`);
  const byWorker = report.workers !== undefined;
  lines.push(
    '',
    `| # | image | source | status | time | handle → target (px) | result |${byWorker ? ' worker |' : ''}`,
    `|---|---|---|---|---|---|---|${byWorker ? '---|' : ''}`,
  );
  report.items.forEach((item, i) => {
    const cells = [
      String(i + 1),
      code(item.image),
      item.source === 'dragbench' ? 'DragBench' : 'spec',
      STATUS_WORDS[item.status],
      item.seconds !== undefined ? formatDuration(item.seconds) : '',
      item.distances?.map((d) => d.toFixed(2)).join(', ') ?? '',
      item.result ? code(item.result) : '',
      ...(byWorker ? [item.worker ? code(item.worker) : ''] : []),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  });
  if (report.workers && report.workers.length > 0) {
    lines.push('', '## Workers', '', '| worker | shard | state | ran | done | failed | editing | wall time |', '|---|---|---|---|---|---|---|---|');
    for (const w of report.workers) {
      const state = w.finishedAt ? w.state : 'did not finish (still running, or killed)';
      const shard = w.shard ? `${w.shard.index}/${w.shard.count}` : 'all';
      lines.push(`| ${code(w.id)} | ${shard} | ${state} | ${w.ran} | ${w.succeeded} | ${w.failed} | ${formatDuration(w.editSeconds)} | ${formatDuration(w.wallSeconds)} |`);
    }
  }
  if (report.items.some((item) => item.mode !== undefined)) lines.push(...modeTables(report.items));
  const problems = report.items.filter((item) => item.error !== undefined && item.status !== 'not-run');
  if (problems.length > 0) {
    lines.push('', '## Problems', '');
    for (const item of problems) {
      lines.push(`### ${item.image} (${STATUS_WORDS[item.status]})`, '', '```text', item.error!.replace(/```/g, "'''"), '```', '');
    }
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

/** One table per sample when the batch ran several modes: each mode's status, time, final distances and iterations. */
function modeTables(items: readonly BatchItemResult[]): string[] {
  const lines = ['', '## Modes side by side'];
  const images = [...new Set(items.map((item) => item.image))];
  for (const image of images) {
    lines.push('', `### ${code(image)}`, '', '| mode | status | time | handle → target (px) | iterations | result |', '|---|---|---|---|---|---|');
    for (const item of items.filter((i) => i.image === image)) {
      const cells = [
        item.mode ?? '',
        STATUS_WORDS[item.status],
        item.seconds !== undefined ? formatDuration(item.seconds) : '',
        item.distances?.map((d) => d.toFixed(2)).join(', ') ?? '',
        item.iterations !== undefined ? String(item.iterations) : '',
        item.result ? code(item.result) : '',
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  return lines;
}

/** A path as inline code in a table cell (pipes would end the cell). */
function code(text: string): string {
  return `\`${text.replace(/\|/g, '\\|').replace(/`/g, "'")}\``;
}
