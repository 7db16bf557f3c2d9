import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { batchTotals, formatDuration, type BatchItemResult, type BatchReport } from '../../../src/shared/batch';
import { batchReportMarkdown, writeBatchReport } from '../../../src/sidecar/batch/report';
import { tempDir } from '../../support/tiny-pipeline';

const items: BatchItemResult[] = [
  { image: 'a|b.png', source: 'spec', specFile: 'a|b.png.clipdrag-edit.json', status: 'succeeded', seconds: 75.5, result: 'a|b.clipdrag.png', recipe: 'a|b.clipdrag.json', distances: [1.5, 2.5], iterations: 40, reachedTargets: false, executionProvider: 'cpu' },
  { image: 'bench/x/original_image.png', source: 'dragbench', specFile: 'bench/x/meta_data.pkl', status: 'skipped', result: 'bench/x/original_image.clipdrag.png', recipe: 'bench/x/original_image.clipdrag.json', distances: [5] },
  { image: 'broken.png', source: 'spec', specFile: 'broken.png.clipdrag-edit.json', status: 'failed', error: 'The image "broken.png" is damaged.\nsecond line ``` fence' },
  { image: 'late.png', source: 'spec', specFile: 'late.png.clipdrag-edit.json', status: 'not-run', error: 'not run: the batch stopped before it' },
];

function report(extra: Partial<BatchReport> = {}): BatchReport {
  return {
    reportVersion: 1,
    folder: '/data/work',
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:05:25.000Z',
    state: 'completed',
    models: { model: 'stable-diffusion-v1-5/stable-diffusion-v1-5', clipModel: 'openai/clip-vit-base-patch16' },
    device: 'auto',
    items,
    totals: batchTotals(items),
    ...extra,
  };
}

describe('batch report', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('batch-report');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('totals count statuses, run time and the mean distance over done and skipped items', () => {
    assert.deepEqual(batchTotals(items), { items: 4, succeeded: 1, skipped: 1, failed: 1, cancelled: 0, notRun: 1, seconds: 75.5, meanDistance: 3 });
    assert.equal(batchTotals([]).meanDistance, null);
  });

  it('renders a readable Markdown report: summary, one row per item, problems with their messages', () => {
    const text = batchReportMarkdown(report());
    const lines = text.split('\n');
    assert.equal(lines[0], '# CLIPDrag batch report');
    assert.ok(lines.includes('- Finished: 2026-01-02T03:05:25.000Z (completed)'));
    assert.ok(lines.includes('- Device: auto (ran on cpu)'));
    assert.ok(lines.includes('**4 items:** 1 done, 1 skipped, 1 failed, 0 cancelled, 1 not run; 1 min 16 s of editing.'));
    assert.ok(lines.includes('Mean final handle-to-target distance: 3 px.'));
    // Pipes in names cannot break the table.
    assert.ok(lines.includes('| 1 | `a\\|b.png` | spec | done | 1 min 16 s | 1.50, 2.50 | `a\\|b.clipdrag.png` |'), text);
    assert.ok(lines.includes('| 2 | `bench/x/original_image.png` | DragBench | skipped (result exists) |  | 5.00 | `bench/x/original_image.clipdrag.png` |'));
    assert.ok(lines.includes('| 3 | `broken.png` | spec | FAILED |  |  |  |'));
    assert.ok(lines.includes('| 4 | `late.png` | spec | not run |  |  |  |'));
    const problems = text.slice(text.indexOf('## Problems'));
    assert.match(problems, /### broken\.png \(FAILED\)\n\n```text\nThe image "broken\.png" is damaged\.\nsecond line ''' fence\n```/);
    assert.doesNotMatch(problems, /late\.png/, 'items that did not run are not problems');
    assert.ok(text.endsWith('```\n'));
  });

  it('says when a report is from a batch that did not finish, or stopped', () => {
    const { finishedAt: _finished, ...running } = report({ state: 'running' });
    void _finished;
    assert.match(batchReportMarkdown(running), /\*\*Not finished:\*\* the batch was interrupted or is still running; run it again/);
    assert.match(batchReportMarkdown(report({ state: 'stopped', stopReason: 'x failed in a way every later item would' })), /- \*\*Stopped:\*\* x failed in a way every later item would\n- Finished: .* \(stopped\)/);
  });

  it('writes both files, replacing the previous report whole', async () => {
    const files = { markdown: path.join(dir, 'clipdrag-batch-report.md'), json: path.join(dir, 'clipdrag-batch-report.json') };
    await fs.writeFile(files.json, 'x'.repeat(100_000));
    await writeBatchReport(report(), files);
    assert.deepEqual(JSON.parse(await fs.readFile(files.json, 'utf8')), report());
    assert.equal(await fs.readFile(files.markdown, 'utf8'), batchReportMarkdown(report()));
    assert.deepEqual((await fs.readdir(dir)).sort(), ['clipdrag-batch-report.json', 'clipdrag-batch-report.md'], 'no temporary files are left behind');
  });

  it('formats durations for people', () => {
    assert.equal(formatDuration(0.4), '0 s');
    assert.equal(formatDuration(59), '59 s');
    assert.equal(formatDuration(200), '3 min 20 s');
    assert.equal(formatDuration(3900), '1 h 05 min');
  });
});
