// Hub metadata, through @huggingface/hub: revision → commit (model info API) and the file tree with hashes.
import { listFiles, modelInfo } from '@huggingface/hub';
import type { HubFetch } from './hub-http';

export interface HubClient {
  endpoint: string;
  fetch: HubFetch;
}

/** One file of a repo at a commit, as the tree API describes it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** Git blob id (sha1). For LFS files it is the id of the pointer file. */
  gitOid: string;
  /** sha256 of the content for LFS (and Xet) files; the hub publishes it and the cache names the blob after it. */
  lfsSha256: string | undefined;
  /** The tree listed it as a large file but without its sha256 (a Xet-only entry); ask the resolve endpoint. */
  largeWithoutSha256: boolean;
}

/** Branch, tag or commit → the commit sha it points to now (`GET /api/models/{repo}/revision/{rev}`). */
export async function resolveCommit(client: HubClient, repoId: string, revision: string): Promise<string> {
  const info = await modelInfo({ name: repoId, revision, hubUrl: client.endpoint, fetch: client.fetch, additionalFields: ['sha'] });
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new Error(`the hub's model info for ${repoId}@${revision} has no commit sha`);
  }
  return sha;
}

/** Every file of the repo at `commit` (`GET /api/models/{repo}/tree/{commit}?recursive=true`, paginated). */
export async function listRemoteFiles(client: HubClient, repoId: string, commit: string): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  for await (const entry of listFiles({ repo: repoId, revision: commit, recursive: true, hubUrl: client.endpoint, fetch: client.fetch })) {
    if (entry.type !== 'file') continue;
    files.push({
      path: entry.path,
      size: entry.size,
      gitOid: entry.oid ?? '',
      lfsSha256: entry.lfs?.oid,
      largeWithoutSha256: !entry.lfs && Boolean(entry.xetHash),
    });
  }
  return files;
}

export function resolveUrl(endpoint: string, repoId: string, commit: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * sha256 of a large file from the `X-Linked-Etag` header of a HEAD on its resolve URL (the redirect
 * response itself carries it, so redirects are not followed).
 */
export async function linkedSha256(client: HubClient, repoId: string, commit: string, file: string): Promise<string | undefined> {
  const response = await client.fetch(resolveUrl(client.endpoint, repoId, commit, file), {
    method: 'HEAD',
    redirect: 'manual',
    headers: { 'accept-encoding': 'identity' },
  });
  const etag = response.headers.get('x-linked-etag')?.replace(/^W\//, '').replace(/"/g, '');
  return etag && /^[0-9a-f]{64}$/.test(etag) ? etag : undefined;
}
