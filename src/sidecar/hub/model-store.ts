// The model store's entry points: make a model available on disk (`ensureModel`) and check it (`verifyModel`).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { withSafetensorsFile } from '../models/checkpoint/safetensors';
import { listLocalFiles, pathExists, repoCache, snapshotFolder } from './cache-layout';
import { cachedCommit, resolveFromCache, type CacheLookup } from './cached-model';
import { ModelStoreError, cancelledError, isModelStoreError } from './errors';
import { selectModelFiles } from './file-selection';
import { listRemoteFiles, resolveCommit, type HubClient, type RemoteFile } from './hub-api';
import { isUnreachable, toModelStoreError } from './hub-errors';
import { createHubFetch } from './hub-http';
import { ensureFromHub } from './hub-model';
import { resolveHubSettings, type HubSettings } from './hub-settings';
import { readModelIndex, recordLocalFiles } from './local-files';
import { formatModelSource, isCommitHash, parseModelSource, type ModelSource } from './model-source';
import { verifyFolder } from './verify-model';
import type { ModelRequest, ResolvedModel, VerifyReport, VerifyRequest } from './types';

const DEFAULTS = { precision: 'fp32', retries: 3, stallTimeoutMs: 60_000, requestTimeoutMs: 30_000, progressIntervalMs: 250 } as const;

/**
 * Makes the model available on disk and describes it: for a hub repo, resolves the revision to a commit and
 * downloads the files the model needs that the cache lacks (none on a second call); offline or when the hub
 * is unreachable, uses the cache; for a folder, checks it has the needed files and hashes them.
 */
export async function ensureModel(request: ModelRequest): Promise<ResolvedModel> {
  const source = parseSource(request);
  if (request.signal?.aborted) throw cancelledError(`Preparing ${formatModelSource(source)}`);
  if (source.type === 'local') return source.file ? resolveLocalFile(request, source.path) : resolveLocalFolder(request, source.path);

  const settings = resolveHubSettings(request);
  const lookup = cacheLookup(request, source, settings);
  if (settings.offline) {
    return resolveFromCache(lookup, 'Offline mode is on (HF_HUB_OFFLINE or the offline setting)');
  }
  // A commit never changes: if its snapshot already holds everything, the hub has nothing to add.
  if (isCommitHash(source.revision) && (await pathExists(snapshotFolder(lookup.cache, source.revision)))) {
    try {
      const cached = await resolveFromCache({ ...lookup, onEvent: undefined }, 'unused');
      if (cached.notes.length === 0) {
        request.onEvent?.({
          type: 'resolved',
          model: formatModelSource(source),
          commit: cached.commit,
          folder: cached.folder,
          fileCount: cached.files.length,
          totalBytes: cached.files.reduce((sum, file) => sum + file.size, 0),
          downloadBytes: 0,
          origin: 'cache',
        });
        return cached;
      }
    } catch (error) {
      if (!isModelStoreError(error, 'OFFLINE')) throw error;
    }
  }
  return ensureFromHub({
    ...lookup,
    settings,
    client: hubClient(request, settings),
    retries: request.retries ?? DEFAULTS.retries,
    stallTimeoutMs: request.stallTimeoutMs ?? DEFAULTS.stallTimeoutMs,
  });
}

/**
 * Re-hashes every file the model uses and compares it with the hub's published hashes (or, offline, the hashes in
 * the cache's blob names). Corrupt cached files are deleted unless `removeCorrupt` is false; call `ensureModel`
 * afterwards to fetch them again. Never downloads.
 */
export async function verifyModel(request: VerifyRequest): Promise<VerifyReport> {
  const source = parseSource(request);
  const common = {
    kind: request.kind,
    precision: request.precision ?? DEFAULTS.precision,
    removeCorrupt: request.removeCorrupt ?? true,
    signal: request.signal,
    onEvent: request.onEvent,
    progressIntervalMs: request.progressIntervalMs ?? DEFAULTS.progressIntervalMs,
  };
  if (source.type === 'local') {
    const folder = source.file ? path.dirname(source.path) : source.path;
    return verifyFolder({ ...common, model: source.path, folder, commit: null, remote: undefined, notes: [], ...(source.file ? { onlyFiles: [path.basename(source.path)] } : {}) });
  }

  const settings = resolveHubSettings(request);
  const cache = repoCache(settings.cacheDir, source.repoId);
  const model = `${source.repoId}@${source.revision}`;
  const notes: string[] = [];
  let commit: string | undefined;
  let remote: Map<string, RemoteFile> | undefined;
  if (!settings.offline) {
    const client = hubClient(request, settings);
    try {
      commit = await resolveCommit(client, source.repoId, source.revision);
      remote = new Map((await listRemoteFiles(client, source.repoId, commit)).map((file) => [file.path, file]));
    } catch (error) {
      if (!isUnreachable(error) || request.signal?.aborted) {
        const context = { endpoint: settings.endpoint, tokenSource: settings.tokenSource, repoId: source.repoId, revision: source.revision };
        throw toModelStoreError(error, { ...context, signal: request.signal });
      }
      commit = undefined;
      notes.push(`The hub at ${settings.endpoint} could not be reached; files were checked against the hashes in the cache's blob names.`);
    }
  }
  const cachedRef = await cachedCommit(cache, source.revision);
  if (commit && cachedRef && cachedRef !== commit && !(await pathExists(snapshotFolder(cache, commit)))) {
    // The revision moved on the hub since the download: check what is on disk rather than refuse.
    notes.push(`${model} is now at ${commit} on the hub, which is not downloaded; checked the cached ${cachedRef} against the hashes in its blob names.`);
    commit = cachedRef;
    remote = undefined;
  }
  commit ??= cachedRef;
  if (!commit) {
    throw new ModelStoreError('MISSING_FILES', `${model} is not in the cache (${settings.cacheDir}): download it before verifying it.`);
  }
  return verifyFolder({ ...common, model, folder: snapshotFolder(cache, commit), commit, remote, notes });
}

async function resolveLocalFolder(request: ModelRequest, folder: string): Promise<ResolvedModel> {
  const local = await listLocalFiles(folder);
  const precision = request.precision ?? DEFAULTS.precision;
  const selection = selectModelFiles(request.kind, local.map((file) => file.path), precision, `the folder ${folder}`, await readModelIndex(folder));
  const byPath = new Map(local.map((file) => [file.path, file]));
  const chosen = selection.files.map((file) => byPath.get(file)!);
  request.onEvent?.({
    type: 'resolved',
    model: folder,
    commit: null,
    folder,
    fileCount: chosen.length,
    totalBytes: chosen.reduce((sum, file) => sum + file.size, 0),
    downloadBytes: 0,
    origin: 'local',
  });
  for (const message of selection.notes) request.onEvent?.({ type: 'note', message });
  const files = await recordLocalFiles(chosen, {
    signal: request.signal,
    onEvent: request.onEvent,
    progressIntervalMs: request.progressIntervalMs ?? DEFAULTS.progressIntervalMs,
  });
  return {
    kind: request.kind,
    source: { type: 'local', path: folder },
    repoId: null,
    revision: null,
    commit: null,
    folder,
    files,
    weightsPrecision: selection.weightsPrecision,
    notes: selection.notes,
    downloadedBytes: 0,
    origin: 'local',
  };
}

/** A single-file Stable Diffusion checkpoint: the one file, hashed for the recipe. */
async function resolveLocalFile(request: ModelRequest, file: string): Promise<ResolvedModel> {
  if (request.kind !== 'stable-diffusion') {
    throw new ModelStoreError('INVALID_SOURCE', `${file}: a single-file checkpoint can only be the Stable Diffusion model; the CLIP model must be a transformers CLIPModel folder or hub repo.`);
  }
  const folder = path.dirname(file);
  const size = (await stat(file)).size;
  request.onEvent?.({ type: 'resolved', model: file, commit: null, folder, fileCount: 1, totalBytes: size, downloadBytes: 0, origin: 'local' });
  const files = await recordLocalFiles([{ path: path.basename(file), absolutePath: file, size, blobName: undefined }], {
    signal: request.signal,
    onEvent: request.onEvent,
    progressIntervalMs: request.progressIntervalMs ?? DEFAULTS.progressIntervalMs,
  });
  return {
    kind: request.kind,
    source: { type: 'local', path: file, file: true },
    repoId: null,
    revision: null,
    commit: null,
    folder,
    singleFile: file,
    files,
    weightsPrecision: await checkpointPrecision(file),
    notes: [],
    downloadedBytes: 0,
    origin: 'local',
  };
}

/** fp32 or fp16 when every floating-point tensor of the checkpoint has that type, else mixed. */
async function checkpointPrecision(file: string): Promise<ResolvedModel['weightsPrecision']> {
  const dtypes = await withSafetensorsFile(file, async (opened) => new Set(opened.tensors().map((t) => t.dtype).filter((d) => d.startsWith('F') || d === 'BF16')));
  if (dtypes.size === 1 && dtypes.has('F32')) return 'fp32';
  if (dtypes.size === 1 && dtypes.has('F16')) return 'fp16';
  return 'mixed';
}

function parseSource(request: ModelRequest): ModelSource {
  return typeof request.source === 'string' ? parseModelSource(request.source, { baseDir: request.baseDir }) : request.source;
}

function cacheLookup(request: ModelRequest, source: Extract<ModelSource, { type: 'hub' }>, settings: HubSettings): CacheLookup {
  return {
    source,
    kind: request.kind,
    precision: request.precision ?? DEFAULTS.precision,
    cache: repoCache(settings.cacheDir, source.repoId),
    cacheDir: settings.cacheDir,
    signal: request.signal,
    onEvent: request.onEvent,
    progressIntervalMs: request.progressIntervalMs ?? DEFAULTS.progressIntervalMs,
  };
}

function hubClient(request: ModelRequest, settings: HubSettings): HubClient {
  return {
    endpoint: settings.endpoint,
    fetch: createHubFetch({
      endpoint: settings.endpoint,
      token: settings.token,
      signal: request.signal,
      baseFetch: request.fetch,
      requestTimeoutMs: request.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    }),
  };
}
