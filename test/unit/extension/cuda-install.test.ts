// CLIPDrag: Install CUDA Support's download, verification, installation and linking, against a local HTTP server
// serving a package with the layout of onnxruntime's Microsoft.ML.OnnxRuntime.Gpu.Linux (a generated zip whose
// provider libraries are small stand-in files). The libraries are then linked into a copy of onnxruntime-node's
// linux-x64 binary folder, and real onnxruntime (in a child process) is asked for a CUDA session: it must find the
// installed provider library there and fail to load it, while the loader probe names the CUDA 12 / cuDNN 9
// libraries this GPU-less machine lacks.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import yazl from 'yazl';
import {
  cudaInstallFolder,
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
  const requests: string[] = [];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-cuda-'));

  before(async () => {
    archive = await buildPackage(Object.fromEntries(Object.entries(CUDA_PACKAGE.files).map(([name, inside]) => [inside, libraryBytes(name)])));
    incomplete = await buildPackage({ [CUDA_PACKAGE.files['libonnxruntime_providers_cuda.so']!]: libraryBytes('cuda') });
    manifest = { ...CUDA_PACKAGE, sha512: crypto.createHash('sha512').update(archive).digest('base64') };
    server = http.createServer((request, response) => {
      requests.push(request.url ?? '');
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
    const folder = await installCudaProviders({ url: `${base}/moved`, manifest, storageDir, onProgress: (p) => progress.push(p.receivedBytes) });
    assert.equal(folder, cudaInstallFolder(storageDir, manifest));
    assert.deepEqual(fs.readdirSync(folder).sort(), ['installed.json', ...Object.keys(CUDA_PACKAGE.files)].sort(), 'the libraries and the marker, no temporary files');
    for (const name of Object.keys(CUDA_PACKAGE.files)) assert.deepEqual(fs.readFileSync(path.join(folder, name)), libraryBytes(name));
    assert.equal(progress.at(-1), archive.length, 'progress reaches the whole size');
    assert.ok(isCudaInstalled(storageDir, manifest));
  });

  it('refuses a file whose hash differs, an incomplete package, a missing file and an unrecorded hash, installing nothing', async () => {
    const cases: [string, CudaPackageManifest, RegExp][] = [
      ['/tampered.nupkg', manifest, /its SHA-512 is .+, expected .+ Nothing was installed/],
      ['/nothing-here.nupkg', manifest, /HTTP 404/],
      ['/package.nupkg', { ...manifest, sha512: null }, /No SHA-512 is recorded .+ nothing was installed/],
    ];
    for (const [url, used, message] of cases) {
      const storageDir = storage('bad');
      await assert.rejects(installCudaProviders({ url: `${base}${url}`, manifest: used, storageDir }), message);
      assert.equal(isCudaInstalled(storageDir, used), false);
      const folder = cudaInstallFolder(storageDir, used);
      assert.deepEqual(fs.existsSync(folder) ? fs.readdirSync(folder) : [], [], `nothing left behind for ${url}`);
    }
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
