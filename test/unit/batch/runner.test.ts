// The batch runner with the real pipeline (tiny fixture models, CPU): a cancellation in the middle of an item keeps
// what was done and writes nothing half-done, the next run completes the batch; the report is rewritten after every
// item; models that cannot be used stop the batch at the first item instead of failing every item the same way.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BatchOptions, BatchProgress, BatchReport } from '../../../src/shared/batch';
import { serializeEditSpec } from '../../../src/shared/edit-spec';
import { runPlannedBatch, type BatchEnvironment } from '../../../src/sidecar/batch/batch-service';
import { planBatch } from '../../../src/sidecar/batch/plan';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { batchSpec } from '../../support/batch-folder';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

let dir: string;
let model: string;
let engine: Engine;
let environment: BatchEnvironment;

before(async () => {
  dir = await fs.realpath(await tempDir('batch-runner'));
  model = await tinySdWithTokenizer(dir);
  engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
  environment = { engine, cacheDir: path.join(dir, 'cache') };
});
after(async () => {
  await engine.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function folderWith(name: string, images: string[]): Promise<string> {
  const root = path.join(dir, name);
  await fs.mkdir(root, { recursive: true });
  for (const image of images) {
    await fs.writeFile(path.join(root, image), await encodePng(blobImage(64, 64, 20, 32, 8)));
    await fs.writeFile(path.join(root, `${image}.clipdrag-edit.json`), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }])));
  }
  return root;
}

async function readReport(root: string): Promise<BatchReport> {
  return JSON.parse(await fs.readFile(path.join(root, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
}

describe('runBatch (tiny models, CPU)', () => {
  it('cancelled inside an item: that item writes nothing, later items do not run, the next run completes', async () => {
    const root = await folderWith('cancel', ['one.png', 'two.png']);
    const options: BatchOptions = { folder: root, model, clipModel: TINY_CLIP, device: 'cpu', workingWidth: 64 };
    const controller = new AbortController();
    const seen: BatchProgress[] = [];
    const report = await runPlannedBatch(await planBatch(options), options, environment, {
      signal: controller.signal,
      onProgress: (progress) => {
        seen.push(progress);
        if (progress.type === 'item-progress' && progress.progress.stage === 'drag') controller.abort();
      },
    });
    assert.equal(report.state, 'cancelled');
    assert.deepEqual(report.items.map((i) => i.status), ['cancelled', 'not-run']);
    assert.match(report.items[0]!.error!, /cancelled during/);
    assert.ok(report.finishedAt);
    assert.deepEqual(await readReport(root), report, 'the report on disk is the one returned');
    assert.match(await fs.readFile(path.join(root, 'clipdrag-batch-report.md'), 'utf8'), /Finished: .* \(cancelled\)/);
    // Nothing half-written: no result, no temporary file.
    const files = (await fs.readdir(root)).sort();
    assert.deepEqual(files, ['clipdrag-batch-report.json', 'clipdrag-batch-report.md', 'one.png', 'one.png.clipdrag-edit.json', 'two.png', 'two.png.clipdrag-edit.json']);
    assert.deepEqual(seen.filter((p) => p.type !== 'item-progress').map((p) => p.type), ['item-start', 'item-end']);

    // The next run does both; while it runs, the report on disk already has the first item.
    let reportAfterFirst: BatchReport | undefined;
    const again = await runPlannedBatch(await planBatch(options), options, environment, {
      onProgress: (progress) => {
        if (progress.type === 'item-start' && progress.index === 1) void readReport(root).then((r) => (reportAfterFirst = r));
      },
    });
    assert.equal(again.state, 'completed');
    assert.deepEqual(again.items.map((i) => i.status), ['succeeded', 'succeeded']);
    assert.ok(reportAfterFirst, 'the report was not readable between the items');
    assert.equal(reportAfterFirst.state, 'running');
    assert.equal(reportAfterFirst.finishedAt, undefined);
    assert.deepEqual(reportAfterFirst.items.map((i) => i.status), ['succeeded', 'not-run']);
    for (const item of again.items) {
      assert.equal(item.distances?.length, 1);
      assert.ok(item.distances![0]! >= 0);
      await fs.access(path.join(root, item.result!));
      await fs.access(path.join(root, item.recipe!));
    }
    assert.equal(again.totals.meanDistance, Math.round(((again.items[0]!.distances![0]! + again.items[1]!.distances![0]!) / 2) * 100) / 100);

    // And a third run has nothing left to do: it reports the existing results as skipped.
    const third = await runPlannedBatch(await planBatch(options), options, environment);
    assert.deepEqual(third.items.map((i) => i.status), ['skipped', 'skipped']);
    assert.deepEqual(third.items.map((i) => i.result), again.items.map((i) => i.result));
    assert.deepEqual(third.items.map((i) => i.distances), again.items.map((i) => i.distances));
  });

  it('checks the image again right before its edit: a file swapped for a link out of the folder is refused', async () => {
    const root = await folderWith('swapped', ['one.png']);
    const options: BatchOptions = { folder: root, model, clipModel: TINY_CLIP, device: 'cpu', workingWidth: 64 };
    const planning = await planBatch(options);
    assert.equal(planning.plan.items[0]!.state, 'pending');
    const outside = path.join(dir, 'swapped-outside.png');
    await fs.rename(path.join(root, 'one.png'), outside);
    await fs.symlink(outside, path.join(root, 'one.png'));
    const report = await runPlannedBatch(planning, options, environment);
    assert.equal(report.items[0]!.status, 'failed');
    assert.match(report.items[0]!.error!, /^The image ".*one\.png" named by one\.png\.clipdrag-edit\.json leads through a symbolic link to .*swapped-outside\.png, outside the folder/);
    assert.deepEqual(await fs.readdir(path.dirname(outside)).then((names) => names.filter((n) => n.startsWith('swapped-outside'))), ['swapped-outside.png'], 'nothing was written next to the outside file');
  });

  it('stops at the first item when the batch models cannot be used', async () => {
    const root = await folderWith('no-model', ['one.png', 'two.png', 'three.png']);
    const options: BatchOptions = { folder: root, model: path.join(dir, 'no-such-model'), clipModel: TINY_CLIP, device: 'cpu', workingWidth: 64 };
    const report = await runPlannedBatch(await planBatch(options), options, environment);
    assert.equal(report.state, 'stopped');
    assert.deepEqual(report.items.map((i) => i.status), ['failed', 'not-run', 'not-run']);
    assert.match(report.items[0]!.error!, /no-such-model/);
    assert.match(report.stopReason!, /^one\.png failed in a way every later item would .*; fix that and run the batch again\.$/);
    assert.match(await fs.readFile(path.join(root, 'clipdrag-batch-report.md'), 'utf8'), /\*\*Stopped:\*\* one\.png failed/);
  });
});
