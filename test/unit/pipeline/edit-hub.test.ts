// Edits and models/ensure with hub model ids, against the local fake hub: downloads with progress, repair of a
// corrupt cached file, and recipes that pin the commit the result came from.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelsProgress } from '../../../src/shared/protocol';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { edit } from '../../../src/sidecar/pipeline/edit/edit';
import { editRequestFromRecipe } from '../../../src/sidecar/pipeline/edit/recipe-replay';
import { ensureModels } from '../../../src/sidecar/rpc/pipeline-handlers';
import { buildTinyBpeVocabulary } from '../../helpers/tiny-bpe';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub } from '../../support/hub-server';
import { tinyClipRepo, tinySdRepo } from '../../support/model-repos';
import { blobImage, tempDir } from '../../support/tiny-pipeline';

const SD_REPO = 'stable-diffusion-v1-5/stable-diffusion-v1-5';
const CLIP_REPO = 'openai/clip-vit-base-patch16';

describe('hub models in edits and models/ensure (fake hub)', () => {
  let hub: FakeHub;
  let dir: string;
  let hubCache: string;
  let sdCommit: string;
  let clipCommit: string;
  let restoreEnv: () => void;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    const sdFiles = await tinySdRepo({ tokenizer: true });
    // A vocabulary that can spell the prompts (the store's fixture tokenizer is a stub).
    const bpe = buildTinyBpeVocabulary(['a bright blob on a dark background']);
    sdFiles.set('tokenizer/vocab.json', Buffer.from(JSON.stringify(bpe.vocab)));
    sdFiles.set('tokenizer/merges.txt', Buffer.from(['#version: 0.2', ...bpe.merges].join('\n') + '\n'));
    sdCommit = hub.addRepo(SD_REPO, sdFiles).commit;
    clipCommit = hub.addRepo(CLIP_REPO, await tinyClipRepo()).commit;
    process.env.HF_ENDPOINT = hub.url;
    dir = await tempDir('edit-hub');
    hubCache = path.join(dir, 'hub');
  });
  after(async () => {
    await hub.stop();
    restoreEnv();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('models/ensure downloads both models with progress, and verify fetches a corrupted file again', async () => {
    const updates: ModelsProgress[] = [];
    const first = await ensureModels({ hubCacheDirectory: hubCache }, new AbortController().signal, (p) => updates.push(p));
    assert.deepEqual(first.models.map((m) => [m.role, m.id, m.commit, m.origin]), [['stable-diffusion', SD_REPO, sdCommit, 'hub'], ['clip', CLIP_REPO, clipCommit, 'hub']]);
    assert.ok(first.models.every((m) => m.downloadedBytes > 0 && m.downloadedBytes === m.totalBytes));
    const downloads = updates.filter((u) => u.phase === 'download');
    assert.ok(downloads.some((u) => u.role === 'stable-diffusion' && u.file === 'unet/diffusion_pytorch_model.safetensors'));
    assert.ok(downloads.every((u) => u.bytes! <= u.totalBytes!));

    // Damage the cached UNet weights: verification finds it, removes it and downloads it again.
    const unet = path.join(first.models[0]!.folder, 'unet', 'diffusion_pytorch_model.safetensors');
    const original = await fs.readFile(unet);
    const blob = await fs.realpath(unet);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 1] ^= 0xff;
    await fs.writeFile(blob, damaged);
    const verified = await ensureModels({ hubCacheDirectory: hubCache, verify: true }, new AbortController().signal, () => undefined);
    assert.deepEqual(verified.models[0]!.corruptFiles, ['unet/diffusion_pytorch_model.safetensors']);
    assert.deepEqual(verified.models[1]!.corruptFiles, []);
    assert.equal(verified.models[0]!.downloadedBytes, original.length);
    assert.deepEqual(await fs.readFile(unet), original);
  });

  it('edits with hub ids and writes a recipe that pins their commits', async () => {
    const imagePath = path.join(dir, 'blob.png');
    await fs.writeFile(imagePath, await encodePng(blobImage(64, 64, 20, 32, 8)));
    const engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
    try {
      const outcome = await edit({
        imagePath,
        spec: { version: 1, mode: 'clipdrag', prompt: 'a bright blob on a dark background', points: [{ handle: [20, 32], target: [40, 32] }], parameters: { loraSteps: 0, dragSteps: 2 } },
        settings: { device: 'cpu', hubCacheDirectory: hubCache },
        cacheDir: path.join(dir, 'cache'),
        workingWidth: 64,
        engine,
      });
      const recipe = outcome.recipe;
      assert.deepEqual(recipe.models.map((m) => [m.role, m.id, m.repoId, m.commit]), [['stable-diffusion', SD_REPO, SD_REPO, sdCommit], ['clip', CLIP_REPO, CLIP_REPO, clipCommit]]);
      assert.ok(recipe.models[0]!.files.some((f) => f.path === 'tokenizer/vocab.json'));
      const replay = await editRequestFromRecipe(outcome.recipePath);
      assert.equal(replay.spec?.model, `${SD_REPO}@${sdCommit}`);
      assert.equal(replay.spec?.clipModel, `${CLIP_REPO}@${clipCommit}`);
    } finally {
      await engine.close();
    }
  });
});
