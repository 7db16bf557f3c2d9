// Writing files so that readers only ever see nothing or the complete file: the bytes go to a hidden temporary file
// in the same folder, are flushed to disk, and only then get their final name. Publishing a new name is exclusive
// (a hard link fails if the name exists), so two writers never take the same name and nothing is overwritten.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ErrorKind } from '../../shared/error-kind';

/** The part of a file handle the writer uses. */
export interface WritableFileHandle {
  write(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** File-system operations, replaceable so tests can inject failures (a full disk, a file system without links). */
export interface FileOps {
  open(file: string, flags: string, mode?: number): Promise<WritableFileHandle>;
  link(existing: string, newPath: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  exists(file: string): Promise<boolean>;
  /** Flushes a folder's entries (new names) to disk; a no-op where folders cannot be opened (Windows). */
  syncDirectory(dir: string): Promise<void>;
}

export const nodeFileOps: FileOps = {
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  link: (existing, newPath) => fsp.link(existing, newPath),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (file) => fsp.unlink(file),
  async exists(file) {
    try {
      await fsp.lstat(file);
      return true;
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return false;
      throw error;
    }
  },
  async syncDirectory(dir) {
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(dir, 'r');
    } catch {
      return; // Windows cannot open folders; NTFS journals the rename anyway.
    }
    try {
      await handle.sync();
    } catch (error) {
      // Some file systems do not support fsync on folders; the data itself was synced already.
      if (!['EINVAL', 'ENOTSUP', 'EBADF', 'EPERM', 'EISDIR'].includes(errorCode(error))) throw error;
    } finally {
      await handle.close();
    }
  },
};

/** A write that failed; nothing was left behind. The message says what failed and what to do. */
export class FileWriteError extends Error {
  override readonly name = 'FileWriteError';
  readonly kind: ErrorKind = 'write-failed';
  constructor(
    message: string,
    /** The system error code (ENOSPC, EACCES, ...) or `EEXIST` when no free name was found. */
    readonly code: string,
    /** The file that was being written. */
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A sentence for a system error code, with advice. */
export function describeWriteFailure(error: unknown): string {
  const code = errorCode(error);
  switch (code) {
    case 'ENOSPC':
      return 'no space is left on the device (ENOSPC); free some space and try again';
    case 'EDQUOT':
      return 'the disk quota is used up (EDQUOT); free some space and try again';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code}); make the folder writable or choose another one`;
    case 'EROFS':
      return 'the file system is read-only (EROFS); copy the image to a writable folder';
    case 'ENOENT':
      return 'the folder no longer exists (ENOENT)';
    case 'EIO':
      return 'the device reported an input/output error (EIO); check the disk';
    default:
      return `${error instanceof Error ? error.message : String(error)}`;
  }
}

export function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
}

const CHUNK = 1 << 20;

/**
 * Writes `data` to a new hidden temporary file next to where `finalName` will go, flushed to disk. Returns its path.
 * On failure the temporary file is removed and the error rethrown.
 */
export async function writeTempFile(dir: string, finalName: string, data: Uint8Array, ops: FileOps = nodeFileOps): Promise<string> {
  const temp = path.join(dir, `.${finalName}.${randomBytes(6).toString('hex')}.tmp`); // matches TEMPORARY_NAME
  const handle = await ops.open(temp, 'wx', 0o644);
  try {
    let offset = 0;
    while (offset < data.byteLength) {
      const { bytesWritten } = await handle.write(data, offset, Math.min(CHUNK, data.byteLength - offset), null);
      if (bytesWritten <= 0) throw Object.assign(new Error(`write returned ${bytesWritten}`), { code: 'EIO' });
      offset += bytesWritten;
    }
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await removeQuietly(temp, ops);
    throw error;
  }
  try {
    await handle.close();
  } catch (error) {
    await removeQuietly(temp, ops);
    throw error;
  }
  return temp;
}

/** The name writeTempFile gives: `.<final name>.<12 hex digits>.tmp`. */
const TEMPORARY_NAME = /^\..+\.[0-9a-f]{12}\.tmp$/;

/** A temporary file older than this was left by a write that was killed (a live write takes seconds). */
export const STALE_TEMPORARY_AGE_MS = 60 * 60 * 1000;

/**
 * Removes temporary files a killed write left in `dir`: names of our own pattern, plain files, owned by the user
 * running this process, not modified for `olderThanMs`. Returns the names removed. Failures are ignored (a folder
 * that cannot be listed is reported by the write that follows).
 */
export async function removeStaleTemporaries(dir: string, options: { olderThanMs?: number; now?: number } = {}): Promise<string[]> {
  const cutoff = (options.now ?? Date.now()) - (options.olderThanMs ?? STALE_TEMPORARY_AGE_MS);
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names.filter((n) => TEMPORARY_NAME.test(n))) {
    const file = path.join(dir, name);
    try {
      const info = await fsp.lstat(file);
      if (!info.isFile() || info.mtimeMs > cutoff || (uid !== undefined && info.uid !== uid)) continue;
      await fsp.unlink(file);
      removed.push(name);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/** Codes with which `link` says "not on this file system" (FAT, some network shares), not "you may not". */
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EINVAL']);

export type PublishOutcome = 'linked' | 'renamed' | 'taken';

/**
 * Gives the complete temporary file `temp` the name `target`, only if that name is free. With hard links the
 * temporary file stays (remove it afterwards); without them the name is first reserved with an exclusive create
 * and the temporary file renamed over the (empty) reservation, which consumes it. `taken`: the name exists.
 */
export async function publishExclusive(temp: string, target: string, ops: FileOps = nodeFileOps): Promise<PublishOutcome> {
  try {
    await ops.link(temp, target);
    return 'linked';
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') return 'taken';
    if (!LINK_UNSUPPORTED.has(code)) throw error;
  }
  let reservation: WritableFileHandle;
  try {
    reservation = await ops.open(target, 'wx', 0o644);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return 'taken';
    throw error;
  }
  try {
    await reservation.close();
    await ops.rename(temp, target);
  } catch (error) {
    await removeQuietly(target, ops);
    throw error;
  }
  return 'renamed';
}

/** Replaces (or creates) `file` atomically: temporary file, flush, rename, flush the folder. */
export async function writeFileAtomic(file: string, data: Uint8Array | string, ops: FileOps = nodeFileOps): Promise<void> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const dir = path.dirname(file);
  let temp: string | undefined;
  try {
    temp = await writeTempFile(dir, path.basename(file), bytes, ops);
    await ops.rename(temp, file);
    temp = undefined;
  } catch (error) {
    if (temp) await removeQuietly(temp, ops);
    throw new FileWriteError(`Could not save ${file}: ${describeWriteFailure(error)}. The previous version, if any, is unchanged.`, errorCode(error), file, { cause: error });
  }
  try {
    await ops.syncDirectory(dir);
  } catch (error) {
    throw new FileWriteError(`Saved ${file}, but flushing its folder to disk failed: ${describeWriteFailure(error)}.`, errorCode(error), file, { cause: error });
  }
}

/** Deletes a file, ignoring failures (cleanup after another error, which is the one to report). */
export async function removeQuietly(file: string, ops: FileOps = nodeFileOps): Promise<void> {
  try {
    await ops.unlink(file);
  } catch {
    // already gone, or the folder vanished: nothing to clean
  }
}
