// Resolving a hub model online: revision → commit, tree listing, download of the missing files into the cache,
// falling back to the cache when the hub cannot be reached.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { downloadBlob } from './blob-download';
import { blobPath, linkIntoSnapshot, pathExists, snapshotFile, snapshotFolder, writeRef } from './cache-layout';
import { resolveFromCache, type CacheLookup } from './cached-model';
import { ensureFreeSpace } from './disk-space';
import { ModelStoreError, cancelledError, isModelStoreError } from './errors';
import { acquireLease } from '../io/lease-file';
import { ProgressReporter } from './events';
import { hashFile } from './file-hash';
import { selectModelFiles } from './file-selection';
import { readModelIndex } from './local-files';
import { linkedSha256, listRemoteFiles, resolveCommit, resolveUrl, type HubClient, type RemoteFile } from './hub-api';
import { isUnreachable, toModelStoreError, type HubRequestContext } from './hub-errors';
import { HubHttpError, HubNetworkError } from './hub-http';
import type { HubSettings } from './hub-settings';
import type { ModelFileRecord, ResolvedModel } from './types';

export interface HubLookup extends CacheLookup {
  settings: HubSettings;
  client: HubClient;
  retries: number;
  stallTimeoutMs: number;
}

interface PlannedFile {
  remote: RemoteFile;
  /** Published sha256 (large files); the blob is named after it, else after the git blob id. */
  sha256: string | undefined;
  blob: string;
  pointer: string;
  /** `ready`: in the snapshot already; `link`: blob cached, snapshot entry missing; `download`: fetch it. */
  state: 'ready' | 'link' | 'download';
  partialBytes: number;
}

// Two requests in this process must not append to the same `.incomplete` file at once.
const blobLocks = new Map<string, Promise<unknown>>();
// Nor may two processes (workers sharing a cache on one machine or a shared filesystem): a lease file per blob in
// the cache's `.locks/` folder, where huggingface_hub keeps its own per-blob locks. A holder that died is taken over
// after a minute without a heartbeat; the partial file it left is resumed.
const BLOB_LEASE = { staleAfterMs: 60_000, heartbeatMs: 10_000 };

export async function ensureFromHub(lookup: HubLookup): Promise<ResolvedModel> {
  const { source, settings, client } = lookup;
  const context: HubRequestContext = {
    endpoint: settings.endpoint,
    repoId: source.repoId,
    revision: source.revision,
    tokenSource: settings.tokenSource,
    signal: lookup.signal,
  };

  let commit: string;
  let remoteFiles: RemoteFile[];
  try {
    commit = await resolveCommit(client, source.repoId, source.revision);
    remoteFiles = await listRemoteFiles(client, source.repoId, commit);
  } catch (error) {
    if (!isUnreachable(error) || lookup.signal?.aborted) throw toModelStoreError(error, context);
    return fallBackToCache(lookup, error);
  }

  const remote = new Map(remoteFiles.map((file) => [file.path, file]));
  const fileContext = (file: string): HubRequestContext => ({ ...context, revision: commit, file });
  const plan = async (file: RemoteFile): Promise<PlannedFile> => {
    try {
      return await planFile(lookup, commit, file);
    } catch (error) {
      throw toModelStoreError(error, fileContext(file.path));
    }
  };
  const fetchFile = async (file: PlannedFile, progress: ProgressReporter | undefined): Promise<{ sha256: string; transferredBytes: number }> => {
    try {
      return await materialize(lookup, commit, file, progress);
    } catch (error) {
      throw toModelStoreError(error, fileContext(file.remote.path));
    }
  };

  // A diffusers repo's model_index.json says whether a tokenizer belongs to the pipeline.
  let modelIndex: unknown;
  let downloadedBytes = 0;
  const indexFile = lookup.kind === 'stable-diffusion' ? remote.get('model_index.json') : undefined;
  if (indexFile) {
    const planned = await plan(indexFile);
    downloadedBytes += (await fetchFile(planned, undefined)).transferredBytes;
    modelIndex = await readModelIndex(path.dirname(planned.pointer));
  }

  const where = `${source.repoId}@${source.revision} on ${settings.endpoint}`;
  const selection = selectModelFiles(lookup.kind, remote.keys(), lookup.precision, where, modelIndex);
  const planned: PlannedFile[] = [];
  for (const file of selection.files) planned.push(await plan(remote.get(file)!));

  const toDownload = planned.filter((file) => file.state === 'download');
  const downloadTotal = toDownload.reduce((sum, file) => sum + file.remote.size, 0);
  const stillNeeded = toDownload.reduce((sum, file) => sum + file.remote.size - file.partialBytes, 0);
  await ensureFreeSpace(path.join(lookup.cache.folder, 'blobs'), stillNeeded, `${source.repoId} (${toDownload.length} files)`);

  const folder = snapshotFolder(lookup.cache, commit);
  const model = `${source.repoId}@${source.revision}`;
  const progress = new ProgressReporter(lookup.onEvent, 'download', downloadTotal, lookup.progressIntervalMs);
  progress.emit({
    type: 'resolved',
    model,
    commit,
    folder,
    fileCount: planned.length,
    totalBytes: planned.reduce((sum, file) => sum + file.remote.size, 0),
    downloadBytes: stillNeeded,
    origin: 'hub',
  });
  for (const message of selection.notes) progress.emit({ type: 'note', message });

  const records: ModelFileRecord[] = [];
  for (const file of planned) {
    const outcome = await fetchFile(file, progress);
    downloadedBytes += outcome.transferredBytes;
    records.push({ path: file.remote.path, size: file.remote.size, sha256: outcome.sha256, localPath: file.pointer });
  }
  if (source.revision !== commit) await writeRef(lookup.cache, source.revision, commit);

  return {
    kind: lookup.kind,
    source,
    repoId: source.repoId,
    revision: source.revision,
    commit,
    folder,
    files: records,
    weightsPrecision: selection.weightsPrecision,
    notes: selection.notes,
    downloadedBytes,
    origin: 'hub',
  };
}

async function fallBackToCache(lookup: HubLookup, error: unknown): Promise<ResolvedModel> {
  const reason = error instanceof HubNetworkError ? error.reason : error instanceof HubHttpError ? `HTTP ${error.status}` : String(error);
  const endpoint = lookup.settings.endpoint;
  try {
    const model = await resolveFromCache(lookup, `Cannot reach the model hub at ${endpoint} (${reason}); check the network connection or proxy`);
    const note = `The hub at ${endpoint} could not be reached (${reason}); using the cached snapshot ${model.commit}.`;
    model.notes.unshift(note);
    lookup.onEvent?.({ type: 'note', message: note });
    return model;
  } catch (cacheError) {
    if (isModelStoreError(cacheError, 'OFFLINE')) throw new ModelStoreError('OFFLINE', cacheError.message, { cause: error });
    throw cacheError;
  }
}

async function planFile(lookup: HubLookup, commit: string, remote: RemoteFile): Promise<PlannedFile> {
  let sha256 = remote.lfsSha256;
  if (!sha256 && remote.largeWithoutSha256) sha256 = await linkedSha256(lookup.client, lookup.source.repoId, commit, remote.path);
  const blob = blobPath(lookup.cache, sha256 ?? remote.gitOid);
  const pointer = snapshotFile(lookup.cache, commit, remote.path);
  let state: PlannedFile['state'] = 'download';
  if (await pathExists(pointer)) state = 'ready';
  else if (await pathExists(blob)) state = 'link';
  const partialBytes = state === 'download' ? await sizeOf(`${blob}.incomplete`) : 0;
  return { remote, sha256, blob, pointer, state, partialBytes };
}

/** Puts one file into the snapshot (downloading it if needed); returns its sha256 and the bytes fetched. */
async function materialize(
  lookup: HubLookup,
  commit: string,
  file: PlannedFile,
  progress: ProgressReporter | undefined,
): Promise<{ sha256: string; transferredBytes: number }> {
  const { remote } = file;
  let transferredBytes = 0;
  let sha256 = file.sha256;
  if (file.state === 'download') {
    await withLock(file.blob, async () => {
      if (await pathExists(file.blob)) return; // another request of this process finished it meanwhile
      const lease = await acquireLease(blobLeaseFile(lookup, file.blob), { file: remote.path }, {
        ...BLOB_LEASE,
        ...(lookup.signal ? { signal: lookup.signal } : {}),
        onWait: (holder) =>
          progress?.emit({ type: 'note', message: `Waiting for ${remote.path}: process ${holder.owner?.pid ?? '?'} on ${holder.owner?.host ?? '?'} is downloading it.` }),
      }).catch((error: unknown) => {
        if (lookup.signal?.aborted) throw cancelledError(`Downloading ${remote.path}`);
        throw error;
      });
      try {
        if (await pathExists(file.blob)) return; // another process finished it while we waited
      const result = await downloadBlob({
        url: resolveUrl(lookup.settings.endpoint, lookup.source.repoId, commit, remote.path),
        blob: file.blob,
        file: remote.path,
        size: remote.size,
        sha256: file.sha256,
        gitOid: file.sha256 || remote.largeWithoutSha256 ? undefined : remote.gitOid,
        fetch: lookup.client.fetch,
        signal: lookup.signal,
        retries: lookup.retries,
        stallTimeoutMs: lookup.stallTimeoutMs,
        onStart: (resumeFrom) => progress?.startFile(remote.path, remote.size, resumeFrom),
        onBytes: (bytes) => progress?.fileBytes(remote.path, bytes, remote.size),
      });
        transferredBytes = result.transferredBytes;
        sha256 = result.digest.sha256;
      } finally {
        await lease.release();
      }
    });
  }
  if (file.state !== 'ready') await linkIntoSnapshot(lookup.cache, commit, remote.path, file.blob);
  // Small files are named by their git id, not their sha256; they are a few KB, so hash them here.
  sha256 ??= (await hashFile(file.pointer, remote.size, { signal: lookup.signal })).sha256;
  if (file.state === 'download') progress?.finishFile(remote.path, remote.size, sha256);
  return { sha256, transferredBytes };
}

/** `<cache>/.locks/models--owner--name/<blob>.clipdrag.lock`. */
function blobLeaseFile(lookup: HubLookup, blob: string): string {
  const repoFolder = lookup.cache.folder;
  return path.join(path.dirname(repoFolder), '.locks', path.basename(repoFolder), `${path.basename(blob)}.clipdrag.lock`);
}

async function withLock<T>(key: string, task: () => Promise<T>): Promise<T> {
  const previous = blobLocks.get(key) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(task);
  blobLocks.set(key, current);
  try {
    return await current;
  } finally {
    if (blobLocks.get(key) === current) blobLocks.delete(key);
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

