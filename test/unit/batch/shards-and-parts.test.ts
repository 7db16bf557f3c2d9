// Static shards (K/N, Slurm job arrays, Kubernetes Indexed Jobs), the merge of workers' report parts, and the sbatch
// script CLIPDrag writes (run through bash with the CLI replaced by printf, to see the exact words it passes).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { sharedBatchProgress, type BatchItemResult, type BatchReportPart } from '../../../src/shared/batch';
import { slurmScript } from '../../../src/shared/slurm-script';
import { mergeReportParts } from '../../../src/sidecar/batch/report-parts';
import { inShard, parseShard, shardFromEnvironment } from '../../../src/sidecar/batch/shard';
import { parseBatchOptions } from '../../../src/sidecar/cli/batch-command';

describe('shards', () => {
  it('K/N slices cover the plan once', () => {
    const count = 3;
    const slices = [0, 1, 2].map((index) => Array.from({ length: 10 }, (_, i) => i).filter((i) => inShard(i, parseShard(`${index}/${count}`))));
    assert.deepEqual(slices, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]);
    assert.throws(() => parseShard('3/3'), /not one of 0 to 2/);
    assert.throws(() => parseShard('1-3'), /expects K\/N/);
    assert.throws(() => parseShard('0/0'), /at least 1/);
  });

  it('auto: Slurm array ids relative to the array, or absolute with --shards; Indexed Jobs need --shards', () => {
    assert.deepEqual(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '12', SLURM_ARRAY_TASK_MIN: '10', SLURM_ARRAY_TASK_MAX: '13' }, undefined), { index: 2, count: 4 });
    assert.deepEqual(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' }, undefined), { index: 1, count: 3 });
    // A resubmitted single task (--array=1) keeps its slice when the script says --shards.
    assert.deepEqual(shardFromEnvironment({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '1' }, 3), { index: 1, count: 3 });
    assert.deepEqual(shardFromEnvironment({ JOB_COMPLETION_INDEX: '4' }, 5), { index: 4, count: 5 });
    assert.throws(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '4' }, undefined), /needs --shards N/);
    assert.throws(() => shardFromEnvironment({ JOB_COMPLETION_INDEX: '5' }, 5), /not one of 0 to 4/);
    assert.throws(() => shardFromEnvironment({}, undefined), /no scheduler task index/);
  });

  it('the CLI: --shard implies a worker; usage errors say what to pass', () => {
    const parse = (args: string[], env: NodeJS.ProcessEnv) => {
      const options = parseBatchOptions(args, '/', env);
      assert.notEqual(options, 'help');
      return options as Exclude<typeof options, 'help'>;
    };
    const options = parse(['/data', '--shard', 'auto', '--shards', '4', '--claim-timeout', '2.5'], { SLURM_ARRAY_TASK_ID: '3' });
    assert.deepEqual(options.worker, { shard: { index: 3, count: 4 }, claimTimeoutMs: 2500 });
    assert.deepEqual(parse(['/data', '--worker'], {}).worker, {});
    assert.equal(parse(['/data', '--report'], {}).mergeOnly, true);
    assert.throws(() => parseBatchOptions(['/data', '--shard', '1/2', '--shards', '2'], '/', {}), /--shards goes with --shard auto/);
    assert.throws(() => parseBatchOptions(['/data', '--claim-timeout', '0'], '/', {}), /positive number of seconds/);
  });
});

function part(id: string, startedAt: string, items: Array<Partial<BatchItemResult> & { image: string }>, finishedAt?: string): BatchReportPart {
  const full = items.map((item) => ({ source: 'spec' as const, specFile: `${item.image}.clipdrag-edit.json`, status: 'not-run' as const, ...item }));
  return {
    reportVersion: 1,
    folder: '/data',
    startedAt,
    state: finishedAt ? 'completed' : 'running',
    models: { model: 'm', clipModel: 'c' },
    device: 'cpu',
    items: full,
    totals: { items: 0, succeeded: 0, skipped: 0, failed: 0, cancelled: 0, notRun: 0, seconds: 0, meanDistance: null },
    worker: { id, host: 'h', pid: 1, startedAt, state: finishedAt ? 'completed' : 'running', ran: 0, succeeded: 0, failed: 0, editSeconds: 0, wallSeconds: 0, ...(finishedAt ? { finishedAt } : {}) },
  };
}

describe('merging report parts', () => {
  it('keeps the record that says most about each item, and lists planned items no part mentions', () => {
    const a = part('a', '2026-01-01T00:00:00Z', [
      { image: 'x.png', status: 'succeeded', result: 'x.clipdrag.png', seconds: 3 },
      { image: 'y.png', status: 'cancelled' },
    ], '2026-01-01T00:01:00Z');
    const b = part('b', '2026-01-01T00:00:01Z', [
      { image: 'x.png', status: 'skipped', result: 'x.clipdrag.png' },
      { image: 'y.png', status: 'succeeded', result: 'y.clipdrag.png', seconds: 4 },
    ]); // killed: never finished
    const planned = ['x.png', 'y.png', 'z.png'].map((image) => ({ image, source: 'spec' as const, specFile: '', status: 'not-run' as const }));
    const merged = mergeReportParts([a, b], planned)!;
    assert.deepEqual(merged.items.map((item) => [item.image, item.status, item.worker]), [['x.png', 'succeeded', 'a'], ['y.png', 'succeeded', 'b'], ['z.png', 'not-run', undefined]]);
    assert.equal(merged.finishedAt, undefined, 'z.png never ran');
    assert.equal(merged.state, 'running');
    const done = mergeReportParts([a, b], planned.slice(0, 2))!;
    assert.equal(done.state, 'completed');
    assert.equal(done.finishedAt, '2026-01-01T00:01:00Z');
    assert.deepEqual(done.workers!.map((w) => w.id), ['a', 'b']);
    assert.equal(done.totals.seconds, 7);
  });

  it('progress counts each image once, only from parts of this submission', () => {
    const old = part('old', '2025-12-31T00:00:00Z', [{ image: 'x.png', status: 'succeeded', worker: 'old' }], '2025-12-31T00:01:00Z');
    const now = part('now', '2026-01-01T00:00:00Z', [
      { image: 'y.png', status: 'succeeded', worker: 'now' },
      { image: 'z.png', status: 'failed', worker: 'now' },
      { image: 'w.png', status: 'failed', error: 'invalid' },
    ]);
    assert.deepEqual(sharedBatchProgress([old, now], '2026-01-01T00:00:00Z'), { ran: 2, failed: 1, runningWorkers: 1 });
  });
});

describe('the sbatch script', () => {
  it('is bash that starts one shard per array task with the words it was given', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clipdrag-sbatch-'));
    try {
      const folder = path.join(dir, "it's a folder");
      const text = slurmScript({ folder, tasks: 4, command: ['printf', '%s\\n'], batchArgs: ['--model', 'org/model', '--param', 'prompt=a b'], hubCache: path.join(dir, 'hf cache'), time: '02:00:00' });
      assert.match(text, /^#!\/bin\/bash\n/);
      assert.match(text, /^#SBATCH --array=0-3$/m);
      assert.match(text, /^#SBATCH --gres=gpu:1$/m);
      assert.match(text, /^#SBATCH --time=02:00:00$/m);
      assert.doesNotMatch(slurmScript({ folder, tasks: 2, command: ['x'], gpusPerTask: 0 }), /gres/);
      const script = path.join(dir, 'job.sbatch');
      await writeFile(script, text);
      const { stdout } = await promisify(execFile)('bash', [script], { env: { PATH: process.env.PATH } });
      const words = stdout.trimEnd().split('\n');
      assert.deepEqual(words, ['batch', folder, '--shard', 'auto', '--shards', '4', '--model', 'org/model', '--param', 'prompt=a b']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
