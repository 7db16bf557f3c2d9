// A batch run by a real Slurm (single node, started here): the sbatch script CLIPDrag writes, as a job array of three
// tasks with one shard each, finishes every item exactly once; then, after more images are added, one running task is
// cancelled with scancel and resubmitted alone, and the folder ends complete, each item edited once, nothing partial.
// Needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup-test-env.mjs installs them);
// where the daemons cannot start, the test is skipped and says why.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { BatchReport } from '../../src/shared/batch';
import { slurmScript } from '../../src/shared/slurm-script';
import { makeWorkerFolder } from '../support/batch-folder';
import { filesUnder, REPO, SIDECAR_MAIN } from '../support/clipdrag-child';
import { slurmUnavailable, spawnWithEnv, startSlurm, type SlurmCluster } from '../support/slurm-cluster';
import { tempDir, tinySdWithTokenizer } from '../support/tiny-pipeline';

const run = promisify(execFile);
const JOB_NAME = 'clipdrag-slurm-test';

let cluster: SlurmCluster | undefined;
let skipReason: string | undefined;
let dir: string;
let folder: string;
let script: string;
let env: NodeJS.ProcessEnv;

function sbatch(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // The job starts in sbatch's folder, where `--import tsx` finds the repository's tsx.
  return spawnWithEnv('sbatch', ['--wait', ...args, script], env, REPO);
}

/** Each image has exactly one result and recipe; besides them only sources, specs, report, parts and Slurm logs. */
async function assertEditedOnce(images: readonly string[]): Promise<void> {
  const files = (await filesUnder(folder)).filter((file) => !file.startsWith('.clipdrag-batch/parts/') && !file.startsWith('.clipdrag-batch/slurm/'));
  const expected = images.flatMap((image) => {
    const stem = image.replace(/\.png$/, '');
    return [image, `${image}.clipdrag-edit.json`, `${stem}.clipdrag.png`, `${stem}.clipdrag.json`];
  });
  assert.deepEqual(files, [...expected, 'clipdrag-batch-report.json', 'clipdrag-batch-report.md'].sort());
}

async function report(): Promise<BatchReport> {
  return JSON.parse(await fs.readFile(path.join(folder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
}

describe('clipdrag batch on a real single-node Slurm', () => {
  before(async () => {
    skipReason = await slurmUnavailable();
    if (skipReason) return;
    try {
      cluster = await startSlurm();
    } catch (error) {
      skipReason = error instanceof Error ? error.message : String(error);
      return;
    }
    dir = await fs.realpath(await tempDir('slurm'));
    folder = path.join(dir, 'dataset');
    const model = await tinySdWithTokenizer(dir);
    env = { ...cluster.env, CLIPDRAG_CACHE_DIR: path.join(dir, 'cache') };
    script = path.join(dir, 'clipdrag-batch.sbatch');
    const logFolder = path.join(folder, '.clipdrag-batch', 'slurm');
    await fs.mkdir(logFolder, { recursive: true }); // Slurm opens the log before the script runs
    await fs.writeFile(
      script,
      slurmScript({
        folder,
        tasks: 3,
        command: [process.execPath, '--import', 'tsx', SIDECAR_MAIN],
        batchArgs: ['--model', model, '--device', 'cpu', '--working-width', '64'],
        gpusPerTask: 0, // the test node has no GPU; the script CLIPDrag writes asks for one per task
        cpusPerTask: 1,
        jobName: JOB_NAME,
        logFolder,
        claimTimeoutSeconds: 60,
      }),
    );
  });
  after(async () => {
    await cluster?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('an array of three tasks edits every item once; a cancelled task resubmitted completes the rest', { timeout: 540_000 }, async (t) => {
    if (skipReason) {
      t.skip(`Slurm unavailable: ${skipReason.split('\n')[0]}`);
      return;
    }
    const first = await makeWorkerFolder(folder, 6);
    const job = await sbatch([]);
    assert.equal(job.code, 0, `${job.stdout}${job.stderr}${await slurmLogs()}`);
    await assertEditedOnce(first);
    let merged = await report();
    assert.equal(merged.state, 'completed');
    assert.deepEqual(merged.items.map((item) => item.status), first.map(() => 'succeeded'));
    assert.deepEqual(merged.workers!.map((worker) => `${worker.shard?.index}/${worker.shard?.count}`).sort(), ['0/3', '1/3', '2/3']);

    // More images; task 1 is cancelled while it edits one (its claim names its shard).
    const added = await makeWorkerFolder(folder, 3, 6);
    const second = sbatch([]);
    const claim = await waitForClaim('1/3', 240_000);
    const { stdout: arrayJob } = await run('squeue', ['-h', '-n', JOB_NAME, '-o', '%F'], { env });
    await run('scancel', [`${arrayJob.trim().split('\n')[0]}_1`], { env });
    const cancelled = await second;
    assert.notEqual(cancelled.code, 0, 'sbatch --wait reports the cancelled task');
    merged = await report();
    const cancelledItem = merged.items.find((item) => item.image === claim.image)!;
    assert.ok(['cancelled', 'not-run'].includes(cancelledItem.status), JSON.stringify(cancelledItem));
    assert.ok(!(await filesUnder(folder)).some((file) => file.startsWith(claim.image.replace(/\.png$/, '.clipdrag'))), 'nothing of the cancelled item was written');
    assert.deepEqual(await fs.readdir(path.join(folder, '.clipdrag-batch', 'claims')), [], 'the cancelled task released its claim');

    // Resubmitting only task 1 runs slice 1 of 3 again: what was cancelled.
    const resubmitted = await sbatch(['--array=1']);
    assert.equal(resubmitted.code, 0, `${resubmitted.stdout}${resubmitted.stderr}${await slurmLogs()}`);
    const all = [...first, ...added].sort();
    await assertEditedOnce(all);
    merged = await report();
    assert.equal(merged.state, 'completed');
    assert.deepEqual(merged.items.map((item) => [item.image, item.status]), all.map((image) => [image, 'succeeded']));
  });
});

async function waitForClaim(shard: string, timeoutMs: number): Promise<{ image: string }> {
  const claims = path.join(folder, '.clipdrag-batch', 'claims');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const name of await fs.readdir(claims).catch(() => [])) {
      let claim: { shard?: string; image?: string } = {};
      try {
        claim = JSON.parse(await fs.readFile(path.join(claims, name), 'utf8')) as typeof claim;
      } catch {
        continue; // released, or still being written
      }
      if (claim.shard === shard && claim.image) return { image: claim.image };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no claim of shard ${shard} within ${timeoutMs / 1000} s${await slurmLogs()}`);
}

async function slurmLogs(): Promise<string> {
  const logs = path.join(folder, '.clipdrag-batch', 'slurm');
  const names = await fs.readdir(logs).catch(() => [] as string[]);
  const texts = await Promise.all(names.map(async (name) => `\n--- ${name}\n${(await fs.readFile(path.join(logs, name), 'utf8')).slice(-2000)}`));
  return texts.join('');
}
