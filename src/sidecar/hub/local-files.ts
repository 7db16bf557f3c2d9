// Turning files on disk (a model folder or a cache snapshot) into records with sha256, hashing only what has to be.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ProgressReporter, type ModelStoreListener } from './events';
import { hashFile } from './file-hash';
import type { LocalFile } from './cache-layout';
import type { ModelFileRecord } from './types';

// A sidecar hashes the same weights for every edit otherwise; keyed by what changes when the file changes.
const digestMemo = new Map<string, string>();

async function memoKey(file: LocalFile): Promise<string> {
  const info = await stat(file.absolutePath);
  return `${file.absolutePath}\0${info.size}\0${info.mtimeMs}`;
}

export function isSha256(name: string | undefined): name is string {
  return name !== undefined && /^[0-9a-f]{64}$/.test(name);
}

/**
 * Records for `files`: a symlink into `blobs/<sha256>` is named by its hash already (the cache's contract);
 * every other file is hashed (memoised per path, size and mtime). Emits `hash` progress.
 */
export async function recordLocalFiles(
  files: readonly LocalFile[],
  options: { signal?: AbortSignal; onEvent?: ModelStoreListener; progressIntervalMs: number },
): Promise<ModelFileRecord[]> {
  const pending: { file: LocalFile; key: string }[] = [];
  const known = new Map<string, string>();
  for (const file of files) {
    if (isSha256(file.blobName)) {
      known.set(file.path, file.blobName);
      continue;
    }
    const key = await memoKey(file);
    const memo = digestMemo.get(key);
    if (memo) known.set(file.path, memo);
    else pending.push({ file, key });
  }

  const total = pending.reduce((sum, { file }) => sum + file.size, 0);
  const progress = new ProgressReporter(options.onEvent, 'hash', total, options.progressIntervalMs);
  for (const { file, key } of pending) {
    progress.startFile(file.path, file.size, 0);
    let done = 0;
    const digest = await hashFile(file.absolutePath, file.size, {
      signal: options.signal,
      what: `Hashing ${file.path}`,
      onBytes: (bytes) => progress.fileBytes(file.path, (done += bytes), file.size),
    });
    digestMemo.set(key, digest.sha256);
    known.set(file.path, digest.sha256);
    progress.finishFile(file.path, file.size, digest.sha256);
  }
  return files.map((file) => ({ path: file.path, size: file.size, sha256: known.get(file.path)!, localPath: file.absolutePath }));
}

/** Forgets every remembered hash (after a verification found a file changed, or in tests). */
export function forgetDigests(): void {
  digestMemo.clear();
}

/** model_index.json of a diffusers folder, parsed; undefined when absent or unreadable (selection reports it). */
export async function readModelIndex(folder: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path.join(folder, 'model_index.json'), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
