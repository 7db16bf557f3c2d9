// Static shards of a plan: `--shard K/N` runs the items whose position in the plan (ordered by image path) modulo N
// is K, so N tasks started with K = 0 … N-1 cover the plan once, whatever machine each runs on. `--shard auto` reads
// K and N from the scheduler that started the process: a Slurm job array or a Kubernetes Indexed Job.
import type { BatchShard } from '../../shared/batch';

export class ShardError extends Error {
  override readonly name = 'ShardError';
}

/** "2/8" → { index: 2, count: 8 }. */
export function parseShard(text: string): BatchShard {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!match) throw new ShardError(`--shard expects K/N (K from 0 to N-1, e.g. 0/4) or auto (got ${JSON.stringify(text)})`);
  return checkedShard(Number(match[1]), Number(match[2]), `--shard ${text}`);
}

/**
 * The shard of this task from the environment:
 * - Slurm job array: `SLURM_ARRAY_TASK_ID`; with `shards` given, K = the task id and N = `shards` (so a resubmitted
 *   single task, `--array=3`, reruns slice 3); else K = id − `SLURM_ARRAY_TASK_MIN` and N = max − min + 1 (or
 *   `SLURM_ARRAY_TASK_COUNT`).
 * - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, with N = `shards` (the Job's `completions`).
 */
export function shardFromEnvironment(env: NodeJS.ProcessEnv, shards: number | undefined): BatchShard {
  const number = (name: string): number | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    if (!/^\d+$/.test(value)) throw new ShardError(`--shard auto: ${name} is ${JSON.stringify(value)}, not a task index`);
    return Number(value);
  };
  const slurmTask = number('SLURM_ARRAY_TASK_ID');
  if (slurmTask !== undefined) {
    if (shards !== undefined) return checkedShard(slurmTask, shards, `SLURM_ARRAY_TASK_ID=${slurmTask} with --shards ${shards}`);
    const min = number('SLURM_ARRAY_TASK_MIN');
    const max = number('SLURM_ARRAY_TASK_MAX');
    const count = number('SLURM_ARRAY_TASK_COUNT');
    if (min !== undefined && max !== undefined) return checkedShard(slurmTask - min, max - min + 1, `SLURM_ARRAY_TASK_ID=${slurmTask} in ${min}-${max}`);
    if (count !== undefined) return checkedShard(slurmTask, count, `SLURM_ARRAY_TASK_ID=${slurmTask} of ${count}`);
    throw new ShardError('--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_MIN/MAX nor SLURM_ARRAY_TASK_COUNT; pass --shards N');
  }
  const completionIndex = number('JOB_COMPLETION_INDEX');
  if (completionIndex !== undefined) {
    if (shards === undefined) throw new ShardError('--shard auto in a Kubernetes Indexed Job needs --shards N (the Job\'s completions)');
    return checkedShard(completionIndex, shards, `JOB_COMPLETION_INDEX=${completionIndex} with --shards ${shards}`);
  }
  throw new ShardError('--shard auto found no scheduler task index (SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX); use --shard K/N or --worker');
}

/** Whether the plan's item at `position` belongs to `shard` (every item when there is none). */
export function inShard(position: number, shard: BatchShard | undefined): boolean {
  return shard === undefined || position % shard.count === shard.index;
}

function checkedShard(index: number, count: number, from: string): BatchShard {
  if (!Number.isSafeInteger(count) || count < 1) throw new ShardError(`${from}: the number of shards must be at least 1`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new ShardError(`${from}: shard ${index} is not one of 0 to ${count - 1}`);
  return { index, count };
}
