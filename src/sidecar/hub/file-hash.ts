// Content hashes the hub publishes: sha256 for large (LFS) files, the git blob id (sha1 of "blob <size>\0" + bytes)
// for everything else. Both are computed in one read.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { throwIfCancelled } from './errors';

export interface FileDigest {
  sha256: string;
  gitOid: string;
  size: number;
}

/** Incremental sha256 + git blob id of a byte stream whose total size is known up front. */
export class ContentHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly gitSha1: Hash;
  private hashedBytes = 0;

  constructor(readonly expectedSize: number) {
    this.gitSha1 = createHash('sha1').update(`blob ${expectedSize}\0`);
  }

  get bytes(): number {
    return this.hashedBytes;
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1.update(chunk);
    this.hashedBytes += chunk.byteLength;
  }

  digest(): FileDigest {
    return { sha256: this.sha256.digest('hex'), gitOid: this.gitSha1.digest('hex'), size: this.hashedBytes };
  }
}

/** Feeds bytes [start, end) of `file` into `hasher`. */
export async function hashFileRange(
  file: string,
  hasher: ContentHasher,
  start: number,
  end: number,
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void; what?: string } = {},
): Promise<void> {
  if (end <= start) return;
  const stream = createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      throwIfCancelled(options.signal, options.what ?? `Hashing ${file}`);
      hasher.update(chunk);
      options.onBytes?.(chunk.byteLength);
    }
  } finally {
    stream.destroy();
  }
}

export async function hashFile(
  file: string,
  size: number,
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void; what?: string } = {},
): Promise<FileDigest> {
  const hasher = new ContentHasher(size);
  await hashFileRange(file, hasher, 0, size, options);
  return hasher.digest();
}
