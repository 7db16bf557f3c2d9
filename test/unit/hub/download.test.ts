// The real download code against the local fake hub: what lands in the cache, in which layout, and what a
// second call costs.
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_MODELS, ensureModel, type ModelStoreEvent, type ResolvedModel } from '../../../src/sidecar/hub';
import { loadClipModel, loadStableDiffusionModel } from '../../../src/sidecar/models/checkpoint/layout';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, gitBlobId, sha256Of } from '../../support/hub-server';
import { SD_FP32_SELECTION, tinyClipRepo, tinySdRepo } from '../../support/model-repos';

// The repos the extension downloads by default, served by the fake hub.
const { stableDiffusion: SD_REPO, clip: CLIP_REPO } = DEFAULT_MODELS;

describe('model store downloads from the hub', () => {
  let hub: FakeHub;
  let sdFiles: Map<string, Buffer>;
  let clipFiles: Map<string, Buffer>;
  let sdCommit: string;
  let clipCommit: string;
  let cacheDir: string;
  const tempFolders: string[] = [];

  let restoreEnv: () => void;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start({ treePageSize: 7 });
    sdFiles = await tinySdRepo({ fp16: true, tokenizer: true, decoys: true });
    clipFiles = await tinyClipRepo({ decoys: true });
    sdCommit = hub.addRepo(SD_REPO, sdFiles, { refs: ['v1.0'] }).commit;
    clipCommit = hub.addRepo(CLIP_REPO, clipFiles).commit;
  });
  after(async () => {
    await hub.stop();
    restoreEnv();
  });
  beforeEach(async () => {
    hub.faults = {};
    hub.resetLog();
    cacheDir = await mkdtemp(path.join(tmpdir(), 'hf-cache-'));
    tempFolders.push(cacheDir);
  });

  const request = (source: string, kind: 'stable-diffusion' | 'clip', extra: Partial<Parameters<typeof ensureModel>[0]> = {}) =>
    ensureModel({ source, kind, endpoint: hub.url, cacheDir, progressIntervalMs: 0, ...extra });

  it('downloads only the SD files a pipeline needs, in the huggingface_hub cache layout', async () => {
    const events: ModelStoreEvent[] = [];
    const model = await request(SD_REPO, 'stable-diffusion', { onEvent: (event) => events.push(event) });

    assert.equal(model.commit, sdCommit);
    assert.equal(model.origin, 'hub');
    assert.deepEqual(model.files.map((file) => file.path).sort(), [...SD_FP32_SELECTION].sort());
    const repoFolder = path.join(cacheDir, 'models--stable-diffusion-v1-5--stable-diffusion-v1-5');
    assert.equal(model.folder, path.join(repoFolder, 'snapshots', sdCommit));
    assert.equal(await readFile(path.join(repoFolder, 'refs', 'main'), 'utf8'), sdCommit);

    // Blobs: LFS files by sha256, small files by git blob id; nothing else (no decoys, no partial files).
    const expectedBlobs = SD_FP32_SELECTION.map((file) => {
      const content = sdFiles.get(file)!;
      return file.endsWith('.safetensors') ? sha256Of(content) : gitBlobId(content);
    }).sort();
    assert.deepEqual((await readdir(path.join(repoFolder, 'blobs'))).sort(), expectedBlobs);

    for (const record of model.files) {
      const content = sdFiles.get(record.path)!;
      assert.equal(record.sha256, sha256Of(content), record.path);
      assert.equal(record.size, content.length);
      assert.equal(record.localPath, path.join(model.folder, ...record.path.split('/')));
      // Relative symlinks into blobs/, like huggingface_hub makes them.
      assert.ok((await lstat(record.localPath)).isSymbolicLink(), `${record.path} is a symlink`);
      const target = await readlink(record.localPath);
      assert.ok(!path.isAbsolute(target) && target.startsWith('../'), target);
      assert.deepEqual(await readFile(record.localPath), content);
    }
    assert.equal(model.downloadedBytes, SD_FP32_SELECTION.reduce((sum, file) => sum + sdFiles.get(file)!.length, 0));

    // No decoy was requested from the server.
    const fetched = hub.fileRequests().map((entry) => entry.path);
    for (const decoy of ['.bin', '.ckpt', '.msgpack', '.onnx', 'safety_checker', 'non_ema', 'fp16']) {
      assert.ok(!fetched.some((entry) => entry.includes(decoy)), `${decoy} was not fetched`);
    }

    // Events: resolved first, progress per file with a growing overall count ending at the total.
    assert.equal(events[0]?.type, 'resolved');
    const progress = events.filter((event) => event.type === 'progress');
    const overall = progress.map((event) => event.overallBytes);
    assert.deepEqual(overall, [...overall].sort((a, b) => a - b));
    const last = progress.at(-1)!;
    assert.equal(last.overallBytes, last.overallTotal);
    assert.equal(events.filter((event) => event.type === 'file-done').length, SD_FP32_SELECTION.length - 1); // model_index.json came first, silently

    // The snapshot is a loadable diffusers folder.
    const loaded = await loadStableDiffusionModel(model.folder, { variant: 'default' });
    assert.equal(loaded.layout.unet.variant, 'default');
    assert.ok(loaded.layout.tokenizer);
  });

  it('downloads the CLIP model (config.json + model.safetensors only)', async () => {
    const model = await request(`${CLIP_REPO}@main`, 'clip');
    assert.equal(model.commit, clipCommit);
    assert.deepEqual(model.files.map((file) => file.path), ['config.json', 'model.safetensors']);
    assert.equal(model.files[1]!.sha256, sha256Of(clipFiles.get('model.safetensors')!));
    assert.equal(hub.fileRequests().filter((entry) => entry.path.includes('/resolve/')).length, 2);
    const loaded = await loadClipModel(model.folder);
    assert.equal(loaded.config.projectionDim, 16);
  });

  it('a second call downloads nothing; a pinned commit in the cache needs no request at all', async () => {
    const first = await request(SD_REPO, 'stable-diffusion');
    hub.resetLog();
    const second = await request(SD_REPO, 'stable-diffusion');
    assert.equal(hub.fileRequests().length, 0, 'no file content requested');
    assert.deepEqual(
      hub.requests.map((entry) => entry.path.split('/').slice(0, 6).join('/')),
      [`/api/models/${SD_REPO}/revision`, ...Array(hub.requests.length - 1).fill(`/api/models/${SD_REPO}/tree`)],
    );
    assert.equal(second.downloadedBytes, 0);
    assert.deepEqual(strip(second), strip(first));

    hub.resetLog();
    const pinned = await request(`${SD_REPO}@${sdCommit}`, 'stable-diffusion');
    assert.equal(hub.requests.length, 0);
    assert.equal(pinned.origin, 'cache');
    assert.deepEqual(pinned.files, first.files);
  });

  it('selects fp16 variants when asked, and falls back to fp32 with a note when a repo has none', async () => {
    const model = await request(SD_REPO, 'stable-diffusion', { precision: 'fp16' });
    assert.equal(model.weightsPrecision, 'fp16');
    const weights = model.files.filter((file) => file.path.endsWith('.safetensors')).map((file) => file.path).sort();
    assert.deepEqual(weights, ['text_encoder/model.fp16.safetensors', 'unet/diffusion_pytorch_model.fp16.safetensors', 'vae/diffusion_pytorch_model.fp16.safetensors']);
    assert.deepEqual(model.notes, []);
    const loaded = await loadStableDiffusionModel(model.folder, { variant: 'fp16' });
    assert.equal(loaded.layout.unet.variant, 'fp16');

    const clip = await request(CLIP_REPO, 'clip', { precision: 'fp16' });
    assert.equal(clip.weightsPrecision, 'fp32');
    assert.deepEqual(clip.files.map((file) => file.path), ['config.json', 'model.safetensors']);
    assert.match(clip.notes.join(' '), /no fp16 weights .* using the fp32 files/);
  });

  it('resolves branches, tags and commits, and records refs for named revisions', async () => {
    const tagged = await request(`${SD_REPO}@v1.0`, 'stable-diffusion');
    assert.equal(tagged.commit, sdCommit);
    assert.equal(tagged.revision, 'v1.0');
    const refsFolder = path.join(cacheDir, 'models--stable-diffusion-v1-5--stable-diffusion-v1-5', 'refs');
    assert.equal(await readFile(path.join(refsFolder, 'v1.0'), 'utf8'), sdCommit);
    const byCommit = await request(`${CLIP_REPO}@${clipCommit}`, 'clip');
    assert.equal(byCommit.commit, clipCommit);
    // No ref file is written for a commit revision (as huggingface_hub does).
    await assert.rejects(readdir(path.join(cacheDir, 'models--openai--clip-vit-base-patch16', 'refs')), { code: 'ENOENT' });
  });

  it('takes the sha256 from the resolve endpoint when the tree lists a Xet hash instead of LFS', async () => {
    hub.faults = { xetListing: true };
    const model = await request(CLIP_REPO, 'clip');
    const weights = model.files.find((file) => file.path === 'model.safetensors')!;
    assert.equal(weights.sha256, sha256Of(clipFiles.get('model.safetensors')!));
    assert.ok(hub.requests.some((entry) => entry.method === 'HEAD' && entry.path.endsWith('/model.safetensors')));
    const blobs = await readdir(path.join(cacheDir, 'models--openai--clip-vit-base-patch16', 'blobs'));
    assert.ok(blobs.includes(weights.sha256));
  });

  it('restarts a download cleanly when the server ignores Range', async () => {
    hub.faults = { ignoreRange: true, cut: { file: 'model.safetensors', afterBytes: 500_000, times: 1 } };
    const model = await request(CLIP_REPO, 'clip', { retries: 1 });
    assert.equal(model.files[1]!.sha256, sha256Of(clipFiles.get('model.safetensors')!));
    assert.equal(hub.bytesServed(CLIP_REPO, 'model.safetensors'), 500_000 + clipFiles.get('model.safetensors')!.length);
  });

  after(async () => {
    for (const folder of tempFolders) await rm(folder, { recursive: true, force: true });
  });
});

function strip(model: ResolvedModel): unknown {
  return { ...model, downloadedBytes: 0 };
}
