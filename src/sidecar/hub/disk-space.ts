// Checks free space before a download starts, so a 4 GB pipeline does not die at 95% with ENOSPC.
import { mkdir, statfs } from 'node:fs/promises';
import { ModelStoreError, formatBytes } from './errors';

/** Bytes an unprivileged process may still write on the volume that holds `folder`; undefined if unknown. */
export async function freeBytes(folder: string): Promise<number | undefined> {
  try {
    const info = await statfs(folder);
    return Number(info.bavail) * Number(info.bsize);
  } catch {
    return undefined;
  }
}

export function diskFullError(folder: string, neededBytes: number, free: number | undefined, what: string, cause?: unknown): ModelStoreError {
  const freeText = free === undefined ? '' : `, ${formatBytes(free)} is free`;
  return new ModelStoreError(
    'DISK_FULL',
    `Not enough disk space in ${folder} for ${what}: ${formatBytes(neededBytes)} more is needed${freeText}. ` +
      'Free some space, or point the model cache setting (or HF_HUB_CACHE) at a folder on a larger disk.',
    cause === undefined ? undefined : { cause },
  );
}

/** Throws DISK_FULL when the volume of `folder` has less than `neededBytes` free. Creates `folder` if needed. */
export async function ensureFreeSpace(folder: string, neededBytes: number, what: string): Promise<void> {
  if (neededBytes <= 0) return;
  await mkdir(folder, { recursive: true });
  const free = await freeBytes(folder);
  if (free !== undefined && free < neededBytes) throw diskFullError(folder, neededBytes, free, what);
}
