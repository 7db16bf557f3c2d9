// `clipdrag batch` as a child process over a fixture folder (images with specs, a DragBench sample, a file that is not
// an image, a cut-off PNG, masks named outside the folder) with the tiny fixture models: results and report appear,
// broken images and paths out of the folder are reported without stopping the batch, a rerun skips what is done,
// Ctrl-C cancels, and a batch killed mid-way continues.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import type { BatchPlan, BatchReport } from '../../../src/shared/batch';
import { BATCH_FOLDER_ITEMS, BATCH_TEST_PARAM_FLAGS, makeBatchFolder } from '../../support/batch-folder';
import { tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');
const MAIN = path.join(repo, 'src', 'sidecar', 'main.ts');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let folder: string;
let modelArgs: string[];

/** Runs the CLI; `onLine` sees each stderr line and may return a signal to send to the process. */
function clipdrag(args: string[], onLine?: (line: string) => NodeJS.Signals | undefined): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: repo,
      env: { ...process.env, CLIPDRAG_CACHE_DIR: path.join(dir, 'cache') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      stderr += `${line}\n`;
      const signal = signalled ? undefined : onLine?.(line);
      if (signal) {
        signalled = true;
        child.kill(signal);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function report(): Promise<BatchReport> {
  return JSON.parse(await fs.readFile(path.join(folder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
}

async function listing(root: string): Promise<string[]> {
  return (await fs.readdir(root, { recursive: true })).map(String).sort();
}

describe('clipdrag batch (tiny models, CPU)', () => {
  let outsideBefore: string[];

  before(async () => {
    dir = await fs.realpath(await tempDir('cli-batch'));
    folder = await makeBatchFolder(path.join(dir, 'work'));
    const model = await tinySdWithTokenizer(dir);
    modelArgs = ['--model', model, '--clip', TINY_CLIP, '--device', 'cpu', '--working-width', '64', ...BATCH_TEST_PARAM_FLAGS];
    outsideBefore = (await listing(dir)).filter((f) => !f.startsWith('work') && !f.startsWith('cache'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('--plan --json shows what would run without running it', async () => {
    const run = await clipdrag(['batch', folder, '--plan', '--json', ...modelArgs]);
    assert.equal(run.code, 0, run.stderr);
    const plan = JSON.parse(run.stdout) as BatchPlan;
    assert.deepEqual(
      plan.items.map((i) => [i.image, i.source, i.state]),
      [
        ['bench/animals/sample_1/original_image.png', 'dragbench', 'pending'],
        ['broken.png', 'spec', 'invalid'],
        ['cats/blob-a.png', 'spec', 'pending'],
        ['cats/blob-b.png', 'spec', 'pending'],
        ['cut.png', 'spec', 'pending'],
        ['escape-absolute.png', 'spec', 'invalid'],
        ['escape-up.png', 'spec', 'invalid'],
      ],
    );
    assert.deepEqual(Object.keys(BATCH_FOLDER_ITEMS), plan.items.map((i) => i.image));
    assert.match(plan.items[1]!.problem!, /broken\.png" is not a PNG, JPEG or WebP image/);
    assert.match(plan.items[5]!.problem!, /\$\.mask: ".*outside-mask\.png" is absolute; expected a path relative to the spec inside the image's folder/);
    assert.match(plan.items[6]!.problem!, /\$\.mask: "\.\.\/outside-mask\.png" leaves the image's folder/);
    assert.equal(plan.estimate.basis, 'default');
    assert.equal(plan.reportFiles.json, path.join(folder, 'clipdrag-batch-report.json'));
    await assert.rejects(fs.access(plan.reportFiles.json), 'planning writes nothing');
  });

  it('Ctrl-C cancels inside the current item: exit 130, the report says so, nothing half-written', async () => {
    const run = await clipdrag(['batch', folder, ...modelArgs], (line) => (/\[1\/7\] .*: drag /.test(line) ? 'SIGINT' : undefined));
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /SIGINT: cancelling the batch after the current step/);
    assert.match(run.stdout, /^Batch cancelled: 0 done, 0 skipped, 0 failed, 1 cancelled, 6 not run/m);
    const saved = await report();
    assert.equal(saved.state, 'cancelled');
    assert.deepEqual(saved.items.map((i) => i.status), ['cancelled', 'not-run', 'not-run', 'not-run', 'not-run', 'not-run', 'not-run']);
    assert.deepEqual(await fs.readdir(path.join(folder, 'bench', 'animals', 'sample_1')), ['meta_data.pkl', 'original_image.png', 'user_drag.png']);
  });

  it('runs the folder: results next to their sources, broken images reported without stopping, a report', async (t) => {
    const started = Date.now();
    const run = await clipdrag(['batch', folder, ...modelArgs]);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 1, `exit 1 because items failed\n${run.stderr}`);
    assert.match(run.stdout, /^Batch finished: 3 done, 0 skipped, 4 failed, 0 cancelled, 0 not run/m);
    assert.match(run.stdout, /^failed: broken\.png: .*not a PNG, JPEG or WebP image/m);
    assert.match(run.stdout, /^failed: cut\.png: .*damaged or incomplete/m);
    // A refused spec says why on the lines after its first.
    assert.match(run.stdout, /^failed: escape-absolute\.png: Edit spec .*escape-absolute\.png\.clipdrag-edit\.json is not valid \(1 problem\):\n {4}\$\.mask: ".*outside-mask\.png" is absolute/m);
    assert.match(run.stdout, /^failed: escape-up\.png: Edit spec .*escape-up\.png\.clipdrag-edit\.json is not valid \(1 problem\):\n {4}\$\.mask: "\.\.\/outside-mask\.png" leaves the image's folder/m);
    assert.match(run.stdout, /^mean final handle-to-target distance: [\d.]+ px$/m);
    assert.match(run.stdout, new RegExp(`^report: ${folder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/clipdrag-batch-report\\.md$`, 'm'));
    // Progress on stderr: the plan, then each item.
    assert.match(run.stderr, /^.*work: 7 items: 4 to run, 0 already done, 3 cannot run$/m);
    assert.match(run.stderr, /^\[3\/7\] cats\/blob-a\.png: done in .*, cats\/blob-a\.clipdrag\.png$/m);

    const saved = await report();
    assert.equal(saved.state, 'completed');
    assert.deepEqual(
      saved.items.map((i) => [i.image, i.status, i.result ?? null]),
      [
        ['bench/animals/sample_1/original_image.png', 'succeeded', 'bench/animals/sample_1/original_image.clipdrag.png'],
        ['broken.png', 'failed', null],
        ['cats/blob-a.png', 'succeeded', 'cats/blob-a.clipdrag.png'],
        ['cats/blob-b.png', 'succeeded', 'cats/blob-b.clipdrag.png'],
        ['cut.png', 'failed', null],
        ['escape-absolute.png', 'failed', null],
        ['escape-up.png', 'failed', null],
      ],
    );
    for (const item of saved.items.filter((i) => i.status === 'succeeded')) {
      await fs.access(path.join(folder, item.result!));
      const recipe = JSON.parse(await fs.readFile(path.join(folder, item.recipe!), 'utf8')) as { source: { file: string } };
      assert.equal(recipe.source.file, path.basename(item.image));
      assert.equal(item.distances?.length, 1);
      assert.ok((item.seconds ?? 0) > 0);
    }
    assert.equal(saved.items[4]!.seconds !== undefined, true, 'the cut-off PNG failed while running, not while planning');
    const markdown = await fs.readFile(path.join(folder, 'clipdrag-batch-report.md'), 'utf8');
    assert.match(markdown, /\| 3 \| `cats\/blob-a\.png` \| spec \| done \|/);
    assert.match(markdown, /### cut\.png \(FAILED\)/);
    // Nothing outside the folder (the engine's cache aside) was written.
    assert.deepEqual((await listing(dir)).filter((f) => !f.startsWith('work') && !f.startsWith('cache')), outsideBefore);
    t.diagnostic(`clipdrag batch over the fixture folder (3 edits, 2 broken images): ${seconds.toFixed(1)} s`);
  });

  it('a rerun skips what is done (--json: the report as one object)', async () => {
    const run = await clipdrag(['batch', folder, '--json', ...modelArgs]);
    assert.equal(run.code, 1, run.stderr);
    const result = JSON.parse(run.stdout) as BatchReport & { reportFiles: BatchPlan['reportFiles'] };
    assert.deepEqual(result.items.map((i) => i.status), ['skipped', 'failed', 'skipped', 'skipped', 'failed', 'failed', 'failed']);
    assert.equal(result.totals.skipped, 3);
    assert.equal(result.reportFiles.markdown, path.join(folder, 'clipdrag-batch-report.md'));
    assert.match(run.stderr, /7 items: 1 to run, 3 already done, 3 cannot run/);
    assert.doesNotMatch(run.stderr, /blob-a\.png: starting/);
  });

  it('killed mid-way, loses nothing already done, and the next run completes the rest', async () => {
    // New settings for every item, so everything is pending again.
    for (const name of ['blob-a.png', 'blob-b.png']) {
      const file = path.join(folder, 'cats', `${name}.clipdrag-edit.json`);
      const spec = JSON.parse(await fs.readFile(file, 'utf8')) as { parameters: Record<string, number> };
      spec.parameters.seed = 5;
      await fs.writeFile(file, JSON.stringify(spec));
    }
    const args = ['batch', folder, ...modelArgs, '--param', 'seed=5'];
    // Killed as the second edit starts: the first is done, and so is the report that says so.
    const killed = await clipdrag(args, (line) => (/^\[3\/7\] cats\/blob-a\.png: starting$/.test(line) ? 'SIGKILL' : undefined));
    assert.equal(killed.signal, 'SIGKILL');
    const interrupted = await report();
    assert.equal(interrupted.state, 'running');
    assert.equal(interrupted.finishedAt, undefined);
    assert.deepEqual(interrupted.items.map((i) => i.status), ['succeeded', 'failed', 'not-run', 'not-run', 'not-run', 'not-run', 'not-run']);
    assert.equal(interrupted.items[0]!.result, 'bench/animals/sample_1/original_image.clipdrag-2.png');
    assert.match(await fs.readFile(path.join(folder, 'clipdrag-batch-report.md'), 'utf8'), /\*\*Not finished:\*\*/);

    const rerun = await clipdrag([...args, '--json']);
    const result = JSON.parse(rerun.stdout) as BatchReport;
    assert.equal(result.state, 'completed');
    assert.deepEqual(
      result.items.map((i) => [i.status, i.result ?? null]),
      [
        ['skipped', 'bench/animals/sample_1/original_image.clipdrag-2.png'],
        ['failed', null],
        ['succeeded', 'cats/blob-a.clipdrag-2.png'],
        ['succeeded', 'cats/blob-b.clipdrag-2.png'],
        ['failed', null],
        ['failed', null],
        ['failed', null],
      ],
    );
    // The first results are still there: a batch never overwrites.
    await fs.access(path.join(folder, 'cats', 'blob-a.clipdrag.png'));
  });

  it('says what is wrong with the command line', async () => {
    const run = await clipdrag(['batch', folder, '--param', 'dragStep=3']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^clipdrag: batch: --param expects name=value with one of inferenceSteps, .*dragSteps/m);
    const missing = await clipdrag(['batch', path.join(dir, 'no-such-folder')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^clipdrag: The batch folder .*no-such-folder cannot be opened \(ENOENT\)/m);
  });
});
