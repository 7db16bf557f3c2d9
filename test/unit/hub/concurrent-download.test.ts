// Several processes resolving the same model into one empty Hugging Face cache at once (workers of a batch starting
// together on a shared filesystem), against the local fake hub: each file crosses the network once, every process
// reads the same, complete bytes, and no lock, partial or temporary file is left in the cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODELS } from '../../../src/sidecar/hub';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, sha256Of } from '../../support/hub-server';
import { SD_FP32_SELECTION, tinySdRepo } from '../../support/model-repos';

const CHILD = path.resolve(__dirname, '..', '..', 'support', 'download-child.ts');
const REPO_ID = DEFAULT_MODELS.stableDiffusion;

function resolveInChild(endpoint: string, cacheDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, endpoint, cacheDir, REPO_ID], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('concurrent first download into an empty cache', () => {
  let hub: FakeHub;
  let files: Map<string, Buffer>;
  let cacheDir: string;
  let restoreEnv: () => void;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    files = await tinySdRepo({ tokenizer: true });
    hub.addRepo(REPO_ID, files);
    cacheDir = await mkdtemp(path.join(tmpdir(), 'hf-cache-shared-'));
  });
  after(async () => {
    await hub.stop();
    await rm(cacheDir, { recursive: true, force: true });
    restoreEnv();
  });

  it('three processes: each file fetched once, all read identical complete bytes', { timeout: 120_000 }, async () => {
    // Slow bodies keep the first download running while the other processes arrive at the same blob.
    hub.faults = { slow: { chunkBytes: 16 * 1024, delayMs: 3 } };
    const runs = await Promise.all([0, 1, 2].map(() => resolveInChild(hub.url, cacheDir)));
    for (const run of runs) assert.equal(run.code, 0, run.stderr);

    const expected = Object.fromEntries(SD_FP32_SELECTION.map((file) => [file, sha256Of(files.get(file)!)]));
    for (const run of runs) assert.deepEqual(JSON.parse(run.stdout), expected);

    for (const file of SD_FP32_SELECTION) {
      assert.equal(hub.bytesServed(REPO_ID, file), files.get(file)!.length, `${file}: bytes sent over all processes`);
      const downloads = hub.fileRequests().filter((request) => request.path.endsWith(`/resolve/${hubCommitPath(request.path)}${file}`));
      assert.equal(downloads.length, 1, `${file}: ${downloads.length} download requests`);
    }

    const repoFolder = path.join(cacheDir, 'models--stable-diffusion-v1-5--stable-diffusion-v1-5');
    const leftovers = (await readdir(cacheDir, { recursive: true })).map(String).filter((name) => /\.(incomplete|lock|tmp)$/.test(name));
    assert.deepEqual(leftovers, []);
    assert.equal((await readdir(path.join(repoFolder, 'blobs'))).length, SD_FP32_SELECTION.length);
  });
});

/** The `<commit>/` segment of a resolve URL path, so files are matched by their full repo path. */
function hubCommitPath(urlPath: string): string {
  const match = /\/resolve\/([^/]+)\//.exec(urlPath);
  return match ? `${match[1]}/` : '';
}
