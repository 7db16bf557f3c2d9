// A local imitation of the Hugging Face hub, enough for the model store's real download code:
//   GET  /api/models/{owner}/{name}/revision/{rev}            model info with the commit `sha`
//   GET  /api/models/{owner}/{name}/tree/{rev}[/{path}]       file listing (recursive=, paginated with Link)
//   HEAD /{owner}/{name}/resolve/{rev}/{path}                 ETag, X-Repo-Commit, X-Linked-Etag/-Size on LFS
//   GET  /{owner}/{name}/resolve/{rev}/{path}                 small files directly, LFS files → 302 to /cdn/...
//   GET  /cdn/{sha256}?repo=&path=                            LFS content, with Range support
// Error answers carry X-Error-Code / X-Error-Message like the hub's. `faults` switches on failures:
// HTTP errors, a connection cut mid-file, a flipped byte, slow chunks, ignored Range, Xet-style listings.
// Bound to 127.0.0.1 on a free port.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface HubFaults {
  /** Answer requests whose URL path contains `pathIncludes` (every request when absent) with this error. */
  error?: { status: number; errorCode?: string; message?: string; pathIncludes?: string };
  /** Close the connection after `afterBytes` body bytes of `file`, for the next `times` responses of it. */
  cut?: { file: string; afterBytes: number; times: number };
  /** Serve `file` with the byte at `offset` flipped (the published hashes stay those of the true content). */
  corrupt?: { file: string; offset: number };
  /** Send bodies in chunks of `chunkBytes` with `delayMs` between them. */
  slow?: { chunkBytes: number; delayMs: number };
  /** Answer Range requests with 200 and the whole file, like a server without range support. */
  ignoreRange?: boolean;
  /** List large files with a `xetHash` and no `lfs` block, as Xet-backed repos may; HEAD still gives the sha256. */
  xetListing?: boolean;
}

export interface LoggedRequest {
  method: string;
  /** URL path (without query). */
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

export interface RepoOptions {
  /** Branch/tag names besides `main` that point at the commit. */
  refs?: string[];
  /** Gated repo: file downloads need `Authorization: Bearer <token>` (401 without, 403 with another). */
  gatedToken?: string;
}

interface ServedFile {
  path: string;
  content: Buffer;
  /** Git blob id of the file in the repo (of the LFS pointer for LFS files). */
  gitOid: string;
  sha256: string;
  lfs: boolean;
  pointerSize: number;
}

interface ServedRepo {
  id: string;
  commit: string;
  refs: Set<string>;
  files: Map<string, ServedFile>;
  gatedToken: string | undefined;
}

const LFS_EXTENSIONS = /\.(safetensors|bin|ckpt|pt|pth|onnx|msgpack|h5)$/;
const DEFAULT_CHUNK = 64 * 1024;

/** Which files the fake hub stores in LFS: weights by extension, anything else from 10 KiB up. */
export function isLfsFile(file: string, size: number): boolean {
  return LFS_EXTENSIONS.test(file) || size >= 10 * 1024;
}

export function gitBlobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

export function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export class FakeHub {
  faults: HubFaults = {};
  readonly requests: LoggedRequest[] = [];
  private readonly repos = new Map<string, ServedRepo>();
  private readonly bodyBytes = new Map<string, number>();
  private readonly server: http.Server;
  private baseUrl = '';

  private constructor(private readonly treePageSize: number) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
        else res.destroy();
      });
    });
  }

  /** Starts a server on 127.0.0.1 with a free port. `treePageSize` paginates tree listings. */
  static async start(options: { treePageSize?: number } = {}): Promise<FakeHub> {
    const hub = new FakeHub(options.treePageSize ?? 1000);
    await new Promise<void>((resolve) => hub.server.listen(0, '127.0.0.1', resolve));
    hub.baseUrl = `http://127.0.0.1:${(hub.server.address() as AddressInfo).port}`;
    return hub;
  }

  get url(): string {
    return this.baseUrl;
  }

  /** Serves `files` (repo-relative path → content) as `repoId` at one commit, reachable as `main` and `refs`. */
  addRepo(repoId: string, files: ReadonlyMap<string, Buffer>, options: RepoOptions = {}): { commit: string } {
    const served = new Map<string, ServedFile>();
    for (const [file, content] of files) {
      const sha256 = sha256Of(content);
      const lfs = isLfsFile(file, content.length);
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n`);
      served.set(file, { path: file, content, sha256, lfs, gitOid: gitBlobId(lfs ? pointer : content), pointerSize: pointer.length });
    }
    const treeId = createHash('sha1');
    for (const file of [...served.values()].sort((a, b) => a.path.localeCompare(b.path))) treeId.update(`${file.path}\0${file.gitOid}\n`);
    const commit = createHash('sha1').update(`commit of ${repoId}\n`).update(treeId.digest()).digest('hex');
    this.repos.set(repoId, { id: repoId, commit, refs: new Set(['main', ...(options.refs ?? [])]), files: served, gatedToken: options.gatedToken });
    return { commit };
  }

  /** Body bytes sent for `repoId`'s `file` so far (all responses, resolve and CDN). */
  bytesServed(repoId: string, file: string): number {
    return this.bodyBytes.get(`${repoId}:${file}`) ?? 0;
  }

  /** Requests that transfer file content (resolve and CDN GETs). */
  fileRequests(): LoggedRequest[] {
    return this.requests.filter((request) => request.method === 'GET' && (request.path.includes('/resolve/') || request.path.startsWith('/cdn/')));
  }

  resetLog(): void {
    this.requests.length = 0;
    this.bodyBytes.clear();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const entry: LoggedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      range: header(req, 'range'),
      authorization: header(req, 'authorization'),
      status: 0,
    };
    this.requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status ||= res.statusCode));

    const forced = this.faults.error;
    if (forced && (!forced.pathIncludes || url.pathname.includes(forced.pathIncludes))) {
      return sendError(res, forced.status, forced.errorCode, forced.message ?? `Simulated error ${forced.status}`);
    }
    const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (segments[0] === 'api' && segments[1] === 'models') return this.handleApi(req, res, url, segments.slice(2));
    if (segments[0] === 'cdn') return this.handleCdn(req, res, url);
    if (segments[2] === 'resolve') return this.handleResolve(req, res, segments);
    return sendError(res, 404, undefined, 'Not found');
  }

  private handleApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, segments: string[]): void {
    const repo = this.findRepo(req, res, `${segments[0]}/${segments[1]}`);
    if (!repo) return;
    const action = segments[2];
    const rest = segments.slice(3).flatMap((segment) => segment.split('/'));
    if (action === 'revision') {
      if (!this.revisionExists(repo, rest.join('/'))) return revisionNotFound(res, rest.join('/'));
      return sendJson(res, 200, {
        _id: `fake${repo.commit.slice(0, 20)}`,
        id: repo.id,
        sha: repo.commit,
        private: false,
        gated: repo.gatedToken ? 'manual' : false,
        disabled: false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
        tags: [],
        siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (action === 'tree') {
      const split = this.splitRevision(repo, rest);
      if (!split) return revisionNotFound(res, rest[0] ?? '');
      return this.sendTree(res, url, repo, split.rest.join('/'));
    }
    return sendError(res, 404, undefined, `Unknown API ${action}`);
  }

  private sendTree(res: http.ServerResponse, url: URL, repo: ServedRepo, folder: string): void {
    const recursive = url.searchParams.get('recursive') === 'true';
    const prefix = folder ? `${folder}/` : '';
    const entries: Record<string, unknown>[] = [];
    const folders = new Set<string>();
    for (const file of [...repo.files.values()].sort((a, b) => a.path.localeCompare(b.path))) {
      if (!file.path.startsWith(prefix)) continue;
      const relative = file.path.slice(prefix.length).split('/');
      for (let depth = 1; depth < relative.length && (recursive || depth === 1); depth += 1) {
        folders.add(prefix + relative.slice(0, depth).join('/'));
      }
      if (!recursive && relative.length > 1) continue;
      const listed: Record<string, unknown> = { type: 'file', oid: file.gitOid, size: file.content.length, path: file.path };
      if (file.lfs && this.faults.xetListing) listed.xetHash = createHash('sha256').update(`xet:${file.sha256}`).digest('hex');
      else if (file.lfs) listed.lfs = { oid: file.sha256, size: file.content.length, pointerSize: file.pointerSize };
      entries.push(listed);
    }
    const all = [...[...folders].sort().map((dir) => ({ type: 'directory', oid: gitBlobId(Buffer.from(dir)), size: 0, path: dir })), ...entries];
    const cursor = Number(url.searchParams.get('cursor') ?? '0');
    const page = all.slice(cursor, cursor + this.treePageSize);
    if (cursor + this.treePageSize < all.length) {
      const next = new URL(url.href);
      next.searchParams.set('cursor', String(cursor + this.treePageSize));
      res.setHeader('link', `<${next.href}>; rel="next"`);
    }
    sendJson(res, 200, page);
  }

  private handleResolve(req: http.IncomingMessage, res: http.ServerResponse, segments: string[]): void {
    const repo = this.findRepo(req, res, `${segments[0]}/${segments[1]}`);
    if (!repo) return;
    const split = this.splitRevision(repo, segments.slice(3).flatMap((segment) => segment.split('/')));
    if (!split) return revisionNotFound(res, segments[3] ?? '');
    const file = repo.files.get(split.rest.join('/'));
    if (!file) return sendError(res, 404, 'EntryNotFound', `${split.rest.join('/')} does not exist on "${split.revision}"`);
    if (repo.gatedToken) {
      const auth = header(req, 'authorization');
      if (!auth) {
        return sendError(res, 401, 'GatedRepo', `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      }
      if (auth !== `Bearer ${repo.gatedToken}`) {
        return sendError(res, 403, 'GatedRepo', `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit ${this.baseUrl}/${repo.id} to ask for access.`);
      }
    }
    res.setHeader('x-repo-commit', repo.commit);
    res.setHeader('etag', `"${file.gitOid}"`);
    if (file.lfs) {
      res.setHeader('x-linked-etag', `"${file.sha256}"`);
      res.setHeader('x-linked-size', String(file.content.length));
      const query = new URLSearchParams({ repo: repo.id, path: file.path });
      res.writeHead(302, { location: `${this.baseUrl}/cdn/${file.sha256}?${query}` }).end();
      return;
    }
    void this.sendContent(req, res, repo, file);
  }

  private handleCdn(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    const repo = this.repos.get(url.searchParams.get('repo') ?? '');
    const file = repo?.files.get(url.searchParams.get('path') ?? '');
    if (!repo || !file) return sendError(res, 404, undefined, 'No such object');
    res.setHeader('etag', `"${file.sha256}"`);
    void this.sendContent(req, res, repo, file);
  }

  private async sendContent(req: http.IncomingMessage, res: http.ServerResponse, repo: ServedRepo, file: ServedFile): Promise<void> {
    const content = this.servedBytes(file);
    const size = content.length;
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(header(req, 'range') ?? '');
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('content-type', 'application/octet-stream');
    if (range && !this.faults.ignoreRange) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) });
    } else {
      res.writeHead(200, { 'content-length': String(size) });
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    const key = `${repo.id}:${file.path}`;
    const cut = this.faults.cut?.file === file.path && this.faults.cut.times > 0 ? this.faults.cut : undefined;
    if (cut) cut.times -= 1;
    const chunkBytes = this.faults.slow?.chunkBytes ?? DEFAULT_CHUNK;
    let sent = 0;
    for (let offset = start; offset <= end; offset += chunkBytes) {
      if (res.destroyed) return;
      let chunk = content.subarray(offset, Math.min(offset + chunkBytes, end + 1));
      if (cut && sent + chunk.length >= cut.afterBytes) chunk = chunk.subarray(0, cut.afterBytes - sent);
      await new Promise<void>((resolve) => res.write(chunk, () => resolve()));
      sent += chunk.length;
      this.bodyBytes.set(key, (this.bodyBytes.get(key) ?? 0) + chunk.length);
      if (cut && sent >= cut.afterBytes) {
        res.socket?.destroy();
        return;
      }
      if (this.faults.slow) await new Promise((resolve) => setTimeout(resolve, this.faults.slow?.delayMs ?? 0));
    }
    res.end();
  }

  private servedBytes(file: ServedFile): Buffer {
    const corrupt = this.faults.corrupt;
    if (corrupt?.file !== file.path) return file.content;
    const copy = Buffer.from(file.content);
    copy[corrupt.offset] = (copy[corrupt.offset] ?? 0) ^ 0xff;
    return copy;
  }

  /** The repo, or an answer like the hub's for unknown repos (401 to anonymous callers, 404 otherwise). */
  private findRepo(req: http.IncomingMessage, res: http.ServerResponse, repoId: string): ServedRepo | undefined {
    const repo = this.repos.get(repoId);
    if (!repo) {
      const status = header(req, 'authorization') ? 404 : 401;
      sendError(res, status, 'RepoNotFound', 'Repository not found');
    }
    return repo;
  }

  private revisionExists(repo: ServedRepo, revision: string): boolean {
    return revision === repo.commit || repo.refs.has(revision);
  }

  /** Splits `rev/segments.../path` where the revision may itself contain slashes (refs/pr/1). */
  private splitRevision(repo: ServedRepo, parts: string[]): { revision: string; rest: string[] } | undefined {
    for (let length = parts.length; length >= 1; length -= 1) {
      const revision = parts.slice(0, length).join('/');
      if (this.revisionExists(repo, revision)) return { revision, rest: parts.slice(length) };
    }
    return undefined;
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function sendError(res: http.ServerResponse, status: number, errorCode: string | undefined, message: string): void {
  if (errorCode) res.setHeader('x-error-code', errorCode);
  res.setHeader('x-error-message', message);
  sendJson(res, status, { error: message });
}

function revisionNotFound(res: http.ServerResponse, revision: string): void {
  sendError(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
}

/** Every file under `folder` as repo-relative path → content. */
export async function readFolderFiles(folder: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(path.join(folder, relative), { withFileTypes: true })) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) files.set(child, await readFile(path.join(folder, child)));
    }
  };
  await walk('');
  return files;
}
