// Installing onnxruntime-node's CUDA provider libraries (Linux x64) so that they survive extension updates:
//   1. download the provider package (see cuda-package.ts) into the extension's global storage, hashing as it arrives;
//   2. accept it only if its SHA-512 is the expected one — the hash pinned in cuda-package.ts, else the one the package
//      source publishes (nuget-hash.ts); both must agree when both are known — then extract the three libraries
//      (temp names, then rename);
//   3. on every activation, link them into onnxruntime-node's binary folder of the running extension, which is
//      where onnxruntime looks for provider libraries (next to libonnxruntime.so.1) — an update brings a fresh folder.
// Plain Node (no `vscode`), so tests can run it against a local HTTP server.
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import yauzl from 'yauzl';
import { CUDA_SYSTEM_LIBRARIES, type CudaPackageManifest } from './cuda-package';
import { PublishedHashError, resolvePublishedHash } from './nuget-hash';

export interface InstallProgress {
  receivedBytes: number;
  /** From Content-Length; undefined when the server does not say. */
  totalBytes: number | undefined;
}

export interface CudaInstallOptions {
  url: string;
  /** NuGet v3 service index to read the published SHA-512 from; absent: only a pinned hash is used. */
  serviceIndexUrl?: string;
  manifest: CudaPackageManifest;
  /** The extension's global storage folder; the libraries go to `<storage>/cuda/<version>/`. */
  storageDir: string;
  onProgress?: (progress: InstallProgress) => void;
  signal?: AbortSignal;
}

/** A complete installation: the marker file is written last, so a folder without it is ignored. */
const MARKER = 'installed.json';
const MAX_REDIRECTS = 5;

export function cudaInstallFolder(storageDir: string, manifest: CudaPackageManifest): string {
  return path.join(storageDir, 'cuda', manifest.version);
}

export function isCudaInstalled(storageDir: string, manifest: CudaPackageManifest): boolean {
  return fs.existsSync(path.join(cudaInstallFolder(storageDir, manifest), MARKER));
}

/** What a download was checked against. */
export interface ExpectedHash {
  sha512: string;
  /** Where it comes from, for messages and the install record. */
  origin: 'pinned' | 'published' | 'pinned and published';
  /** The published hash's catalog entry, when it was read. */
  publishedAt?: string;
  /** Why the published hash could not be read (a pinned hash was used alone). */
  publishedProblem?: string;
}

export interface CudaInstallResult {
  /** The folder holding the libraries. */
  folder: string;
  expected: ExpectedHash;
}

/**
 * The SHA-512 a download must have: the pinned one wins, but must equal the published one when that is known; with
 * nothing pinned, the published one; with neither, nothing can be verified and nothing is installed.
 */
export async function expectedPackageHash(manifest: CudaPackageManifest, serviceIndexUrl: string | undefined, signal?: AbortSignal): Promise<ExpectedHash> {
  const what = `${manifest.package} ${manifest.version}`;
  let published: { sha512: string; source: string } | undefined;
  let problem: string | undefined;
  if (serviceIndexUrl !== undefined) {
    try {
      published = await resolvePublishedHash({ serviceIndexUrl, packageId: manifest.package, version: manifest.version, ...(signal ? { signal } : {}) });
    } catch (error) {
      if (!(error instanceof PublishedHashError)) throw error;
      problem = error.message;
    }
  } else {
    problem = 'no package source was asked for a published hash.';
  }
  if (manifest.sha512 && published) {
    if (published.sha512 !== manifest.sha512) {
      throw new Error(
        `The SHA-512 of ${what} pinned in CLIPDrag (${manifest.sha512}) differs from the one published at ${published.source} (${published.sha512}). Nothing was installed; check the clipdrag.cuda.serviceIndexUrl setting.`,
      );
    }
    return { sha512: manifest.sha512, origin: 'pinned and published', publishedAt: published.source };
  }
  if (manifest.sha512) return { sha512: manifest.sha512, origin: 'pinned', ...(problem ? { publishedProblem: problem } : {}) };
  if (published) return { sha512: published.sha512, origin: 'published', publishedAt: published.source };
  throw new Error(
    `No SHA-512 is known for ${what}: none is pinned in this CLIPDrag build and the published one could not be read (${problem ?? 'unknown reason'}), so a download could not be verified; nothing was installed. Check the clipdrag.cuda.serviceIndexUrl setting and the network, or install the libraries by hand as docs/gpu.md describes.`,
  );
}

/** Downloads, verifies and extracts the provider libraries; resolves to the folder holding them and the hash they matched. */
export async function installCudaProviders(options: CudaInstallOptions): Promise<CudaInstallResult> {
  const { manifest, storageDir } = options;
  const expected = await expectedPackageHash(manifest, options.serviceIndexUrl, options.signal);
  const folder = cudaInstallFolder(storageDir, manifest);
  fs.mkdirSync(folder, { recursive: true });
  const archive = path.join(folder, `.download-${process.pid}-${Date.now()}.zip`);
  try {
    const sha512 = await download(options.url, archive, options.onProgress, options.signal);
    if (sha512 !== expected.sha512) {
      const against = expected.origin === 'published' ? `the SHA-512 published at ${expected.publishedAt ?? 'the package source'}` : 'the SHA-512 pinned in CLIPDrag';
      throw new Error(
        `The file downloaded from ${options.url} is not ${manifest.package} ${manifest.version}: its SHA-512 is ${sha512}, but ${against} is ${expected.sha512}. Nothing was installed; check the clipdrag.cuda.packageUrl setting.`,
      );
    }
    await extract(archive, folder, manifest);
    const record = { package: manifest.package, version: manifest.version, sha512, hashFrom: expected.origin, ...(expected.publishedAt ? { publishedAt: expected.publishedAt } : {}), files: Object.keys(manifest.files) };
    writeAtomically(path.join(folder, MARKER), `${JSON.stringify(record, null, 2)}\n`);
    return { folder, expected };
  } finally {
    fs.rmSync(archive, { force: true });
  }
}

function download(url: string, file: string, onProgress: CudaInstallOptions['onProgress'], signal: AbortSignal | undefined, redirects = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : url.startsWith('http:') ? http : undefined;
    if (!client) return reject(new Error(`clipdrag.cuda.packageUrl must be an http(s) URL (got ${JSON.stringify(url)})`));
    const request = client.get(url, { signal }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects >= MAX_REDIRECTS) return reject(new Error(`Too many redirects fetching ${url}`));
        return resolve(download(new URL(response.headers.location, url).toString(), file, onProgress, signal, redirects + 1));
      }
      if (status !== 200) {
        response.resume();
        return reject(new Error(`Downloading ${url} failed: HTTP ${status}. Check the clipdrag.cuda.packageUrl setting and the network.`));
      }
      const length = Number(response.headers['content-length']);
      const totalBytes = Number.isFinite(length) && length > 0 ? length : undefined;
      const hash = crypto.createHash('sha512');
      const out = fs.createWriteStream(file);
      let receivedBytes = 0;
      response.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        receivedBytes += chunk.length;
        onProgress?.({ receivedBytes, totalBytes });
      });
      response.on('error', reject);
      out.on('error', reject);
      out.on('finish', () => {
        if (totalBytes !== undefined && receivedBytes !== totalBytes) reject(new Error(`Downloading ${url} stopped after ${receivedBytes} of ${totalBytes} bytes.`));
        else resolve(hash.digest('base64'));
      });
      response.pipe(out);
    });
    request.on('error', (error) => reject(signal?.aborted ? new Error('The download was cancelled.') : error));
  });
}

/** Extracts the manifest's files (and only those) from the verified archive into `folder`. */
function extract(archive: string, folder: string, manifest: CudaPackageManifest): Promise<void> {
  const wanted = new Map(Object.entries(manifest.files).map(([name, inside]) => [inside, name]));
  const found = new Set<string>();
  return new Promise((resolve, reject) => {
    yauzl.open(archive, { lazyEntries: true }, (openError, zip) => {
      if (openError) return reject(new Error(`${manifest.package} ${manifest.version} is not a readable zip archive: ${openError.message}`));
      zip.on('error', reject);
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = wanted.get(entry.fileName);
        if (!name) return zip.readEntry();
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const target = path.join(folder, name);
          const temporary = `${target}.tmp`;
          const out = fs.createWriteStream(temporary, { mode: 0o755 });
          out.on('error', reject);
          out.on('finish', () => {
            fs.renameSync(temporary, target);
            found.add(name);
            zip.readEntry();
          });
          stream.on('error', reject);
          stream.pipe(out);
        });
      });
      zip.on('end', () => {
        const missing = [...wanted.values()].filter((name) => !found.has(name));
        if (missing.length > 0) reject(new Error(`${manifest.package} ${manifest.version} lacks ${missing.join(', ')}: not the expected package layout.`));
        else resolve();
      });
      zip.readEntry();
    });
  });
}

function writeAtomically(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Puts installed libraries where onnxruntime-node looks (`binFolder`, next to libonnxruntime.so.1): a hard link
 * (same file, no copy) or, across file systems, a symbolic link. Returns the files it linked; none when nothing is
 * installed or everything is already in place.
 */
export function linkCudaProviders(storageDir: string, manifest: CudaPackageManifest, binFolder: string): string[] {
  if (!isCudaInstalled(storageDir, manifest)) return [];
  const folder = cudaInstallFolder(storageDir, manifest);
  const linked: string[] = [];
  for (const name of Object.keys(manifest.files)) {
    const source = path.join(folder, name);
    const target = path.join(binFolder, name);
    if (sameFile(source, target)) continue;
    fs.rmSync(target, { force: true });
    try {
      fs.linkSync(source, target);
    } catch {
      fs.symlinkSync(source, target);
    }
    linked.push(name);
  }
  return linked;
}

function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [fs.statSync(a), fs.statSync(b)];
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/**
 * The CUDA 12 and cuDNN 9 libraries the dynamic loader cannot find, by what provides them: names missing from the
 * loader cache (`ldconfig -p`) and from the folders on LD_LIBRARY_PATH.
 */
export function missingSystemLibraries(loaderCache: string, libraryPath: string | undefined): Record<string, string[]> {
  const available = new Set<string>();
  for (const line of loaderCache.split('\n')) {
    const name = /^\s*(\S+)\s+\(/.exec(line)?.[1];
    if (name) available.add(name);
  }
  for (const dir of (libraryPath ?? '').split(':').filter(Boolean)) {
    try {
      for (const name of fs.readdirSync(dir)) available.add(name);
    } catch {
      // a folder on the path that does not exist
    }
  }
  const missing: Record<string, string[]> = {};
  for (const [provider, names] of Object.entries(CUDA_SYSTEM_LIBRARIES)) {
    const absent = names.filter((name) => !available.has(name));
    if (absent.length > 0) missing[provider] = absent;
  }
  return missing;
}

/** `ldconfig -p` of this machine ('' when there is no ldconfig). */
export function readLoaderCache(): Promise<string> {
  const candidates = ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig'];
  const attempt = (index: number): Promise<string> =>
    index >= candidates.length
      ? Promise.resolve('')
      : new Promise((resolve) => execFile(candidates[index]!, ['-p'], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => (error ? resolve(attempt(index + 1)) : resolve(stdout))));
  return attempt(0);
}

/** One sentence naming what is still missing, or undefined when the loader finds everything. */
export function describeMissingSystemLibraries(missing: Record<string, string[]>): string | undefined {
  const parts = Object.entries(missing).map(([provider, names]) => `${provider} (${names.join(', ')})`);
  if (parts.length === 0) return undefined;
  return `The dynamic loader cannot find these system libraries the CUDA provider needs: ${parts.join('; ')}. Install NVIDIA's CUDA 12 runtime and cuDNN 9 for your distribution (or point LD_LIBRARY_PATH at their lib folders), then run CLIPDrag: Restart Engine Process.`;
}
