import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../../src/sidecar/engine/runtime/engine';
import { readEvalReportFiles } from '../../support/eval-report';
import { DragBenchScorer } from '../../../src/sidecar/pipeline/evaluation/scorer';
import { GraphSession } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { EVAL_REPORT_FILES, summarise, writeEvalReport } from '../../../src/sidecar/evaluation/report';
import { readPreviousReport, runEvaluation } from '../../../src/sidecar/evaluation/runner';
import type { ResultSet } from '../../../src/sidecar/evaluation/samples';
import { EVAL_TEST_MODELS as MODELS, makeEvalFolder as makeFolder } from '../../support/eval-folder';

describe('DragBench evaluation of a folder (tiny SD-2.1, CLIP ViT-B/32 and LPIPS models)', () => {
  let root: string;
  let engine: Engine;
  before(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-eval-'));
    engine = new Engine({ cacheDir: path.join(root, 'sessions') });
  });
  after(async () => {
    await engine.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  it('scores each sample of each result set, writes the report with its plots, and a rerun scores nothing again', async () => {
    const { samples, reference } = await makeFolder(root);
    const sets: ResultSet[] = [{ kind: 'ours', label: 'ours' }, { kind: 'reference', label: 'reference', root: reference }];
    let opened = 0;
    const scorer = async () => {
      opened++;
      return DragBenchScorer.open(new GraphSession(engine), MODELS, path.join(root, 'cache'));
    };
    const report = await runEvaluation({ root: samples, sets, models: MODELS, scorer });
    assert.equal(opened, 1);
    assert.deepEqual(report.entries.map((e) => [e.sample, e.set, e.result]), [
      ['animals/sample_1', 'ours', 'animals/sample_1/original_image.clipdrag.png'],
      ['animals/sample_1', 'reference', '../reference-results/animals/sample_1/dragged_image.png'],
      ['art_work/sample_2', 'ours', null],
      ['art_work/sample_2', 'reference', '../reference-results/art_work/sample_2/dragged_image.png'],
    ]);
    const identical = report.entries[1]!.score!;
    // Whatever the weights: a result identical to its source has LPIPS 0 and CLIP similarity 1.
    assert.equal(identical.lpips, 0);
    assert.equal(identical.imageFidelity, 1);
    assert.ok(Math.abs(identical.clipSimilarity - 1) < 1e-6, String(identical.clipSimilarity));
    const dragged = report.entries[3]!.score!;
    assert.ok(dragged.lpips > 0 && dragged.clipSimilarity < 1, JSON.stringify(dragged));
    assert.equal(dragged.distances.length, 1);
    assert.ok(Number.isFinite(dragged.meanDistance) && dragged.meanDistance >= 0);
    assert.match(report.entries[2]!.error ?? '', /no result next to the sample/);

    const files = await writeEvalReport(samples, report);
    const written = await readEvalReportFiles(files);
    assert.match(written.markdown, /\| ours \| 1 \|/);
    assert.match(written.markdown, /\| reference \| 2 \|/);
    assert.match(written.markdown, new RegExp(`!\\[MD against IF\\]\\(${EVAL_REPORT_FILES.scatter}\\)`));
    assert.match(written.scatter, /^<svg[^>]*>.*<circle/s);
    assert.match(written.categories, /<rect[^>]*><title>reference, art_work/);
    const summary = summarise(report);
    assert.deepEqual(Object.keys(summary[1]!.categories), ['animals', 'art_work']);

    const again = await runEvaluation({ root: samples, sets, models: MODELS, scorer, previous: await readPreviousReport(samples) });
    assert.equal(opened, 1, 'a rerun with nothing changed opens no model');
    assert.deepEqual(again.entries, report.entries);

    // Cancelled before it reached anything: the report keeps every entry of the last one, and says it was cancelled.
    const stop = new AbortController();
    stop.abort();
    const cancelled = await runEvaluation({ root: samples, sets, models: MODELS, scorer, previous: await readPreviousReport(samples), signal: stop.signal });
    assert.equal(cancelled.cancelled, true);
    assert.deepEqual(cancelled.entries, report.entries);
    assert.equal(opened, 1);
  });
});

describe('clipdrag eval (the CLI, as a child process)', () => {
  const repo = path.resolve(__dirname, '..', '..', '..');
  const run = (args: string[], cacheDir: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src', 'sidecar', 'main.ts'), ...args], {
        cwd: repo,
        env: { ...process.env, CLIPDRAG_CACHE_DIR: cacheDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  it('scores a folder against a reference-layout result set and prints the report as JSON', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-eval-cli-'));
    try {
      const { samples, reference } = await makeFolder(root);
      const args = ['eval', samples, '--results', reference, '--dift-model', MODELS.dift, '--clip-model', MODELS.clip, '--lpips-model', MODELS.lpips, '--device', 'cpu', '--json'];
      const first = await run(args, path.join(root, 'cache'));
      assert.equal(first.code, 0, first.stderr);
      const report = JSON.parse(first.stdout) as { summary: { set: string; overall: { samples: number } }[]; entries: { score?: unknown }[] };
      assert.deepEqual(report.summary.map((s) => [s.set, s.overall.samples]), [['reference-results', 2]]);
      assert.match(first.stderr, /\[2\/2\] art_work\/sample_2 \(reference-results\)/);
      for (const name of Object.values(EVAL_REPORT_FILES)) await fs.access(path.join(samples, name));
      const second = await run(args, path.join(root, 'cache'));
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /\[2\/2\] art_work\/sample_2 \(reference-results\) unchanged, kept/);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('says what a folder without DragBench samples lacks, before opening any model', async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-eval-empty-'));
    try {
      const result = await run(['eval', empty], os.tmpdir());
      assert.equal(result.code, 1);
      assert.match(result.stderr, /holds no DragBench samples \(folders with original_image\.png and meta_data\.pkl/);
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });
});
