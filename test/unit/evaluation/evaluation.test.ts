import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../../src/sidecar/engine/runtime/engine';
import { readEvalReportFiles } from '../../support/eval-report';
import { encodePng } from '../../../src/sidecar/io/image';
import { DragBenchScorer } from '../../../src/sidecar/pipeline/evaluation/scorer';
import { GraphSession } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { EVAL_REPORT_FILES, summarise, writeEvalReport } from '../../../src/sidecar/evaluation/report';
import { readPreviousReport, runEvaluation } from '../../../src/sidecar/evaluation/runner';
import type { ResultSet } from '../../../src/sidecar/evaluation/samples';
import { DRAGBENCH_SAMPLE_PICKLE } from '../../support/batch-folder';
import { blobImage } from '../../support/tiny-pipeline';

const EVAL = path.resolve(__dirname, '..', '..', 'fixtures', 'eval');
const MODELS = { dift: path.join(EVAL, 'tiny-sd21'), clip: path.join(EVAL, 'clip-vit-b32'), lpips: path.join(EVAL, 'lpips-alex') };

/** Two DragBench samples (the blob at x 20, to be dragged to x 40); results in both layouts. */
async function makeFolder(root: string): Promise<{ samples: string; reference: string }> {
  const samples = path.join(root, 'bench');
  const reference = path.join(root, 'reference-results');
  const source = await encodePng(blobImage(64, 64, 20, 32, 8));
  const moved = await encodePng(blobImage(64, 64, 40, 32, 8));
  for (const key of ['animals/sample_1', 'art_work/sample_2']) {
    const dir = path.join(samples, ...key.split('/'));
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'original_image.png'), source);
    await fs.copyFile(DRAGBENCH_SAMPLE_PICKLE, path.join(dir, 'meta_data.pkl'));
    await fs.mkdir(path.join(reference, ...key.split('/')), { recursive: true });
    // The reference set: sample_1 unchanged (a result identical to its source), sample_2 dragged.
    await fs.writeFile(path.join(reference, ...key.split('/'), 'dragged_image.png'), key.endsWith('1') ? source : moved);
  }
  // Ours: next to sample_1 only.
  await fs.writeFile(path.join(samples, 'animals', 'sample_1', 'original_image.clipdrag.png'), moved);
  return { samples, reference };
}

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
  });
});
