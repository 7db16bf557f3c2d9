// The Hugging Face cache layout, shared with Python's huggingface_hub:
//   <cache>/models--<owner>--<name>/blobs/<sha256 | git sha1>      file contents, named by hash
//   <cache>/models--<owner>--<name>/snapshots/<commit>/<path>      relative symlinks into blobs/ (copies where
//                                                                  symlinks are not allowed)
//   <cache>/models--<owner>--<name>/refs/<revision>                the commit a branch/tag pointed to
// Partial downloads live next to their blob as `<blob>.incomplete`, which both tools resume.
import { getRepoFolderName } from '@huggingface/hub';
import { randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { systemErrorCode } from './errors';

export interface RepoCache {
  /** `<cache>/models--owner--name`. */
  folder: string;
}

export function repoCache(cacheDir: string, repoId: string): RepoCache {
  return { folder: path.join(cacheDir, getRepoFolderName({ type: 'model', name: repoId })) };
}

export function blobPath(cache: RepoCache, etag: string): string {
  return path.join(cache.folder, 'blobs', etag);
}

export function snapshotFolder(cache: RepoCache, commit: string): string {
  return path.join(cache.folder, 'snapshots', commit);
}

export function snapshotFile(cache: RepoCache, commit: string, file: string): string {
  return path.join(snapshotFolder(cache, commit), ...file.split('/'));
}

/** The commit `refs/<revision>` records, if the cache has one. */
export async function readRef(cache: RepoCache, revision: string): Promise<string | undefined> {
  try {
    const commit = (await readFile(path.join(cache.folder, 'refs', ...revision.split('/')), 'utf8')).trim();
    return /^[0-9a-f]{40}$/.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRef(cache: RepoCache, revision: string, commit: string): Promise<void> {
  const refFile = path.join(cache.folder, 'refs', ...revision.split('/'));
  await mkdir(path.dirname(refFile), { recursive: true });
  if ((await readRef(cache, revision)) === commit) return;
  // Renamed into place: another process reading the ref never sees it empty.
  const temporary = `${refFile}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, commit);
  await rename(temporary, refFile);
}

/** True when the path exists after following symlinks (a snapshot link whose blob was deleted counts as absent). */
export async function pathExists(target: string): Promise<boolean> {
  try {
    await stat(target);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes `snapshots/<commit>/<file>` point at `blob`: a relative symlink, as huggingface_hub makes it, so the
 * cache folder can be moved. Where symlinks are refused (Windows without developer mode) the blob is copied.
 */
export async function linkIntoSnapshot(cache: RepoCache, commit: string, file: string, blob: string): Promise<void> {
  const pointer = snapshotFile(cache, commit, file);
  await mkdir(path.dirname(pointer), { recursive: true });
  // Made under a temporary name and renamed over the entry: processes linking the same file at once do not trip
  // over each other, and a reader finds the old entry, the new one, or none, never a half-copied file.
  const temporary = path.join(path.dirname(pointer), `.${path.basename(pointer)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    await symlink(path.relative(path.dirname(pointer), blob), temporary);
  } catch (error) {
    if (!['EPERM', 'EACCES', 'ENOTSUP', 'EINVAL'].includes(systemErrorCode(error) ?? '')) throw error;
    await copyFile(blob, temporary);
  }
  try {
    await rename(temporary, pointer);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** One file of a snapshot (or of any model folder). */
export interface LocalFile {
  /** Relative path with `/` separators. */
  path: string;
  absolutePath: string;
  size: number;
  /** When the file is a symlink into a `blobs/` folder: the blob's name (its sha256 or git sha1). */
  blobName: string | undefined;
}

/**
 * Every readable file under `folder`, recursively, following symlinks. Dangling links (blob missing) are left out,
 * so a half-deleted snapshot shows up as missing files rather than as an error.
 */
export async function listLocalFiles(folder: string): Promise<LocalFile[]> {
  const found: LocalFile[] = [];
  const walk = async (relative: string): Promise<void> => {
    const absoluteDir = path.join(folder, relative);
    for (const entry of await readdir(absoluteDir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const relativePath = relative ? `${relative}/${entry.name}` : entry.name;
      const absolutePath = path.join(absoluteDir, entry.name);
      let info;
      try {
        info = await stat(absolutePath);
      } catch {
        continue;
      }
      if (info.isDirectory()) {
        await walk(relativePath);
      } else if (info.isFile()) {
        found.push({ path: relativePath, absolutePath, size: info.size, blobName: await blobNameOf(absolutePath) });
      }
    }
  };
  await walk('');
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

async function blobNameOf(file: string): Promise<string | undefined> {
  if (!(await lstat(file)).isSymbolicLink()) return undefined;
  const target = await readlink(file);
  const parts = target.split(/[\\/]/);
  return parts.length >= 2 && parts[parts.length - 2] === 'blobs' ? parts[parts.length - 1] : undefined;
}
