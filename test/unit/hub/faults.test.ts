// Failures the model store must survive or explain: cut connections (resume), corrupt bytes, refused access,
// missing repos, an unreachable hub, cancellation, a full disk.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_MODELS, ensureModel, isModelStoreError, type ModelRequest, type ModelStoreEvent } from '../../../src/sidecar/hub';
import { ensureFreeSpace } from '../../../src/sidecar/hub/disk-space';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, gitBlobId, sha256Of } from '../../support/hub-server';
import { tinyClipRepo, tinySdRepo } from '../../support/model-repos';

// The repos the extension downloads by default, served by the fake hub.
const { stableDiffusion: SD_REPO, clip: CLIP_REPO } = DEFAULT_MODELS;
const GATED_REPO = 'gated-org/gated-clip';
const UNET = 'unet/diffusion_pytorch_model.safetensors';
const SD_FOLDER = 'models--stable-diffusion-v1-5--stable-diffusion-v1-5';

describe('model store failure handling', () => {
  let hub: FakeHub;
  let sdFiles: Map<string, Buffer>;
  let clipFiles: Map<string, Buffer>;
  let sdCommit: string;
  let cacheDir: string;
  let restoreEnv: () => void;
  const tempFolders: string[] = [];

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    sdFiles = await tinySdRepo();
    clipFiles = await tinyClipRepo();
    sdCommit = hub.addRepo(SD_REPO, sdFiles).commit;
    hub.addRepo(CLIP_REPO, clipFiles);
    hub.addRepo(GATED_REPO, clipFiles, { gatedToken: 'hf_granted' });
  });
  after(async () => {
    await hub.stop();
    for (const folder of tempFolders) await rm(folder, { recursive: true, force: true });
    restoreEnv();
  });
  beforeEach(async () => {
    hub.faults = {};
    hub.resetLog();
    cacheDir = await mkdtemp(path.join(tmpdir(), 'hf-cache-'));
    tempFolders.push(cacheDir);
  });

  const ensure = (extra: Partial<ModelRequest> = {}) =>
    ensureModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: hub.url, cacheDir, progressIntervalMs: 0, ...extra });
  const unetBlob = () => path.join(cacheDir, SD_FOLDER, 'blobs', sha256Of(sdFiles.get(UNET)!));
  const unetRequests = () => hub.fileRequests().filter((entry) => entry.path.startsWith('/cdn/') && entry.path.includes(sha256Of(sdFiles.get(UNET)!)));

  it('resumes within the same call after the connection is cut mid-file', async () => {
    hub.faults = { cut: { file: UNET, afterBytes: 1_000_000, times: 1 } };
    const model = await ensure();
    const unet = model.files.find((file) => file.path === UNET)!;
    assert.equal(unet.sha256, sha256Of(sdFiles.get(UNET)!));
    const requests = unetRequests();
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.range, undefined);
    const resumeAt = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1]);
    assert.ok(resumeAt > 0 && resumeAt <= 1_000_000, `resumed at ${resumeAt}`);
    // Only what the client had not stored was sent again.
    assert.equal(hub.bytesServed(SD_REPO, UNET), sdFiles.get(UNET)!.length + (1_000_000 - resumeAt));
    assert.equal(existsSync(`${unetBlob()}.incomplete`), false);
    // Bytes received count once each: the resumed request continued exactly where the stored bytes ended.
    assert.equal(model.downloadedBytes, model.files.reduce((sum, file) => sum + file.size, 0));
  });

  it('keeps the partial file when retries run out and resumes from it on the next call', async () => {
    hub.faults = { cut: { file: UNET, afterBytes: 1_000_000, times: 1 } };
    await assert.rejects(ensure({ retries: 0 }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'NETWORK'));
      assert.match(error.message, /connection broke while downloading unet\/diffusion_pytorch_model\.safetensors/);
      assert.match(error.message, /partial file is kept: downloading again resumes/);
      return true;
    });
    const partialBytes = (await stat(`${unetBlob()}.incomplete`)).size;
    assert.ok(partialBytes > 0 && partialBytes <= 1_000_000);
    assert.equal(existsSync(unetBlob()), false);

    hub.resetLog();
    const events: ModelStoreEvent[] = [];
    const model = await ensure({ onEvent: (event) => events.push(event) });
    assert.deepEqual(unetRequests().map((entry) => entry.range), [`bytes=${partialBytes}-`]);
    assert.equal(hub.bytesServed(SD_REPO, UNET), sdFiles.get(UNET)!.length - partialBytes);
    const start = events.find((event) => event.type === 'file-start' && event.file === UNET);
    assert.deepEqual(start, { type: 'file-start', phase: 'download', file: UNET, size: sdFiles.get(UNET)!.length, resumeFrom: partialBytes });
    assert.equal(model.files.find((file) => file.path === UNET)!.sha256, sha256Of(sdFiles.get(UNET)!));
  });

  it('rejects a corrupted byte with the expected and actual sha256 and leaves no blob behind', async () => {
    hub.faults = { corrupt: { file: UNET, offset: 123_456 } };
    const expected = sha256Of(sdFiles.get(UNET)!);
    await assert.rejects(ensure(), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'CORRUPT'));
      assert.match(error.message, new RegExp(`^Corrupt download of ${UNET}: expected sha256 ${expected}, got [0-9a-f]{64}\\.`));
      return true;
    });
    assert.equal(existsSync(unetBlob()), false);
    assert.equal(existsSync(`${unetBlob()}.incomplete`), false);
    assert.equal(existsSync(path.join(cacheDir, SD_FOLDER, 'snapshots', sdCommit, ...UNET.split('/'))), false);

    hub.faults = {};
    const model = await ensure();
    assert.equal(model.files.find((file) => file.path === UNET)!.sha256, expected);
  });

  it('checks small (non-LFS) files against their git blob id', async () => {
    hub.faults = { corrupt: { file: 'unet/config.json', offset: 5 } };
    await assert.rejects(ensure(), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'CORRUPT'));
      assert.match(error.message, new RegExp(`Corrupt download of unet/config.json: expected git blob id ${gitBlobId(sdFiles.get('unet/config.json')!)}`));
      return true;
    });
  });

  it('explains a gated repo: no token (401), a token without access (403), and works with access', async () => {
    const gated = (token?: string) => ensure({ source: GATED_REPO, kind: 'clip', token });
    await assert.rejects(gated(), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'UNAUTHORIZED'));
      assert.match(error.message, /HTTP 401 GatedRepo/);
      assert.match(error.message, new RegExp(`accept its license on ${hub.url}/${GATED_REPO}`));
      assert.match(error.message, /No token was sent: set HF_TOKEN/);
      return true;
    });
    await assert.rejects(gated('hf_not_this_one'), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'UNAUTHORIZED'));
      assert.match(error.message, /HTTP 403 GatedRepo/);
      assert.match(error.message, /A token was sent \(from the request\)/);
      return true;
    });
    hub.resetLog();
    process.env.HF_TOKEN = 'hf_granted';
    try {
      const model = await gated();
      assert.equal(model.files.length, 2);
    } finally {
      delete process.env.HF_TOKEN;
    }
    assert.ok(hub.requests.filter((entry) => entry.path.includes('/resolve/')).every((entry) => entry.authorization === 'Bearer hf_granted'));
  });

  it('explains a missing repo, revision and file', async () => {
    await assert.rejects(ensure({ source: 'nobody/no-such-model', kind: 'clip' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'NOT_FOUND'));
      assert.match(error.message, new RegExp(`Repository nobody/no-such-model was not found on ${hub.url}`));
      assert.match(error.message, /private or gated.*HF_TOKEN/);
      return true;
    });
    await assert.rejects(ensure({ source: `${CLIP_REPO}@no-such-branch`, kind: 'clip' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'NOT_FOUND'));
      assert.match(error.message, /Revision "no-such-branch" does not exist in openai\/clip-vit-base-patch16/);
      return true;
    });
    hub.faults = { error: { status: 404, errorCode: 'EntryNotFound', message: 'Entry not found', pathIncludes: '/resolve/' } };
    await assert.rejects(ensure({ source: CLIP_REPO, kind: 'clip' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'NOT_FOUND'));
      assert.match(error.message, /^config\.json does not exist in openai\/clip-vit-base-patch16@[0-9a-f]{40}/);
      return true;
    });
  });

  it('reports a repo that lacks the weights the model needs, naming the files', async () => {
    const pickleOnly = new Map(clipFiles);
    pickleOnly.delete('model.safetensors');
    pickleOnly.set('pytorch_model.bin', Buffer.alloc(100));
    hub.addRepo('someone/pickle-clip', pickleOnly);
    await assert.rejects(ensure({ source: 'someone/pickle-clip', kind: 'clip' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'MISSING_FILES'));
      assert.match(error.message, /model\.safetensors \(the repo has only pickle weights\)/);
      return true;
    });
    assert.equal(hub.fileRequests().length, 0);
  });

  it('says the hub is unreachable when it is down and nothing is cached', async () => {
    const down = await FakeHub.start();
    const url = down.url;
    await down.stop();
    await assert.rejects(ensure({ endpoint: url }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'OFFLINE'));
      assert.match(error.message, new RegExp(`Cannot reach the model hub at ${url} \\(ECONNREFUSED\\)`));
      assert.match(error.message, /is not in the model cache/);
      return true;
    });
    await assert.rejects(ensure({ offline: true }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'OFFLINE'));
      assert.match(error.message, /^Offline mode is on/);
      return true;
    });
    assert.equal(hub.requests.length, 0, 'offline mode sends nothing');
  });

  it('cancels a download in progress, keeps the partial file, and resumes it later', async () => {
    hub.faults = { slow: { chunkBytes: 32 * 1024, delayMs: 20 } };
    const controller = new AbortController();
    const started = Date.now();
    await assert.rejects(
      ensure({
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === 'progress' && event.file === UNET && event.fileBytes >= 200_000) controller.abort();
        },
      }),
      (error: unknown) => {
        assert.ok(isModelStoreError(error, 'CANCELLED'));
        assert.match(error.message, /Downloading unet\/diffusion_pytorch_model\.safetensors was cancelled; the partial file is kept/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000);
    const partialBytes = (await stat(`${unetBlob()}.incomplete`)).size;
    assert.ok(partialBytes >= 200_000, `kept ${partialBytes} bytes`);

    hub.faults = {};
    hub.resetLog();
    await ensure();
    assert.deepEqual(unetRequests().map((entry) => entry.range), [`bytes=${partialBytes}-`]);

    const early = new AbortController();
    early.abort();
    hub.resetLog();
    await assert.rejects(ensure({ signal: early.signal }), (error: unknown) => isModelStoreError(error, 'CANCELLED'));
    assert.equal(hub.requests.length, 0);
  });

  it('treats a stalled connection as broken', async () => {
    hub.faults = { slow: { chunkBytes: 1024, delayMs: 400 } };
    await assert.rejects(ensure({ source: CLIP_REPO, kind: 'clip', stallTimeoutMs: 100, retries: 0 }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'NETWORK'));
      assert.match(error.message, /no data for 100 ms/);
      return true;
    });
  });

  it('reports a full disk with the folder and the space needed', { skip: !existsSync('/dev/full') && 'needs /dev/full' }, async () => {
    // A partial file that is really /dev/full: every write fails with the kernel's ENOSPC.
    const blob = path.join(cacheDir, 'models--openai--clip-vit-base-patch16', 'blobs', sha256Of(clipFiles.get('model.safetensors')!));
    await mkdir(path.dirname(blob), { recursive: true });
    await symlink('/dev/full', `${blob}.incomplete`);
    await assert.rejects(ensure({ source: CLIP_REPO, kind: 'clip' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'DISK_FULL'));
      assert.match(error.message, new RegExp(`Not enough disk space in ${escape(path.dirname(blob))} for model\\.safetensors: 1\\.7 MiB more is needed`));
      assert.match(error.message, /HF_HUB_CACHE/);
      return true;
    });
    assert.deepEqual((await readdir(path.dirname(blob))).filter((name) => !name.endsWith('.incomplete')).length, 1); // config.json only
  });

  it('refuses to start a download the disk cannot hold', async () => {
    await assert.rejects(ensureFreeSpace(cacheDir, 2 ** 60, 'a huge model'), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'DISK_FULL'));
      assert.match(error.message, /for a huge model: 1048576\.0 TiB more is needed, [\d.]+ \w+ is free/);
      return true;
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
