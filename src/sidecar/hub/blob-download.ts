// Downloads one file into `blobs/<etag>`: resumable (HTTP Range onto `<etag>.incomplete`, the file name
// huggingface_hub also resumes from), hashed while it streams, checked against the hub's published hash before it
// becomes a blob, with progress, stall detection, retries and cancellation. @huggingface/hub's
// downloadFileToCacheDir does none of these (and logs to stdout, which is our RPC channel), hence this module.
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ModelStoreError, cancelledError, formatBytes, systemErrorCode } from './errors';
import { diskFullError, freeBytes } from './disk-space';
import { ContentHasher, hashFileRange, type FileDigest } from './file-hash';
import { HubHttpError, HubNetworkError, type HubFetch } from './hub-http';
import { wait } from '../../shared/wait';

export interface BlobDownloadRequest {
  url: string;
  /** Final blob path; the partial file is `<blob>.incomplete`. */
  blob: string;
  /** Repo-relative name, for messages. */
  file: string;
  size: number;
  /** Expected sha256 (large files). */
  sha256: string | undefined;
  /** Expected git blob id, checked when there is no sha256 (small files). */
  gitOid: string | undefined;
  fetch: HubFetch;
  signal: AbortSignal | undefined;
  /** Further attempts after a broken or stalled connection, each resuming where the last stopped. */
  retries: number;
  /** A connection that delivers no byte for this long counts as broken. */
  stallTimeoutMs: number;
  /** Called once with the bytes already on disk from an earlier attempt. */
  onStart?: (resumeFrom: number) => void;
  /** Called as bytes arrive with the file's total bytes so far. */
  onBytes?: (fileBytes: number) => void;
}

export interface BlobDownloadResult {
  digest: FileDigest;
  /** Bytes received over the network by this call. */
  transferredBytes: number;
  /** Bytes that were already on disk from an interrupted download. */
  resumedFrom: number;
}

class TransientFailure extends Error {}

export async function downloadBlob(request: BlobDownloadRequest): Promise<BlobDownloadResult> {
  const partial = `${request.blob}.incomplete`;
  await mkdir(path.dirname(request.blob), { recursive: true });
  let hasher: ContentHasher | undefined;
  let transferred = 0;
  let resumedFrom = 0;

  for (let attempt = 0; ; attempt += 1) {
    if (request.signal?.aborted) throw cancelled(request);
    let onDisk = await sizeOf(partial);
    if (onDisk > request.size) {
      await rm(partial, { force: true });
      onDisk = 0;
    }
    // Hash what is already on disk once; later attempts continue the same hasher if the file only grew by us.
    if (!hasher || hasher.bytes !== onDisk) {
      hasher = new ContentHasher(request.size);
      await hashFileRange(partial, hasher, 0, onDisk, { signal: request.signal, what: `Downloading ${request.file}` });
    }
    if (attempt === 0) {
      resumedFrom = onDisk;
      request.onStart?.(onDisk);
    }
    if (onDisk === request.size) break;

    try {
      const state = { hasher, received: 0 };
      try {
        await transfer(request, partial, state);
      } finally {
        hasher = state.hasher;
        transferred += state.received;
      }
      break;
    } catch (error) {
      if (request.signal?.aborted) throw cancelled(request);
      if (systemErrorCode(error) === 'ENOSPC') {
        const folder = path.dirname(request.blob);
        throw diskFullError(folder, request.size - (await sizeOf(partial)), await freeBytes(folder), request.file, error);
      }
      if (error instanceof ModelStoreError || !isTransient(error)) throw error;
      if (attempt >= request.retries) {
        const have = await sizeOf(partial);
        throw new ModelStoreError(
          'NETWORK',
          `The connection broke while downloading ${request.file} (${describe(error)}), after ${formatBytes(have)} of ` +
            `${formatBytes(request.size)}. The partial file is kept: downloading again resumes from there.`,
          { cause: error },
        );
      }
      await wait(Math.min(250 * 2 ** attempt, 5000), request.signal);
    }
  }

  const digest = hasher.digest();
  const expected = request.sha256 ?? request.gitOid;
  const actual = request.sha256 ? digest.sha256 : digest.gitOid;
  if (expected && actual !== expected) {
    await rm(partial, { force: true });
    const kind = request.sha256 ? 'sha256' : 'git blob id';
    throw new ModelStoreError(
      'CORRUPT',
      `Corrupt download of ${request.file}: expected ${kind} ${expected}, got ${actual}. The damaged file was deleted; ` +
        'download again (a proxy or disk that alters data will keep failing this check).',
    );
  }
  await rename(partial, request.blob);
  return { digest, transferredBytes: transferred, resumedFrom };
}

/** One HTTP request, appending to the partial file from where it ends; counts the bytes it receives into `state`. */
async function transfer(request: BlobDownloadRequest, partial: string, state: { hasher: ContentHasher; received: number }): Promise<void> {
  const offset = state.hasher.bytes;
  const stall = new AbortController();
  const stallTimer = setTimeout(() => stall.abort(), request.stallTimeoutMs);
  let file: FileHandle | undefined;
  try {
    let response: Response;
    try {
      response = await request.fetch(request.url, {
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        signal: stall.signal,
      });
    } catch (error) {
      // 416: the server has fewer bytes than our partial file, so that file is not a prefix of this blob.
      if (error instanceof HubHttpError && error.status === 416) {
        await rm(partial, { force: true });
        throw new TransientFailure('the server rejected the resume offset; starting over');
      }
      throw error;
    }
    let append = offset > 0;
    if (append && response.status !== 206) {
      // The server ignored the Range and sends the whole file: start over with it.
      append = false;
      state.hasher = new ContentHasher(request.size);
    } else if (append && contentRangeStart(response) !== offset) {
      await response.body?.cancel();
      await rm(partial, { force: true });
      throw new TransientFailure('the server answered a different byte range; starting over');
    }
    if (!response.body) throw new TransientFailure('empty response body');
    const hasher = state.hasher;

    file = await open(partial, append ? 'a' : 'w');
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      stallTimer.refresh();
      if (hasher.bytes + chunk.byteLength > request.size) {
        await rm(partial, { force: true });
        throw new ModelStoreError(
          'CORRUPT',
          `Corrupt download of ${request.file}: the server sent more than the ${request.size} bytes the hub lists. The partial file was deleted.`,
        );
      }
      await file.write(chunk);
      hasher.update(chunk);
      state.received += chunk.byteLength;
      request.onBytes?.(hasher.bytes);
    }
    if (hasher.bytes < request.size) throw new TransientFailure(`the connection closed early`);
  } catch (error) {
    if (stall.signal.aborted && !request.signal?.aborted) {
      throw new TransientFailure(`no data for ${request.stallTimeoutMs >= 1000 ? `${Math.round(request.stallTimeoutMs / 1000)} s` : `${request.stallTimeoutMs} ms`}`);
    }
    throw error;
  } finally {
    clearTimeout(stallTimer);
    await file?.close();
  }
}

function contentRangeStart(response: Response): number | undefined {
  const match = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

function isTransient(error: unknown): boolean {
  if (error instanceof TransientFailure || error instanceof HubNetworkError) return true;
  if (error instanceof HubHttpError) return error.status >= 500 || error.status === 429 || error.status === 408;
  // undici's "terminated" / socket errors while reading the body.
  return error instanceof TypeError || ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET'].includes(systemErrorCode(error) ?? '');
}

function cancelled(request: BlobDownloadRequest): ModelStoreError {
  const error = cancelledError(`Downloading ${request.file}`);
  error.message += '; the partial file is kept and the next download resumes from it';
  return error;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = typeof cause?.code === 'string' ? cause.code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return detail ? `${message}: ${detail}` : message;
}
