// "CLIPDrag: Submit Batch to Slurm…": where `sbatch` is on PATH (a Remote-SSH window on a cluster's login node), writes
// the sbatch script of docs/cluster.md for the chosen folder (a job array, one shard and one GPU per task, models
// from the shared Hugging Face cache), submits it, and follows the job from the workers' report parts until it ends.
// The context key `clipdrag.slurmAvailable` shows the command only where it can work.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { BATCH_REPORT_NAME, sharedBatchProgress, type BatchReportPart } from '../shared/batch';
import { BatchPlanRequestType } from '../shared/protocol';
import { slurmScript } from '../shared/slurm-script';
import { batchSettings } from './batch-command';
import type { SidecarClient } from './sidecar/sidecar-client';

const run = promisify(execFile);
export const SLURM_CONTEXT_KEY = 'clipdrag.slurmAvailable';
/** Where the script, the task logs, the claims and the report parts live in the batch folder. */
const SHARED_FOLDER = '.clipdrag-batch';

/** The first executable `sbatch` on PATH, or undefined. */
export async function findOnPath(binary: string, pathVariable = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const folder of pathVariable.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(folder, binary);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      if ((await fs.stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Sets the context key that shows the command; resolves to whether sbatch was found. */
export async function detectSlurm(log: vscode.LogOutputChannel): Promise<boolean> {
  const sbatch = process.platform === 'win32' ? undefined : await findOnPath('sbatch');
  if (sbatch) log.info(`Slurm found (${sbatch}): "CLIPDrag: Submit Batch to Slurm…" is available`);
  await vscode.commands.executeCommand('setContext', SLURM_CONTEXT_KEY, sbatch !== undefined);
  return sbatch !== undefined;
}

export interface SlurmSubmission {
  jobId: string;
  script: string;
}

export async function submitSlurmBatch(
  sidecar: SidecarClient,
  sidecarScript: string,
  showError: (error: unknown) => Thenable<unknown>,
  folderArgument: unknown,
  optionsArgument?: unknown,
): Promise<SlurmSubmission | undefined> {
  const folder = folderArgument instanceof vscode.Uri ? folderArgument : await pickFolder();
  if (!folder) return undefined;
  if (folder.scheme !== 'file') {
    void vscode.window.showErrorMessage(`Slurm batches run on folders of the cluster's filesystem; ${folder.toString()} is not one.`);
    return undefined;
  }
  try {
    const settings = batchSettings(folder);
    const plan = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'CLIPDrag: looking for images to edit' }, () =>
      sidecar.sendRequest(BatchPlanRequestType, { ...settings, folder: folder.fsPath }),
    );
    if (plan.counts.pending === 0) {
      void vscode.window.showInformationMessage(`CLIPDrag: nothing to run in ${plan.folder} (${plan.counts.done} done, ${plan.counts.invalid} cannot run).`);
      return undefined;
    }
    // `executeCommand('clipdrag.submitSlurmBatch', folderUri, { tasks })` skips the question (keybindings, tasks, tests).
    const given = (optionsArgument as { tasks?: unknown } | undefined)?.tasks;
    const tasksText = typeof given === 'number' && Number.isSafeInteger(given) && given > 0 ? String(given) : await vscode.window.showInputBox({
      title: `Submit ${plan.counts.pending} images to Slurm`,
      prompt: 'Array tasks (one GPU each); each runs a slice of the folder',
      value: String(Math.min(plan.counts.pending, 4)),
      validateInput: (value) => (/^[1-9]\d*$/.test(value.trim()) ? undefined : 'a whole number of tasks, at least 1'),
    });
    if (tasksText === undefined) return undefined;
    const tasks = Number(tasksText.trim());

    const shared = path.join(plan.folder, SHARED_FOLDER);
    const logFolder = path.join(shared, 'slurm');
    await fs.mkdir(logFolder, { recursive: true }); // Slurm opens each task's log before the script runs
    const config = vscode.workspace.getConfiguration('clipdrag', folder);
    const script = path.join(shared, 'clipdrag-batch.sbatch');
    await fs.writeFile(
      script,
      slurmScript({
        folder: plan.folder,
        tasks,
        // The extension's own Node and engine: on a login node they live in the (shared) home folder.
        command: [process.execPath, sidecarScript],
        batchArgs: [
          '--model', plan.models.model,
          '--clip', plan.models.clipModel,
          '--device', settings.device ?? 'auto',
          ...(settings.precision ? ['--precision', settings.precision] : []),
          ...Object.entries(settings.dragBenchParameters ?? {}).flatMap(([name, value]) => ['--param', `${name}=${String(value)}`]),
        ],
        gpusPerTask: config.get<number>('slurm.gpusPerTask', 1),
        logFolder,
        ...(settings.hubCacheDirectory ? { hubCache: settings.hubCacheDirectory } : {}),
      }),
      { mode: 0o755 },
    );
    const submittedAt = new Date().toISOString();
    const extra = config.get<string[]>('slurm.sbatchArguments', []);
    const { stdout } = await run('sbatch', ['--parsable', ...extra, script], { cwd: plan.folder, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    const jobId = stdout.trim().split(';')[0]!;
    void followJob(jobId, plan.folder, { total: plan.counts.total - plan.counts.invalid, done: plan.counts.done, since: submittedAt });
    return { jobId, script };
  } catch (error) {
    void showError(error);
    return undefined;
  }
}

/** Progress from the report parts until squeue no longer lists the job; then offers the merged report. */
async function followJob(jobId: string, folder: string, counts: { total: number; done: number; since: string }): Promise<void> {
  const { total } = counts;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `CLIPDrag on Slurm: job ${jobId}`, cancellable: true },
    async (progress, token) => {
      let reported = 0;
      while (!token.isCancellationRequested) {
        const state = sharedBatchProgress(await readParts(folder), counts.since);
        const finished = Math.min(total, counts.done + state.ran);
        const fraction = Math.round((finished / Math.max(1, total)) * 100);
        progress.report({ message: `${finished}/${total} images (${state.failed} failed), ${state.runningWorkers} tasks running`, increment: fraction - reported });
        reported = fraction;
        if (!(await jobListed(jobId))) break;
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
    },
  );
  const report = path.join(folder, `${BATCH_REPORT_NAME}.md`);
  const choice = await vscode.window.showInformationMessage(`CLIPDrag: Slurm job ${jobId} is no longer running.`, 'Open Report');
  if (choice) await vscode.window.showTextDocument(vscode.Uri.file(report));
}

async function jobListed(jobId: string): Promise<boolean> {
  try {
    const { stdout } = await run('squeue', ['-h', '-j', jobId, '-o', '%i']);
    return stdout.trim() !== '';
  } catch {
    return false; // squeue no longer knows the job
  }
}

async function readParts(folder: string): Promise<BatchReportPart[]> {
  const partsFolder = path.join(folder, SHARED_FOLDER, 'parts');
  const names = await fs.readdir(partsFolder).catch(() => [] as string[]);
  const parts: BatchReportPart[] = [];
  for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.'))) {
    try {
      parts.push(JSON.parse(await fs.readFile(path.join(partsFolder, name), 'utf8')) as BatchReportPart);
    } catch {
      // replaced while we read it: the next poll reads the new one
    }
  }
  return parts;
}

async function pickFolder(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, openLabel: 'Submit to Slurm' });
  return picked?.[0];
}
