// Workers sharing one batch folder, as real `clipdrag batch --worker` processes with the tiny models: three started
// together edit every item exactly once and leave one merged report; a worker killed (SIGKILL) inside an item leaves
// a claim that expires, and another worker redoes that item; nothing temporary or partial is left behind.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BatchReport, BatchReportPart } from '../../../src/shared/batch';
import { makeWorkerFolder } from '../../support/batch-folder';
import { filesUnder, startClipdrag } from '../../support/clipdrag-child';
import { tempDir, tinySdWithTokenizer } from '../../support/tiny-pipeline';

let dir: string;
let modelArgs: string[];
let env: NodeJS.ProcessEnv;

/** The files a finished folder holds: sources, specs, one result and recipe per image, the report, the parts. */
function expectedFiles(images: readonly string[], partIds: readonly string[]): string[] {
  return [
    ...images.flatMap((image) => {
      const stem = image.replace(/\.png$/, '');
      return [image, `${image}.clipdrag-edit.json`, `${stem}.clipdrag.png`, `${stem}.clipdrag.json`];
    }),
    'clipdrag-batch-report.json',
    'clipdrag-batch-report.md',
    ...partIds.map((id) => `.clipdrag-batch/parts/${id}.json`),
  ].sort();
}

async function mergedReport(folder: string): Promise<BatchReport> {
  return JSON.parse(await fs.readFile(path.join(folder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
}

async function parts(folder: string): Promise<BatchReportPart[]> {
  const names = await fs.readdir(path.join(folder, '.clipdrag-batch', 'parts'));
  return Promise.all(names.map(async (name) => JSON.parse(await fs.readFile(path.join(folder, '.clipdrag-batch', 'parts', name), 'utf8')) as BatchReportPart));
}

describe('clipdrag batch --worker: several processes on one folder (tiny models, CPU)', () => {
  before(async () => {
    dir = await fs.realpath(await tempDir('workers'));
    const model = await tinySdWithTokenizer(dir);
    modelArgs = ['--model', model, '--device', 'cpu', '--working-width', '64'];
    env = { ...process.env, CLIPDRAG_CACHE_DIR: path.join(dir, 'cache') };
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('three workers started together edit every item exactly once and merge one report', { timeout: 300_000 }, async () => {
    const folder = path.join(dir, 'three');
    const images = await makeWorkerFolder(folder, 6);
    const runs = await Promise.all([0, 1, 2].map(() => startClipdrag(['batch', folder, '--worker', '--json', ...modelArgs], env).done));
    for (const run of runs) assert.equal(run.code, 0, run.stderr);

    const workerParts = runs.map((run) => JSON.parse(run.stdout) as BatchReportPart);
    // Each item ran in exactly one worker; the others found its result and skipped it.
    for (const image of images) {
      const ranBy = workerParts.filter((part) => part.items.some((item) => item.image === image && item.status === 'succeeded'));
      assert.equal(ranBy.length, 1, `${image} ran in ${ranBy.length} workers`);
    }
    assert.equal(workerParts.reduce((sum, part) => sum + part.worker.ran, 0), images.length);

    const report = await mergedReport(folder);
    assert.equal(report.state, 'completed');
    assert.ok(report.finishedAt);
    assert.deepEqual(report.items.map((item) => [item.image, item.status]), images.map((image) => [image, 'succeeded']));
    assert.deepEqual(report.totals, { ...report.totals, items: 6, succeeded: 6, failed: 0, notRun: 0 });
    const ids = workerParts.map((part) => part.worker.id).sort();
    assert.deepEqual(report.workers!.map((worker) => worker.id).sort(), ids);
    for (const item of report.items) assert.ok(ids.includes(item.worker!), `${item.image} names its worker`);
    for (const worker of report.workers!) {
      assert.ok(worker.finishedAt && worker.wallSeconds > 0 && worker.editSeconds >= 0, JSON.stringify(worker));
    }
    const markdown = await fs.readFile(path.join(folder, 'clipdrag-batch-report.md'), 'utf8');
    assert.match(markdown, /## Workers/);
    for (const id of ids) assert.ok(markdown.includes(id));

    // One result per image (no `-2` from a second run), no claim, no temporary file anywhere.
    assert.deepEqual(await filesUnder(folder), expectedFiles(images, ids));

    // --report merges on demand to the same report.
    const merged = await startClipdrag(['batch', folder, '--report', '--json', ...modelArgs], env).done;
    assert.equal(merged.code, 0, merged.stderr);
    assert.deepEqual((JSON.parse(merged.stdout) as BatchReport).items, report.items);
  });

  it('a worker killed inside an item leaves a claim that expires; another worker redoes the item', { timeout: 300_000 }, async () => {
    const folder = path.join(dir, 'killed');
    const images = await makeWorkerFolder(folder, 2);
    const claimTimeout = ['--claim-timeout', '3'];

    // Two workers start together; the one that claimed blob-0 is killed (SIGKILL: no cleanup at all) inside its
    // LoRA stage. The other finds blob-0 claimed, runs blob-1, waits for the dead claim to expire, takes it over.
    let killedPid: number | undefined;
    const watch = (line: string, child: import('node:child_process').ChildProcess) => {
      if (killedPid === undefined && /^\[1\/2\] blob-0\.png: lora/.test(line)) {
        killedPid = child.pid;
        child.kill('SIGKILL');
      }
    };
    const workers = [0, 1].map(() => startClipdrag(['batch', folder, '--worker', '--json', ...claimTimeout, ...modelArgs], env, watch));
    const runs = await Promise.all(workers.map((worker) => worker.done));
    const killed = runs[workers.findIndex((worker) => worker.child.pid === killedPid)]!;
    const rescuer = runs[workers.findIndex((worker) => worker.child.pid !== killedPid)]!;
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    assert.equal(rescuer.code, 0, rescuer.stderr);

    const part = JSON.parse(rescuer.stdout) as BatchReportPart;
    assert.deepEqual(part.items.map((item) => [item.image, item.status]), [['blob-0.png', 'succeeded'], ['blob-1.png', 'succeeded']]);
    assert.ok(rescuer.stderr.indexOf('blob-1.png: starting') < rescuer.stderr.indexOf('blob-0.png: starting'), 'blob-0 was left to its owner first');

    const report = await mergedReport(folder);
    assert.equal(report.totals.succeeded, 2);
    assert.ok(report.items.every((item) => item.worker === part.worker.id));
    const dead = report.workers!.find((worker) => worker.pid === killedPid);
    assert.ok(dead && dead.finishedAt === undefined, 'the killed worker is listed as not finished');
    const ids = (await parts(folder)).map((p) => p.worker.id);
    assert.deepEqual(await filesUnder(folder), expectedFiles(images, ids));
  });
});
