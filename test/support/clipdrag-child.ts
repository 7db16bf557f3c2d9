/**
 * `clipdrag` as a child process (through tsx, from the sources), for tests of workers sharing a batch folder:
 * start several at once, watch their stderr, kill one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const REPO = path.resolve(__dirname, '..', '..');
export const SIDECAR_MAIN = path.join(REPO, 'src', 'sidecar', 'main.ts');

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StartedChild {
  child: ChildProcess;
  done: Promise<ChildRun>;
}

/** Starts `clipdrag <args>`; `onLine` sees each stderr line (with the child, to kill it). */
export function startClipdrag(args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string, child: ChildProcess) => void, timeoutMs = 280_000): StartedChild {
  const child = spawn(process.execPath, ['--import', 'tsx', SIDECAR_MAIN, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<ChildRun>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr += `${line}\n`;
      onLine?.(line, child);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** Every file under `root` (relative, `/`-separated, hidden ones included), sorted. */
export async function filesUnder(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => !entry.isDirectory())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}
