// Local model folders: passed through without touching the network, files hashed (once per change).
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, unlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureModel, isModelStoreError, verifyModel, type ModelStoreEvent } from '../../../src/sidecar/hub';
import { isolateHubEnvironment } from '../../support/hub-env';
import { readFolderFiles, sha256Of } from '../../support/hub-server';
import { REPO_ROOT, TINY_CLIP_FOLDER, TINY_SD_FOLDER } from '../../support/model-repos';

describe('model store with local folders', () => {
  let restoreEnv: () => void;
  let scratch: string;
  before(async () => {
    restoreEnv = isolateHubEnvironment();
    scratch = await mkdtemp(path.join(tmpdir(), 'local-model-'));
  });
  after(async () => {
    restoreEnv();
    await rm(scratch, { recursive: true, force: true });
  });

  it('passes a relative folder through with sha256 of each file, without any network', async () => {
    const events: ModelStoreEvent[] = [];
    const model = await ensureModel({
      source: 'test/fixtures/tiny-sd15',
      baseDir: REPO_ROOT,
      kind: 'stable-diffusion',
      endpoint: 'http://127.0.0.1:9', // nothing listens there: any request would fail the test
      onEvent: (event) => events.push(event),
      progressIntervalMs: 0,
    });
    assert.equal(model.origin, 'local');
    assert.equal(model.folder, TINY_SD_FOLDER);
    assert.deepEqual({ repoId: model.repoId, revision: model.revision, commit: model.commit }, { repoId: null, revision: null, commit: null });
    const onDisk = await readFolderFiles(TINY_SD_FOLDER);
    assert.equal(model.files.length, onDisk.size);
    for (const file of model.files) {
      assert.equal(file.sha256, sha256Of(onDisk.get(file.path)!), file.path);
      assert.equal(file.localPath, path.join(TINY_SD_FOLDER, ...file.path.split('/')));
    }
    assert.equal(events[0]?.type, 'resolved');
    assert.ok(events.some((event) => event.type === 'progress' && event.phase === 'hash'));
  });

  it('hashes a folder once and again only after a file changes', async () => {
    const folder = path.join(scratch, 'clip');
    await cp(TINY_CLIP_FOLDER, folder, { recursive: true });
    const hashed = async () => {
      const events: ModelStoreEvent[] = [];
      await ensureModel({ source: folder, kind: 'clip', onEvent: (event) => events.push(event) });
      return events.filter((event) => event.type === 'file-start').map((event) => (event.type === 'file-start' ? event.file : ''));
    };
    assert.deepEqual(await hashed(), ['config.json', 'model.safetensors']);
    assert.deepEqual(await hashed(), []);
    const later = new Date(Date.now() + 5000);
    await utimes(path.join(folder, 'config.json'), later, later);
    assert.deepEqual(await hashed(), ['config.json']);
  });

  it('names what a folder lacks', async () => {
    const folder = path.join(scratch, 'broken-sd');
    await cp(TINY_SD_FOLDER, folder, { recursive: true });
    await unlink(path.join(folder, 'vae', 'diffusion_pytorch_model.safetensors'));
    await assert.rejects(ensureModel({ source: folder, kind: 'stable-diffusion' }), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'MISSING_FILES'));
      assert.equal(error.message, `the folder ${folder} is missing files a Stable Diffusion pipeline needs: vae/diffusion_pytorch_model.safetensors.`);
      return true;
    });
    await assert.rejects(ensureModel({ source: TINY_SD_FOLDER, kind: 'clip' }), /missing files a CLIP model needs: config\.json; model\.safetensors/);
  });

  it('verifies a folder by hashing it, without a reference and without deleting anything', async () => {
    const report = await verifyModel({ source: TINY_CLIP_FOLDER, kind: 'clip' });
    assert.equal(report.reference, 'none');
    assert.equal(report.ok, true);
    assert.deepEqual(report.files.map((file) => [file.path, file.status, file.removed]), [['config.json', 'unverified', false], ['model.safetensors', 'unverified', false]]);
  });

  it('stops hashing when cancelled', async () => {
    const controller = new AbortController();
    const folder = path.join(scratch, 'sd-cancel');
    await cp(TINY_SD_FOLDER, folder, { recursive: true });
    const pending = ensureModel({
      source: folder,
      kind: 'stable-diffusion',
      signal: controller.signal,
      progressIntervalMs: 0,
      onEvent: (event) => {
        if (event.type === 'file-start') controller.abort();
      },
    });
    await assert.rejects(pending, (error: unknown) => isModelStoreError(error, 'CANCELLED'));
  });
});
