// A cache filled by hand in the layout Python's huggingface_hub writes: used with the hub down or offline mode on,
// verified by re-hashing, repaired after corruption.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_MODELS, ensureModel, isModelStoreError, verifyModel, type ModelStoreEvent } from '../../../src/sidecar/hub';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, sha256Of } from '../../support/hub-server';
import { tinyClipRepo, tinySdRepo, writePythonStyleCache } from '../../support/model-repos';

// The repos the extension downloads by default, served by the fake hub.
const { stableDiffusion: SD_REPO, clip: CLIP_REPO } = DEFAULT_MODELS;
const UNET = 'unet/diffusion_pytorch_model.safetensors';

describe('model store with a pre-filled cache', () => {
  let hub: FakeHub;
  let downUrl: string;
  let sdFiles: Map<string, Buffer>;
  let clipFiles: Map<string, Buffer>;
  let sdCommit: string;
  let clipCommit: string;
  let cacheDir: string;
  let restoreEnv: () => void;
  const tempFolders: string[] = [];

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    sdFiles = await tinySdRepo({ decoys: true });
    clipFiles = await tinyClipRepo();
    sdCommit = hub.addRepo(SD_REPO, sdFiles).commit;
    clipCommit = hub.addRepo(CLIP_REPO, clipFiles).commit;
    const down = await FakeHub.start();
    downUrl = down.url;
    await down.stop();
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
    // What `snapshot_download` of the whole repo leaves behind (decoys included).
    await writePythonStyleCache(cacheDir, SD_REPO, sdCommit, sdFiles);
    await writePythonStyleCache(cacheDir, CLIP_REPO, clipCommit, clipFiles);
  });

  it('uses the Python-layout cache with the hub down, and says so', async () => {
    const events: ModelStoreEvent[] = [];
    const model = await ensureModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: downUrl, cacheDir, onEvent: (event) => events.push(event) });
    assert.equal(model.origin, 'cache');
    assert.equal(model.commit, sdCommit);
    assert.equal(model.folder, path.join(cacheDir, 'models--stable-diffusion-v1-5--stable-diffusion-v1-5', 'snapshots', sdCommit));
    assert.deepEqual(
      model.files.map((file) => file.path),
      ['model_index.json', 'scheduler/scheduler_config.json', 'unet/config.json', UNET, 'vae/config.json', 'vae/diffusion_pytorch_model.safetensors', 'text_encoder/config.json', 'text_encoder/model.safetensors'],
    );
    for (const file of model.files) assert.equal(file.sha256, sha256Of(sdFiles.get(file.path)!), file.path);
    assert.match(model.notes[0] ?? '', new RegExp(`could not be reached \\(ECONNREFUSED\\); using the cached snapshot ${sdCommit}`));
    assert.ok(events.some((event) => event.type === 'note' && event.message === model.notes[0]));
  });

  it('uses the cache without any request in offline mode (HF_HUB_OFFLINE)', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    try {
      const model = await ensureModel({ source: `${CLIP_REPO}@main`, kind: 'clip', endpoint: hub.url, cacheDir });
      assert.equal(model.commit, clipCommit);
      assert.deepEqual(model.notes, []);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    assert.equal(hub.requests.length, 0);
  });

  it('reuses Python-downloaded blobs online: metadata requests only, no file download', async () => {
    const model = await ensureModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: hub.url, cacheDir });
    assert.equal(model.origin, 'hub');
    assert.equal(model.downloadedBytes, 0);
    assert.equal(hub.fileRequests().length, 0);
  });

  it('falls back to the cache when the hub answers with a server error', async () => {
    hub.faults = { error: { status: 503, message: 'Service Unavailable' } };
    const model = await ensureModel({ source: CLIP_REPO, kind: 'clip', endpoint: hub.url, cacheDir });
    assert.equal(model.origin, 'cache');
    assert.match(model.notes[0] ?? '', /\(HTTP 503\)/);
  });

  it('does not fall back to the cache when access is refused', async () => {
    hub.faults = { error: { status: 401, errorCode: 'GatedRepo', message: 'Access restricted', pathIncludes: '/api/' } };
    await assert.rejects(ensureModel({ source: CLIP_REPO, kind: 'clip', endpoint: hub.url, cacheDir }), (error: unknown) =>
      isModelStoreError(error, 'UNAUTHORIZED'),
    );
  });

  it('names the missing files of an incomplete cached snapshot when offline', async () => {
    await unlink(path.join(cacheDir, 'models--openai--clip-vit-base-patch16', 'blobs', sha256Of(clipFiles.get('model.safetensors')!)));
    await assert.rejects(ensureModel({ source: CLIP_REPO, kind: 'clip', endpoint: downUrl, cacheDir }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'OFFLINE'));
      assert.match(error.message, /^Cannot reach the model hub at .* \(ECONNREFUSED\).*, and the cached snapshot of openai\/clip-vit-base-patch16 at [0-9a-f]{40} .* is missing files a CLIP model needs: model\.safetensors\./);
      return true;
    });
    // Online, the missing blob is simply downloaded again.
    const model = await ensureModel({ source: CLIP_REPO, kind: 'clip', endpoint: hub.url, cacheDir });
    assert.equal(model.downloadedBytes, clipFiles.get('model.safetensors')!.length);
  });

  it('builds the snapshot of a newer commit from blobs already cached, and verifies the cached one meanwhile', async () => {
    const oldCommit = 'b'.repeat(40);
    const staleCache = await mkdtemp(path.join(tmpdir(), 'hf-cache-'));
    tempFolders.push(staleCache);
    await writePythonStyleCache(staleCache, CLIP_REPO, oldCommit, clipFiles);

    const report = await verifyModel({ source: CLIP_REPO, kind: 'clip', endpoint: hub.url, cacheDir: staleCache });
    assert.equal(report.commit, oldCommit);
    assert.equal(report.reference, 'cache');
    assert.equal(report.ok, true);
    assert.match(report.notes[0] ?? '', new RegExp(`now at ${clipCommit} on the hub, which is not downloaded; checked the cached ${oldCommit}`));

    const model = await ensureModel({ source: CLIP_REPO, kind: 'clip', endpoint: hub.url, cacheDir: staleCache });
    assert.equal(model.commit, clipCommit);
    assert.equal(model.downloadedBytes, 0);
    assert.equal(hub.fileRequests().length, 0);
  });

  it('verifies by re-hashing, deletes a corrupt blob, and the next ensure downloads it again', async () => {
    const blobs = path.join(cacheDir, 'models--stable-diffusion-v1-5--stable-diffusion-v1-5', 'blobs');
    const unetBlob = path.join(blobs, sha256Of(sdFiles.get(UNET)!));
    const damaged = Buffer.from(sdFiles.get(UNET)!);
    damaged[1000] = (damaged[1000] ?? 0) ^ 1;
    await writeFile(unetBlob, damaged);

    // Offline: checked against the sha256 in the blob names.
    const offlineReport = await verifyModel({ source: SD_REPO, kind: 'stable-diffusion', cacheDir, offline: true, removeCorrupt: false });
    assert.equal(offlineReport.reference, 'cache');
    assert.equal(offlineReport.ok, false);
    assert.deepEqual(offlineReport.files.filter((file) => file.status !== 'ok').map((file) => [file.path, file.status]), [[UNET, 'corrupt']]);
    assert.equal(existsSync(unetBlob), true);

    // Online: checked against the hub's listing; the corrupt blob is removed.
    const events: ModelStoreEvent[] = [];
    const report = await verifyModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: hub.url, cacheDir, progressIntervalMs: 0, onEvent: (event) => events.push(event) });
    assert.equal(report.reference, 'hub');
    const unet = report.files.find((file) => file.path === UNET)!;
    assert.deepEqual({ status: unet.status, removed: unet.removed, expected: unet.expected }, { status: 'corrupt', removed: true, expected: sha256Of(sdFiles.get(UNET)!) });
    assert.equal(unet.sha256, sha256Of(damaged));
    assert.ok(report.files.filter((file) => file.path !== UNET).every((file) => file.status === 'ok'));
    assert.match(report.notes.join(' '), /1 corrupt file\(s\): unet\/diffusion_pytorch_model\.safetensors; they were deleted/);
    assert.equal(existsSync(unetBlob), false);
    const verified = events.filter((event) => event.type === 'file-done' && event.phase === 'verify');
    assert.equal(verified.length, report.files.length);
    assert.equal(hub.fileRequests().length, 0, 'verification never downloads');

    const repaired = await ensureModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: hub.url, cacheDir });
    assert.equal(repaired.downloadedBytes, sdFiles.get(UNET)!.length);
    const after = await verifyModel({ source: SD_REPO, kind: 'stable-diffusion', endpoint: hub.url, cacheDir });
    assert.equal(after.ok, true);
  });
});
