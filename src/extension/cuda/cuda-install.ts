// Installing onnxruntime-node's CUDA provider libraries (Linux x64) so that they survive extension updates:
//   1. download the provider package (see cuda-package.ts) into the extension's global storage, hashing as it arrives;
//   2. accept it only if its SHA-512 is the recorded one, then extract the three libraries (temp names, then rename);
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

export interface InstallProgress {
  receivedBytes: number;
  /** From Content-Length; undefined when the server does not say. */
  totalBytes: number | undefined;
}

export interface CudaInstallOptions {
  url: string;
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

/** Downloads, verifies and extracts the provider libraries; resolves to the folder holding them. */
export async function installCudaProviders(options: CudaInstallOptions): Promise<string> {
  const { manifest, storageDir } = options;
  if (!manifest.sha512) {
    throw new Error(
      `No SHA-512 is recorded for ${manifest.package} ${manifest.version} in this CLIPDrag build, so a download could not be verified; nothing was installed. Install the libraries by hand as docs/gpu.md describes.`,
    );
  }
  const folder = cudaInstallFolder(storageDir, manifest);
  fs.mkdirSync(folder, { recursive: true });
  const archive = path.join(folder, `.download-${process.pid}-${Date.now()}.zip`);
  try {
    const sha512 = await download(options.url, archive, options.onProgress, options.signal);
    if (sha512 !== manifest.sha512) {
      throw new Error(
        `The file downloaded from ${options.url} is not ${manifest.package} ${manifest.version}: its SHA-512 is ${sha512}, expected ${manifest.sha512}. Nothing was installed; check the clipdrag.cuda.packageUrl setting.`,
      );
    }
    await extract(archive, folder, manifest);
    writeAtomically(path.join(folder, MARKER), `${JSON.stringify({ package: manifest.package, version: manifest.version, sha512, files: Object.keys(manifest.files) }, null, 2)}\n`);
    return folder;
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
