// Resolving a hub model from the cache alone: no network, works with caches Python tools filled.
import { ModelStoreError, isModelStoreError } from './errors';
import { listLocalFiles, pathExists, readRef, snapshotFolder, type RepoCache } from './cache-layout';
import { selectModelFiles, type ModelKind, type FilePrecision } from './file-selection';
import { readModelIndex, recordLocalFiles } from './local-files';
import { isCommitHash, type ModelSource } from './model-source';
import type { ModelStoreListener } from './events';
import type { ResolvedModel } from './types';

export interface CacheLookup {
  source: Extract<ModelSource, { type: 'hub' }>;
  kind: ModelKind;
  precision: FilePrecision;
  cache: RepoCache;
  cacheDir: string;
  signal: AbortSignal | undefined;
  onEvent: ModelStoreListener | undefined;
  progressIntervalMs: number;
}

/** The commit the cache knows for the revision: the revision itself if it is a commit, else `refs/<revision>`. */
export async function cachedCommit(cache: RepoCache, revision: string): Promise<string | undefined> {
  return isCommitHash(revision) ? revision : readRef(cache, revision);
}

/**
 * The model from the cache snapshot. Throws OFFLINE when the snapshot is absent or lacks files the model needs;
 * `why` starts that message and says why the hub was not asked.
 */
export async function resolveFromCache(lookup: CacheLookup, why: string): Promise<ResolvedModel> {
  const { source, cache } = lookup;
  const model = `${source.repoId}@${source.revision}`;
  const commit = await cachedCommit(cache, source.revision);
  const folder = commit ? snapshotFolder(cache, commit) : undefined;
  if (!commit || !folder || !(await pathExists(folder))) {
    throw new ModelStoreError(
      'OFFLINE',
      `${why}, and ${model} is not in the model cache (${lookup.cacheDir}). Download it once while online, ` +
        'or use a local model folder instead of a repo id.',
    );
  }
  const local = await listLocalFiles(folder);
  let selection;
  try {
    selection = selectModelFiles(
      lookup.kind,
      local.map((file) => file.path),
      lookup.precision,
      `the cached snapshot of ${source.repoId} at ${commit} (${folder})`,
      await readModelIndex(folder),
    );
  } catch (error) {
    if (!isModelStoreError(error, 'MISSING_FILES')) throw error;
    throw new ModelStoreError('OFFLINE', `${why}, and ${error.message} Download the model again while online.`, { cause: error });
  }
  const byPath = new Map(local.map((file) => [file.path, file]));
  const chosen = selection.files.map((file) => byPath.get(file)!);
  const totalBytes = chosen.reduce((sum, file) => sum + file.size, 0);
  lookup.onEvent?.({ type: 'resolved', model, commit, folder, fileCount: chosen.length, totalBytes, downloadBytes: 0, origin: 'cache' });
  for (const message of selection.notes) lookup.onEvent?.({ type: 'note', message });
  const files = await recordLocalFiles(chosen, lookup);
  return {
    kind: lookup.kind,
    source,
    repoId: source.repoId,
    revision: source.revision,
    commit,
    folder,
    files,
    weightsPrecision: selection.weightsPrecision,
    notes: selection.notes,
    downloadedBytes: 0,
    origin: 'cache',
  };
}
