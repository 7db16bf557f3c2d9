/**
 * A real single-node Slurm for tests: munged with a fresh key, slurmctld and slurmd on this machine, configured in a
 * temporary folder (Debian's `slurm-wlm` and `munge` packages; scripts/setup-test-env.mjs installs them as root).
 * The configuration avoids what a container without systemd lacks: process tracking by /proc
 * (proctrack/linuxproc), no task binding (task/none), no cgroups, no accounting database. Commands reach it through
 * `SLURM_CONF` (see `env`). `stop()` ends every daemon it started.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SlurmCluster {
  /** Environment for sbatch/squeue/scancel (SLURM_CONF and the munge socket). */
  env: NodeJS.ProcessEnv;
  dir: string;
  stop(): Promise<void>;
}

const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo'];

/** Why a Slurm cannot be started here, or undefined when it can be tried. */
export async function slurmUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `Slurm tests run on Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'starting slurmctld/slurmd needs root (CI runs as root)';
  const missing: string[] = [];
  for (const binary of BINARIES) if (!(await onPath(binary))) missing.push(binary);
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install slurmctld slurmd slurm-client munge; scripts/setup-test-env.mjs does it as root)`;
  return undefined;
}

export async function startSlurm(cpus = 4): Promise<SlurmCluster> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-slurm-'));
  await fs.chmod(dir, 0o755);
  const pids: number[] = [];
  const stop = async () => {
    for (const pidFile of ['slurmd.pid', 'slurmctld.pid', 'munged.pid']) {
      const pid = Number((await fs.readFile(path.join(dir, pidFile), 'utf8').catch(() => '')).trim());
      if (pid > 0) pids.push(pid);
    }
    for (const pid of new Set(pids)) await killAndWait(pid);
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    // munge: a key of our own and a socket in the folder, so a system munged (if any) is not touched.
    const socket = path.join(dir, 'munge.socket');
    for (const sub of ['munge', 'spool', 'state', 'log']) await fs.mkdir(path.join(dir, sub), { mode: 0o700 });
    await fs.writeFile(path.join(dir, 'munge', 'munge.key'), randomBytes(1024), { mode: 0o400 });
    await run('munged', [
      '--force',
      `--socket=${socket}`,
      `--key-file=${path.join(dir, 'munge', 'munge.key')}`,
      `--pid-file=${path.join(dir, 'munged.pid')}`,
      `--log-file=${path.join(dir, 'log', 'munged.log')}`,
      `--seed-file=${path.join(dir, 'munge', 'munge.seed')}`,
    ]);

    const host = os.hostname().split('.')[0]!;
    const [controllerPort, nodePort] = [await freePort(), await freePort()];
    const conf = path.join(dir, 'slurm.conf');
    await fs.writeFile(
      conf,
      [
        'ClusterName=clipdragtest',
        `SlurmctldHost=${host}(127.0.0.1)`,
        `SlurmctldPort=${controllerPort}`,
        `SlurmdPort=${nodePort}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        'AuthType=auth/munge',
        'CredType=cred/munge',
        `AuthInfo=socket=${socket}`,
        `StateSaveLocation=${path.join(dir, 'state')}`,
        `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
        `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
        `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
        `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
        `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
        // What works in a container without systemd or cgroup delegation.
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none',
        'AccountingStorageType=accounting_storage/none',
        'JobCompType=jobcomp/none',
        'MpiDefault=none',
        'SwitchType=switch/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU',
        // The node as configured here, whatever the machine has (tests ask for one CPU per task).
        'SlurmdParameters=config_overrides',
        'ReturnToService=2',
        'SchedulerParameters=sched_interval=1',
        `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=1000 State=UNKNOWN`,
        `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
        '',
      ].join('\n'),
    );
    const env = { ...process.env, SLURM_CONF: conf };
    await run('slurmctld', ['-f', conf], { env });
    await run('slurmd', ['-f', conf], { env });
    await waitForIdleNode(env, dir);
    return { env, dir, stop };
  } catch (error) {
    const logs = await readLogs(dir);
    await stop();
    throw new Error(`Slurm did not start: ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  }
}

async function waitForIdleNode(env: NodeJS.ProcessEnv, dir: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let state = '';
  while (Date.now() < deadline) {
    state = await run('sinfo', ['-h', '-o', '%T'], { env }).then(({ stdout }) => stdout.trim(), (error: Error) => error.message);
    if (/^(idle|mixed)/.test(state)) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error(`the node did not become idle within 30 s (sinfo: ${state})\n${await readLogs(dir)}`);
}

async function readLogs(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ['munged.log', 'slurmctld.log', 'slurmd.log']) {
    const text = await fs.readFile(path.join(dir, 'log', name), 'utf8').catch(() => '');
    if (text) parts.push(`--- ${name} (end)\n${text.split('\n').slice(-15).join('\n')}`);
  }
  return parts.join('\n');
}

async function onPath(binary: string): Promise<boolean> {
  for (const folder of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/sbin', '/sbin'])) {
    try {
      await fs.access(path.join(folder, binary), fs.constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Runs a command to its end without blocking the test (for `sbatch --wait` while the test watches). */
export function spawnWithEnv(command: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
