// The sbatch script that runs a batch folder as a Slurm job array: one task per shard (`--shard auto --shards N`),
// each with its own GPU, all sharing the folder and the Hugging Face cache over the cluster's shared filesystem.
// Written by "CLIPDrag: Submit Batch to Slurm…", shown in docs/cluster.md, and run by the Slurm test. Types and
// strings only (no Node- or VS Code-only code).

export interface SlurmScriptOptions {
  /** The batch folder (absolute, on the shared filesystem). */
  folder: string;
  /** Array tasks, one shard each. */
  tasks: number;
  /** How to start the CLI on a compute node, as words (e.g. ['clipdrag'] or [node, '/…/dist/sidecar.js']). */
  command: readonly string[];
  /** Further `clipdrag batch` options (models, device, parameters). */
  batchArgs?: readonly string[];
  /** GPUs per task (default 1; 0 for CPU-only partitions). */
  gpusPerTask?: number;
  cpusPerTask?: number;
  /** Wall-time limit per task (sbatch --time), e.g. "12:00:00". */
  time?: string;
  partition?: string;
  jobName?: string;
  /** The Hugging Face cache on the shared filesystem (HF_HUB_CACHE), so models are downloaded once. */
  hubCache?: string;
  /** Where Slurm writes each task's log (default `<folder>/.clipdrag-batch/slurm`). */
  logFolder?: string;
  /** Seconds after which a dead task's claim is taken over (default the CLI's). */
  claimTimeoutSeconds?: number;
}

/** A word for bash, single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function slurmScript(options: SlurmScriptOptions): string {
  const tasks = Math.max(1, Math.floor(options.tasks));
  const gpus = options.gpusPerTask ?? 1;
  const logs = options.logFolder ?? `${options.folder.replace(/\/+$/, '')}/.clipdrag-batch/slurm`;
  const directive = (text: string) => `#SBATCH ${text}`;
  const command = [
    ...options.command,
    'batch',
    options.folder,
    '--shard',
    'auto',
    '--shards',
    String(tasks),
    ...(options.claimTimeoutSeconds !== undefined ? ['--claim-timeout', String(options.claimTimeoutSeconds)] : []),
    ...(options.batchArgs ?? []),
  ];
  return [
    '#!/bin/bash',
    directive(`--job-name=${shellQuote(options.jobName ?? 'clipdrag-batch')}`),
    directive(`--array=0-${tasks - 1}`),
    directive('--ntasks=1'),
    directive(`--cpus-per-task=${options.cpusPerTask ?? 4}`),
    ...(gpus > 0 ? [directive(`--gres=gpu:${gpus}`)] : []),
    ...(options.time ? [directive(`--time=${options.time}`)] : []),
    ...(options.partition ? [directive(`--partition=${shellQuote(options.partition)}`)] : []),
    directive(`--output=${shellQuote(`${logs}/%A_%a.log`)}`),
    '',
    `# A CLIPDrag batch over ${options.folder.replace(/\n/g, ' ')}: array task K runs slice K of ${tasks} of the plan.`,
    '# Every item is claimed before it runs, and items with a matching result are skipped, so resubmitting is safe:',
    '#   all tasks again:          sbatch <this file>',
    '#   only tasks 1 and 3:       sbatch --array=1,3 <this file>',
    '# The merged report: clipdrag-batch-report.md in the folder (`clipdrag batch <folder> --report` merges it now).',
    `# Slurm opens the log before this script runs: the folder must exist (mkdir -p ${logs.replace(/\n/g, ' ')}).`,
    'set -euo pipefail',
    ...(options.hubCache ? [`export HF_HUB_CACHE=${shellQuote(options.hubCache)}`] : []),
    `exec ${command.map(shellQuote).join(' ')}`,
    '',
  ].join('\n');
}
