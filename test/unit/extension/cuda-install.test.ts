// CLIPDrag: Install CUDA Support's download, verification, installation and linking, against a local HTTP server
// serving a package with the layout of onnxruntime's Microsoft.ML.OnnxRuntime.Gpu.Linux (a generated zip whose
// provider libraries are small stand-in files) and the NuGet v3 documents its published hash is read from (service
// index → registration leaf, gzip-encoded as NuGet's RegistrationsBaseUrl/3.6.0 serves it → catalog entry). The libraries are then linked into a copy of onnxruntime-node's
// linux-x64 binary folder, and real onnxruntime (in a child process) is asked for a CUDA session: it must find the
// installed provider library there and fail to load it, while the loader probe names the CUDA 12 / cuDNN 9
// libraries this GPU-less machine lacks.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import yazl from 'yazl';
import {
  cudaInstallFolder,
  expectedPackageHash,
  describeMissingSystemLibraries,
  installCudaProviders,
  isCudaInstalled,
  linkCudaProviders,
  missingSystemLibraries,
  readLoaderCache,
} from '../../../src/extension/cuda/cuda-install';
import { CUDA_PACKAGE, type CudaPackageManifest } from '../../../src/extension/cuda/cuda-package';

const REPO = path.resolve(__dirname, '..', '..', '..');

/** A zip with the NuGet package's layout: the three libraries under runtimes/linux-x64/native/, and other files. */
function buildPackage(files: Record<string, Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from('<package/>'), 'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec');
  for (const [name, data] of Object.entries(files)) zip.addBuffer(data, name);
  zip.end();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

const libraryBytes = (name: string) => Buffer.from(`stand-in for ${name}\n`.repeat(2000));

describe('CUDA support installation', () => {
  let server: http.Server;
  let base: string;
  let archive: Buffer;
  let incomplete: Buffer;
  let manifest: CudaPackageManifest;
  /** What the unpinned build knows: no hash of its own. */
  const unpinned: CudaPackageManifest = { ...CUDA_PACKAGE, sha512: null };
  const requests: string[] = [];
  /** Per package source (`/<source>/index.json`): the catalog entry it publishes, or undefined for no registration of the version. */
  const catalogEntries: Record<string, Record<string, unknown> | undefined> = {};
  const leafPath = `${CUDA_PACKAGE.package.toLowerCase()}/${CUDA_PACKAGE.version}.json`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-cuda-'));

  before(async () => {
    archive = await buildPackage(Object.fromEntries(Object.entries(CUDA_PACKAGE.files).map(([name, inside]) => [inside, libraryBytes(name)])));
    incomplete = await buildPackage({ [CUDA_PACKAGE.files['libonnxruntime_providers_cuda.so']!]: libraryBytes('cuda') });
    manifest = { ...CUDA_PACKAGE, sha512: crypto.createHash('sha512').update(archive).digest('base64') };
    const details = { '@type': ['PackageDetails', 'catalog:Permalink'], id: CUDA_PACKAGE.package, version: CUDA_PACKAGE.version, packageSize: archive.length };
    catalogEntries.nuget = { ...details, packageHash: manifest.sha512, packageHashAlgorithm: 'SHA512' };
    catalogEntries.other = { ...details, packageHash: crypto.createHash('sha512').update('another file').digest('base64'), packageHashAlgorithm: 'SHA512' };
    catalogEntries.nohash = details;
    catalogEntries.sha256 = { ...details, packageHash: crypto.createHash('sha256').update(archive).digest('base64'), packageHashAlgorithm: 'SHA256' };
    catalogEntries.noversion = undefined;
    server = http.createServer((request, response) => {
      requests.push(request.url ?? '');
      const json = (value: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      const source = /^\/(\w+)\/(.+)$/.exec(request.url ?? '');
      if (source && source[1]! in catalogEntries) {
        const [name, rest] = [source[1]!, source[2]!];
        const entry = catalogEntries[name];
        if (rest === 'index.json') {
          // Older resource types first, as NuGet's index lists them: the 3.6.0 hive must be the one chosen.
          return json({ version: '3.0.0', resources: [
            { '@id': `${base}/${name}/search`, '@type': 'SearchQueryService' },
            { '@id': `${base}/${name}/old-hive/`, '@type': 'RegistrationsBaseUrl' },
            { '@id': `${base}/${name}/registration/`, '@type': 'RegistrationsBaseUrl/3.6.0' },
          ] });
        }
        if (rest === `registration/${leafPath}` && entry) {
          const leaf = { '@id': `${base}${request.url}`, catalogEntry: `${base}/${name}/catalog/entry.json`, packageContent: `${base}/package.nupkg` };
          return response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(zlib.gzipSync(JSON.stringify(leaf)));
        }
        if (rest === 'catalog/entry.json' && entry) return json(entry);
        return response.writeHead(404).end();
      }
      if (request.url === '/package.nupkg') response.writeHead(200, { 'content-length': archive.length }).end(archive);
      else if (request.url === '/moved') response.writeHead(302, { location: '/package.nupkg' }).end();
      else if (request.url === '/incomplete.nupkg') response.writeHead(200, { 'content-length': incomplete.length }).end(incomplete);
      else if (request.url === '/tampered.nupkg') response.writeHead(200).end(Buffer.concat([archive, Buffer.from([0])]));
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => {
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  const storage = (name: string) => fs.mkdtempSync(path.join(work, `${name}-`));

  it('downloads with progress, verifies the SHA-512, extracts the three libraries and marks the install complete', async () => {
    const storageDir = storage('ok');
    const progress: number[] = [];
    const { folder, expected } = await installCudaProviders({ url: `${base}/moved`, manifest, storageDir, onProgress: (p) => progress.push(p.receivedBytes) });
    assert.equal(folder, cudaInstallFolder(storageDir, manifest));
    assert.equal(expected.origin, 'pinned', 'no package source asked: the pinned hash alone');
    assert.deepEqual(fs.readdirSync(folder).sort(), ['installed.json', ...Object.keys(CUDA_PACKAGE.files)].sort(), 'the libraries and the marker, no temporary files');
    for (const name of Object.keys(CUDA_PACKAGE.files)) assert.deepEqual(fs.readFileSync(path.join(folder, name)), libraryBytes(name));
    assert.equal(progress.at(-1), archive.length, 'progress reaches the whole size');
    assert.ok(isCudaInstalled(storageDir, manifest));
  });

  it('with no hash pinned, installs a package whose SHA-512 is the one the NuGet v3 API publishes', async () => {
    const storageDir = storage('published');
    const { folder, expected } = await installCudaProviders({ url: `${base}/package.nupkg`, serviceIndexUrl: `${base}/nuget/index.json`, manifest: unpinned, storageDir });
    assert.deepEqual(expected, { sha512: manifest.sha512, origin: 'published', publishedAt: `${base}/nuget/catalog/entry.json` });
    for (const name of Object.keys(CUDA_PACKAGE.files)) assert.deepEqual(fs.readFileSync(path.join(folder, name)), libraryBytes(name));
    const record = JSON.parse(fs.readFileSync(path.join(folder, 'installed.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(record.hashFrom, 'published');
    assert.ok(requests.includes(`/nuget/registration/${leafPath}`), 'the leaf is read from the 3.6.0 hive');
    assert.ok(!requests.some((r) => r.includes('old-hive')));
    // A pinned hash that equals the published one: both checked.
    assert.equal((await expectedPackageHash(manifest, `${base}/nuget/index.json`)).origin, 'pinned and published');
  });

  it('refuses a file whose hash differs, an incomplete package, a missing file and an unknown or missing hash, installing nothing', async () => {
    const cases: [string, CudaPackageManifest, string | undefined, RegExp][] = [
      ['/tampered.nupkg', manifest, undefined, /its SHA-512 is .+, but the SHA-512 pinned in CLIPDrag is .+ Nothing was installed/],
      ['/tampered.nupkg', unpinned, 'nuget', /is not Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux 1\.30\.0: its SHA-512 is .+, but the SHA-512 published at http:.+\/nuget\/catalog\/entry\.json is .+ Nothing was installed/],
      ['/nothing-here.nupkg', manifest, undefined, /HTTP 404/],
      ['/package.nupkg', unpinned, undefined, /No SHA-512 is known .+ none is pinned .+ nothing was installed/],
      ['/package.nupkg', unpinned, 'nohash', /No SHA-512 is known .+ publishes no packageHash for Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux 1\.30\.0.+nothing was installed/],
      ['/package.nupkg', unpinned, 'sha256', /publishes a "SHA256" hash .+ only SHA512 is accepted/],
      ['/package.nupkg', unpinned, 'noversion', /Could not read the registration leaf of Microsoft\.ML\.OnnxRuntime\.Gpu\.Linux 1\.30\.0 from .+: HTTP 404/],
      ['/package.nupkg', unpinned, 'unreachable', /Could not read the NuGet service index .+: HTTP 404/],
      ['/package.nupkg', manifest, 'other', /pinned in CLIPDrag \(.+\) differs from the one published at .+\/other\/catalog\/entry\.json/],
    ];
    for (const [url, used, source, message] of cases) {
      const storageDir = storage('bad');
      const serviceIndexUrl = source === undefined ? {} : { serviceIndexUrl: `${base}/${source}/index.json` };
      await assert.rejects(installCudaProviders({ url: `${base}${url}`, manifest: used, storageDir, ...serviceIndexUrl }), message);
      assert.equal(isCudaInstalled(storageDir, used), false);
      const folder = cudaInstallFolder(storageDir, used);
      assert.deepEqual(fs.existsSync(folder) ? fs.readdirSync(folder) : [], [], `nothing left behind for ${url} (${source ?? 'no package source'})`);
    }
    // A pinned hash still works when the package source cannot say: it is used alone, and the reason kept.
    const pinnedOnly = await expectedPackageHash(manifest, `${base}/nohash/index.json`);
    assert.equal(pinnedOnly.origin, 'pinned');
    assert.match(pinnedOnly.publishedProblem ?? '', /publishes no packageHash/);
    const storageDir = storage('incomplete');
    const incompleteManifest = { ...manifest, sha512: crypto.createHash('sha512').update(incomplete).digest('base64') };
    await assert.rejects(installCudaProviders({ url: `${base}/incomplete.nupkg`, manifest: incompleteManifest, storageDir }), /lacks libonnxruntime_providers_shared\.so, libonnxruntime_providers_tensorrt\.so/);
    assert.equal(isCudaInstalled(storageDir, incompleteManifest), false);
  });

  it('links the installed libraries into onnxruntime-node, again after an update, where onnxruntime loads them from', async () => {
    const storageDir = storage('link');
    await installCudaProviders({ url: `${base}/package.nupkg`, manifest, storageDir });
    // A copy of onnxruntime-node as an installed extension has it (its own folder, linux-x64 binaries).
    const extension = path.join(work, 'extension-1.0.0');
    const ort = path.join(extension, 'node_modules', 'onnxruntime-node');
    const bin = path.join(ort, 'bin', 'napi-v6', 'linux', 'x64');
    const source = path.join(REPO, 'node_modules', 'onnxruntime-node');
    fs.mkdirSync(bin, { recursive: true });
    fs.cpSync(path.join(source, 'dist'), path.join(ort, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(source, 'package.json'), path.join(ort, 'package.json'));
    for (const name of fs.readdirSync(path.join(source, 'bin', 'napi-v6', 'linux', 'x64'))) fs.copyFileSync(path.join(source, 'bin', 'napi-v6', 'linux', 'x64', name), path.join(bin, name));
    fs.symlinkSync(path.join(REPO, 'node_modules', 'onnxruntime-common'), path.join(extension, 'node_modules', 'onnxruntime-common'));

    assert.deepEqual(linkCudaProviders(storageDir, manifest, bin).sort(), Object.keys(CUDA_PACKAGE.files).sort());
    assert.deepEqual(linkCudaProviders(storageDir, manifest, bin), [], 'already in place: nothing to do');
    for (const name of Object.keys(CUDA_PACKAGE.files)) assert.deepEqual(fs.readFileSync(path.join(bin, name)), libraryBytes(name));
    // An update brings a fresh extension folder: activation links again.
    const updated = path.join(work, 'extension-1.0.1-bin');
    fs.mkdirSync(updated);
    assert.equal(linkCudaProviders(storageDir, manifest, updated).length, 3);

    // Real onnxruntime asked for CUDA finds the installed provider library in its folder and fails to load it.
    const script = `const ort = require(${JSON.stringify(ort)}); ort.InferenceSession.create(new Uint8Array([8, 8]), { executionProviders: ['cuda'] }).then(() => console.log('created'), (e) => console.log(String(e.message)));`;
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    const output = `${result.stdout}${result.stderr}`;
    // Without the link the loader says "cannot open shared object file"; with it, the stand-in is found but is no ELF file.
    const library = path.join(bin, 'libonnxruntime_providers_shared.so');
    assert.ok(output.includes(`Failed to load library ${library} with error: ${library}: `), output);
    assert.doesNotMatch(output, /cannot open shared object file/);
    assert.doesNotMatch(output, /created/);
  });

  it('names the CUDA 12 and cuDNN 9 libraries the dynamic loader cannot find', async () => {
    const cache = ['3 libs found in cache `/etc/ld.so.cache\'', '\tlibcudart.so.12 (libc6,x86-64) => /usr/lib/libcudart.so.12', '\tlibc.so.6 (libc6,x86-64) => /lib/libc.so.6'].join('\n');
    const extra = fs.mkdtempSync(path.join(work, 'ld-'));
    fs.writeFileSync(path.join(extra, 'libcublas.so.12'), '');
    assert.deepEqual(missingSystemLibraries(cache, `${extra}:/no/such/folder`), {
      'CUDA 12': ['libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'],
      'cuDNN 9': ['libcudnn.so.9'],
    });
    assert.equal(describeMissingSystemLibraries({}), undefined);
    // This machine has no NVIDIA stack: the real loader cache says so, and the message names both.
    const real = await readLoaderCache();
    assert.ok(real.includes('libc.so.6'), 'ldconfig -p lists the C library');
    if (!/libcudnn\.so\.9/.test(real) && !process.env.LD_LIBRARY_PATH?.includes('cudnn')) {
      const message = describeMissingSystemLibraries(missingSystemLibraries(real, process.env.LD_LIBRARY_PATH));
      assert.match(message ?? '', /cuDNN 9 \(libcudnn\.so\.9\)/);
    }
  });
});
