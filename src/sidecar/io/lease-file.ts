// Exclusive leases on a (possibly shared) filesystem: a small JSON file created with O_EXCL names its owner (host,
// pid, start time); the owner keeps the file's modification time fresh (the heartbeat) while it works and deletes it
// when done. A lease whose heartbeat is older than `staleAfterMs` belongs to an owner that died (a killed process, a
// lost node) and may be taken over. Taking over goes through a short-lived `<file>.takeover` lease of its own, so two
// processes that find the same stale lease cannot both win it.
// Needs a filesystem where exclusive create is atomic (local disks, NFSv3+, Lustre, GPFS, BeeGFS) and clocks that
// agree to well within `staleAfterMs` (NTP).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { wait } from '../../shared/wait';

export interface LeaseOwner {
  host: string;
  pid: number;
  /** ISO time the lease was taken. */
  startedAt: string;
  /** Random id of this lease, so an owner can tell its lease from a successor's. */
  token: string;
  /** Anything the caller wants others to see (a worker id, a shard). */
  [key: string]: unknown;
}

export interface LeaseTiming {
  /** A lease whose heartbeat is older than this belongs to a dead owner. */
  staleAfterMs: number;
  /** How often the owner refreshes its heartbeat (default a quarter of `staleAfterMs`). */
  heartbeatMs?: number;
}

export interface HeldLease {
  file: string;
  owner: LeaseOwner;
  /** True while the file on disk is still ours (false once a heartbeat found a successor's lease). */
  readonly held: boolean;
  /** Stops the heartbeat and deletes the file if it is still ours. */
  release(): Promise<void>;
}

export interface LeaseHolder {
  owner: LeaseOwner | undefined;
  /** Time of the last heartbeat (the file's mtime). */
  heartbeatAt: Date;
  stale: boolean;
}

export type LeaseAttempt = { acquired: true; lease: HeldLease } | { acquired: false; holder: LeaseHolder };

/** Tries once to take the lease at `file` (taking over a stale one); never waits. */
export async function tryAcquireLease(file: string, details: Record<string, unknown>, timing: LeaseTiming): Promise<LeaseAttempt> {
  await mkdir(path.dirname(file), { recursive: true });
  const owner: LeaseOwner = { ...details, host: os.hostname(), pid: process.pid, startedAt: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  if (await createExclusive(file, owner)) return { acquired: true, lease: startHeartbeat(file, owner, timing) };
  const holder = await readLease(file, timing.staleAfterMs);
  if (!holder) return tryAcquireLease(file, details, timing); // released between our create and our read
  if (!holder.stale) return { acquired: false, holder };

  // Stale: take it over under the takeover lease, checking again that it is the same stale lease.
  const takeover = `${file}.takeover`;
  const guard = await readLease(takeover, timing.staleAfterMs);
  if (guard?.stale) await rm(takeover, { force: true });
  if (!(await createExclusive(takeover, owner))) return { acquired: false, holder };
  try {
    const again = await readLease(file, timing.staleAfterMs);
    if (again && (!again.stale || again.owner?.token !== holder.owner?.token)) return { acquired: false, holder: again };
    await rm(file, { force: true });
    if (!(await createExclusive(file, owner))) return { acquired: false, holder: (await readLease(file, timing.staleAfterMs)) ?? holder };
    return { acquired: true, lease: startHeartbeat(file, owner, timing) };
  } finally {
    await rm(takeover, { force: true });
  }
}

/** Waits (polling) until the lease is ours or `signal` aborts. */
export async function acquireLease(
  file: string,
  details: Record<string, unknown>,
  timing: LeaseTiming & { pollMs?: number; signal?: AbortSignal; onWait?: (holder: LeaseHolder) => void },
): Promise<HeldLease> {
  let told = false;
  for (;;) {
    timing.signal?.throwIfAborted();
    const attempt = await tryAcquireLease(file, details, timing);
    if (attempt.acquired) return attempt.lease;
    if (!told) timing.onWait?.(attempt.holder);
    told = true;
    await wait(timing.pollMs ?? Math.min(1000, Math.max(50, timing.staleAfterMs / 20)), timing.signal);
  }
}

/** The lease at `file` as others see it, or undefined when there is none. */
export async function readLease(file: string, staleAfterMs: number): Promise<LeaseHolder | undefined> {
  let mtime: Date;
  let text: string;
  try {
    mtime = (await stat(file)).mtime;
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let owner: LeaseOwner | undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && typeof (parsed as LeaseOwner).token === 'string') owner = parsed as LeaseOwner;
  } catch {
    // Half-written by an owner that died inside its create: judged by its age like any other.
  }
  return { owner, heartbeatAt: mtime, stale: Date.now() - mtime.getTime() > staleAfterMs };
}

async function createExclusive(file: string, owner: LeaseOwner): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(owner)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

function startHeartbeat(file: string, owner: LeaseOwner, timing: LeaseTiming): HeldLease {
  let held = true;
  let beating: Promise<void> = Promise.resolve();
  const beat = async () => {
    const current = await readLease(file, timing.staleAfterMs).catch(() => undefined);
    if (current?.owner?.token !== owner.token) {
      held = false;
      clearInterval(timer);
      return;
    }
    const now = new Date();
    await utimes(file, now, now).catch(() => undefined);
  };
  const timer = setInterval(() => {
    beating = beating.then(beat);
  }, timing.heartbeatMs ?? Math.max(10, timing.staleAfterMs / 4));
  timer.unref();
  return {
    file,
    owner,
    get held() {
      return held;
    },
    async release() {
      clearInterval(timer);
      await beating;
      if (!held) return;
      held = false;
      const current = await readLease(file, timing.staleAfterMs).catch(() => undefined);
      if (current?.owner?.token === owner.token) await rm(file, { force: true });
    },
  };
}
