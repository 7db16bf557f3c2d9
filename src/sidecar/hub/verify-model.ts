// Re-hashing the files of a model already on disk and comparing them with the hub's hashes (or, offline,
// with the hashes the cache's blob names carry). Corrupt blobs are deleted so the next download replaces them.
import { realpath, rm } from 'node:fs/promises';
import { listLocalFiles, pathExists, type LocalFile } from './cache-layout';
import { ModelStoreError } from './errors';
import { ProgressReporter, type ModelStoreListener } from './events';
import { hashFile, type FileDigest } from './file-hash';
import { selectModelFiles, type ModelKind, type FilePrecision } from './file-selection';
import type { RemoteFile } from './hub-api';
import { forgetDigests, isSha256, readModelIndex } from './local-files';
import type { VerifiedFile, VerifyReport } from './types';

export interface VerifyTarget {
  model: string;
  folder: string;
  commit: string | null;
  kind: ModelKind;
  precision: FilePrecision;
  /** The hub's listing of that commit; undefined offline or for plain folders. */
  remote: ReadonlyMap<string, RemoteFile> | undefined;
  removeCorrupt: boolean;
  signal: AbortSignal | undefined;
  onEvent: ModelStoreListener | undefined;
  progressIntervalMs: number;
  notes: string[];
  /** Check exactly these files of the folder (a single-file checkpoint) instead of the ones the kind needs. */
  onlyFiles?: readonly string[];
}

export async function verifyFolder(target: VerifyTarget): Promise<VerifyReport> {
  if (!(await pathExists(target.folder))) {
    throw new ModelStoreError('MISSING_FILES', `${target.model} is not in the cache (${target.folder}): download it before verifying it.`);
  }
  const local = await listLocalFiles(target.folder);
  const selection = target.onlyFiles ? { files: [...target.onlyFiles], notes: [] as string[] } : selectModelFiles(
    target.kind,
    local.map((file) => file.path),
    target.precision,
    target.commit ? `the cached snapshot of ${target.model} (${target.folder})` : `the folder ${target.folder}`,
    await readModelIndex(target.folder),
  );
  const byPath = new Map(local.map((file) => [file.path, file]));
  const chosen = selection.files.map((file) => byPath.get(file)!);
  const total = chosen.reduce((sum, file) => sum + file.size, 0);
  const progress = new ProgressReporter(target.onEvent, 'verify', total, target.progressIntervalMs);
  progress.emit({
    type: 'resolved',
    model: target.model,
    commit: target.commit,
    folder: target.folder,
    fileCount: chosen.length,
    totalBytes: total,
    downloadBytes: 0,
    origin: target.commit ? (target.remote ? 'hub' : 'cache') : 'local',
  });

  const files: VerifiedFile[] = [];
  for (const file of chosen) {
    progress.startFile(file.path, file.size, 0);
    let done = 0;
    const digest = await hashFile(file.absolutePath, file.size, {
      signal: target.signal,
      what: `Verifying ${file.path}`,
      onBytes: (bytes) => progress.fileBytes(file.path, (done += bytes), file.size),
    });
    const verdict = judge(file, digest, target.remote?.get(file.path));
    const removed = verdict.status === 'corrupt' && target.removeCorrupt ? await removeFile(file, target.commit !== null) : false;
    files.push({ path: file.path, size: file.size, sha256: digest.sha256, ...verdict, removed });
    progress.finishFile(file.path, file.size, digest.sha256);
  }
  // Hashes remembered for plain folders may describe the old bytes of a file that changed.
  forgetDigests();
  const corrupt = files.filter((file) => file.status === 'corrupt');
  const notes = [...target.notes, ...selection.notes];
  if (corrupt.length > 0) {
    notes.push(
      `${corrupt.length} corrupt file(s): ${corrupt.map((file) => file.path).join(', ')}` +
        (target.removeCorrupt && target.commit ? '; they were deleted and the next download fetches them again.' : '.'),
    );
  }
  return {
    model: target.model,
    commit: target.commit,
    folder: target.folder,
    files,
    ok: corrupt.length === 0,
    reference: target.remote ? 'hub' : files.some((file) => file.expected) ? 'cache' : 'none',
    notes,
  };
}

function judge(file: LocalFile, digest: FileDigest, remote: RemoteFile | undefined): Pick<VerifiedFile, 'status' | 'expected'> {
  if (remote) {
    if (remote.lfsSha256) return compare(remote.lfsSha256, digest.sha256);
    if (!remote.largeWithoutSha256) return compare(remote.gitOid, digest.gitOid);
  }
  if (isSha256(file.blobName)) return compare(file.blobName, digest.sha256);
  if (file.blobName && /^[0-9a-f]{40}$/.test(file.blobName)) return compare(file.blobName, digest.gitOid);
  return { status: 'unverified' };
}

function compare(expected: string, actual: string): Pick<VerifiedFile, 'status' | 'expected'> {
  return { expected, status: expected === actual ? 'ok' : 'corrupt' };
}

/** Deletes the blob behind a snapshot entry and the entry itself; files of a plain folder are the user's and stay. */
async function removeFile(file: LocalFile, inCache: boolean): Promise<boolean> {
  if (file.blobName) await rm(await realpath(file.absolutePath), { force: true });
  else if (!inCache) return false;
  await rm(file.absolutePath, { force: true });
  return true;
}
