// The request and result shapes of the model store's public functions.
import type { ModelStoreListener } from './events';
import type { ModelKind, FilePrecision } from './file-selection';
import type { HubSettingsOverrides } from './hub-settings';
import type { ModelSource } from './model-source';

export interface ModelRequest extends HubSettingsOverrides {
  /** `owner/name`, `owner/name@revision`, a folder path, or an already parsed source. */
  source: string | ModelSource;
  kind: ModelKind;
  /** Which weight files to prefer; default fp32. Falls back to the other precision with a note. */
  precision?: FilePrecision;
  /** Folder that relative model paths are resolved against; default the process's cwd. */
  baseDir?: string;
  signal?: AbortSignal;
  onEvent?: ModelStoreListener;
  /** Custom fetch (a proxy, say); default the global fetch. */
  fetch?: typeof fetch;
  /** Further attempts after a broken connection, each resuming; default 3. */
  retries?: number;
  /** No byte for this long counts as a broken connection; default 60 s. */
  stallTimeoutMs?: number;
  /** Hub API requests that get no answer within this time count as unreachable; default 30 s. */
  requestTimeoutMs?: number;
  /** Minimum time between two `progress` events of a file; default 250 ms. */
  progressIntervalMs?: number;
}

export interface ModelFileRecord {
  /** Path inside the model folder, `/`-separated (e.g. `unet/diffusion_pytorch_model.safetensors`). */
  path: string;
  size: number;
  sha256: string;
  /** Where to read it (inside the cache snapshot, or the local folder). */
  localPath: string;
}

export interface ResolvedModel {
  kind: ModelKind;
  source: ModelSource;
  /** `owner/name` for hub models; null for plain folders. */
  repoId: string | null;
  /** The revision asked for (branch, tag or commit); null for plain folders. */
  revision: string | null;
  /** The commit the files come from; null for plain folders. */
  commit: string | null;
  /** The snapshot folder (or the local folder): loaders read `folder/<path>`. */
  folder: string;
  /** A single-file checkpoint (absolute path; its folder is `folder` and its record the one in `files`). */
  singleFile?: string;
  /** The files the model uses, with hashes for the edit recipe. */
  files: ModelFileRecord[];
  weightsPrecision: FilePrecision | 'mixed';
  notes: string[];
  /** Bytes fetched from the hub by this call. */
  downloadedBytes: number;
  /** `hub`: checked with the hub; `cache`: from the cache without the hub; `local`: a plain folder. */
  origin: 'hub' | 'cache' | 'local';
}

export type VerifiedFileStatus = 'ok' | 'corrupt' | 'unverified';

export interface VerifiedFile {
  path: string;
  size: number;
  /** sha256 of the bytes on disk now. */
  sha256: string;
  /** The hash it should have (sha256, or git blob id for small files); absent when nothing says. */
  expected?: string;
  status: VerifiedFileStatus;
  /** The corrupt file was deleted so the next download fetches it again. */
  removed: boolean;
}

export interface VerifyRequest extends ModelRequest {
  /** Delete corrupt blobs so that `ensureModel` downloads them again; default true. */
  removeCorrupt?: boolean;
}

export interface VerifyReport {
  model: string;
  commit: string | null;
  folder: string;
  files: VerifiedFile[];
  /** No file is corrupt (files with nothing to compare against are `unverified`, not failures). */
  ok: boolean;
  /** What the hashes were compared with: the hub's tree listing, the cache's blob names, or nothing (plain folder). */
  reference: 'hub' | 'cache' | 'none';
  notes: string[];
}
