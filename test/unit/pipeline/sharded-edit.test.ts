// Sharded models end to end (fake hub, real folders, tiny models on the CPU): a sharded repo downloads its index
// and every shard, an edit on it (from the hub or from a folder) gives the same image as the single-file model,
// its recipe lists every shard's hash, and verification re-hashes the shards.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RecipeModel } from '../../../src/shared/recipe';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { ensureModel } from '../../../src/sidecar/hub';
import { edit, type EditRequest } from '../../../src/sidecar/pipeline/edit/edit';
import { assertLoadedAsRecorded } from '../../../src/sidecar/pipeline/edit/edit-models';
import { openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { ensureModels } from '../../../src/sidecar/rpc/pipeline-handlers';
import { buildTinyBpeVocabulary } from '../../helpers/tiny-bpe';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, sha256Of } from '../../support/hub-server';
import { tinyClipRepo, tinySdRepo, writeModelFolder } from '../../support/model-repos';
import { CLIP_WEIGHT_STEM, SD_WEIGHT_STEMS, shardRepoFiles } from '../../support/sharded-checkpoint';
import { blobImage, tempDir } from '../../support/tiny-pipeline';

const SD_REPO = 'stable-diffusion-v1-5/stable-diffusion-v1-5';
const CLIP_REPO = 'openai/clip-vit-base-patch16';
const PROMPT = 'a bright blob on a dark background';
/** Weight files: single safetensors, shards, and shard indexes. */
const WEIGHTS = /\.safetensors$|\.safetensors\.index(\.fp16)?\.json$/;

/** The weight files a recipe records for a model, as path → sha256. */
function recordedWeights(model: RecipeModel | undefined): Record<string, string> {
  assert.ok(model, 'the recipe records the model');
  return Object.fromEntries(model.files.filter((f) => WEIGHTS.test(f.path)).map((f) => [f.path, f.sha256]));
}

/** path → sha256 of every weight file of a repo. */
function weightHashes(files: ReadonlyMap<string, Buffer>): Record<string, string> {
  return Object.fromEntries([...files].filter(([file]) => WEIGHTS.test(file)).map(([file, bytes]) => [file, sha256Of(bytes)]));
}

describe('sharded models in edits (fake hub and folders)', () => {
  let hub: FakeHub;
  let dir: string;
  let engine: Engine;
  let imagePath: string;
  let sdFiles: Map<string, Buffer>;
  let clipFiles: Map<string, Buffer>;
  let shardedSd: Map<string, Buffer>;
  let shardedClip: Map<string, Buffer>;
  let restoreEnv: () => void;
  /** The image the single-file models give (set by the folder test, which runs first). */
  let singleImage: Buffer | undefined;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    sdFiles = await tinySdRepo({ tokenizer: true });
    // A vocabulary that can spell the prompt (the store's fixture tokenizer is a stub).
    const bpe = buildTinyBpeVocabulary([PROMPT]);
    sdFiles.set('tokenizer/vocab.json', Buffer.from(JSON.stringify(bpe.vocab)));
    sdFiles.set('tokenizer/merges.txt', Buffer.from(['#version: 0.2', ...bpe.merges].join('\n') + '\n'));
    clipFiles = await tinyClipRepo();
    shardedSd = await shardRepoFiles(sdFiles, SD_WEIGHT_STEMS, 3);
    shardedClip = await shardRepoFiles(clipFiles, [CLIP_WEIGHT_STEM], 2);
    hub.addRepo(SD_REPO, shardedSd);
    hub.addRepo(CLIP_REPO, shardedClip);
    process.env.HF_ENDPOINT = hub.url;
    dir = await tempDir('sharded-edit');
    engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
    imagePath = path.join(dir, 'blob.png');
    await fs.writeFile(imagePath, await encodePng(blobImage(64, 64, 20, 32, 8)));
  });
  after(async () => {
    await engine.close();
    await hub.stop();
    restoreEnv();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const request = (name: string, settings: EditRequest['settings']): EditRequest => ({
    imagePath,
    spec: { version: 1, mode: 'clipdrag', prompt: PROMPT, points: [{ handle: [20, 32], target: [40, 32] }], parameters: { loraSteps: 0, dragSteps: 2, previewInterval: 0 } },
    settings: { device: 'cpu', ...settings },
    cacheDir: path.join(dir, `cache-${name}`),
    workingWidth: 64,
    engine,
    outPath: path.join(dir, `${name}.png`),
  });

  it('the sharded repos are what the hub serves: an index and every shard per component', () => {
    const shardedWeights = Object.keys(weightHashes(shardedSd)).sort();
    assert.deepEqual(shardedWeights.filter((f) => f.startsWith('unet/')), [
      'unet/diffusion_pytorch_model-00001-of-00003.safetensors',
      'unet/diffusion_pytorch_model-00002-of-00003.safetensors',
      'unet/diffusion_pytorch_model-00003-of-00003.safetensors',
      'unet/diffusion_pytorch_model.safetensors.index.json',
    ]);
    assert.equal(shardedWeights.length, 12);
    assert.deepEqual(Object.keys(weightHashes(shardedClip)).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
  });

  it('an edit on sharded folders gives the image of the single-file models, and its recipe lists every shard', async () => {
    const single = await edit(
      request('single', { model: await writeModelFolder(path.join(dir, 'sd-single'), sdFiles), clipModel: await writeModelFolder(path.join(dir, 'clip-single'), clipFiles) }),
    );
    const sharded = await edit(
      request('sharded', { model: await writeModelFolder(path.join(dir, 'sd-sharded'), shardedSd), clipModel: await writeModelFolder(path.join(dir, 'clip-sharded'), shardedClip) }),
    );
    assert.deepEqual(recordedWeights(sharded.recipe.models[0]), weightHashes(shardedSd));
    assert.deepEqual(recordedWeights(sharded.recipe.models[1]), weightHashes(shardedClip));
    assert.deepEqual(recordedWeights(single.recipe.models[0]), weightHashes(sdFiles));
    singleImage = await fs.readFile(single.imagePath);
    assert.deepEqual(await fs.readFile(sharded.imagePath), singleImage);
  });

  it('hub ids of sharded repos download the index and shards, edit to the same image, and verify every shard', async () => {
    const hubCacheDirectory = path.join(dir, 'hub');
    hub.resetLog();
    const outcome = await edit(request('hub', { hubCacheDirectory }));
    const served = (repo: string, files: ReadonlyMap<string, Buffer>) => [...files.keys()].filter((file) => WEIGHTS.test(file) && hub.bytesServed(repo, file) > 0).sort();
    assert.deepEqual(served(SD_REPO, shardedSd), Object.keys(weightHashes(shardedSd)).sort());
    assert.deepEqual(served(CLIP_REPO, shardedClip), Object.keys(weightHashes(shardedClip)).sort());
    assert.deepEqual(recordedWeights(outcome.recipe.models[0]), weightHashes(shardedSd));
    assert.deepEqual(recordedWeights(outcome.recipe.models[1]), weightHashes(shardedClip));
    assert.ok(singleImage, 'the folder test ran first');
    assert.deepEqual(await fs.readFile(outcome.imagePath), singleImage);

    // A damaged shard is found by verification and fetched again.
    const { folder } = (await ensureModels({ hubCacheDirectory }, new AbortController().signal, () => undefined)).models[0]!;
    const shard = path.join(folder, 'vae', 'diffusion_pytorch_model-00002-of-00003.safetensors');
    const original = await fs.readFile(shard);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 1] ^= 0xff;
    await fs.writeFile(await fs.realpath(shard), damaged);
    const verified = await ensureModels({ hubCacheDirectory, verify: true }, new AbortController().signal, () => undefined);
    assert.deepEqual(verified.models[0]!.corruptFiles, ['vae/diffusion_pytorch_model-00002-of-00003.safetensors']);
    assert.deepEqual(await fs.readFile(shard), original);
  });

  it('checks that the shards the pipeline opened are the ones the model store chose and hashed', async () => {
    const folder = await writeModelFolder(path.join(dir, 'sd-guard'), shardedSd);
    const resolved = await ensureModel({ source: folder, kind: 'stable-diffusion', precision: 'fp32' });
    const model = { role: 'stable-diffusion' as const, id: folder, resolved };
    const opened = await openPipelineModels({ stableDiffusionFolder: folder });
    assert.equal(opened.weightFiles.stableDiffusion.length, 12);
    assertLoadedAsRecorded(model, opened.weightFiles.stableDiffusion);
    // A shard the store did not choose (here: one it never saw) is refused, naming the store's choice.
    const stray = path.join(folder, 'unet', 'diffusion_pytorch_model-00004-of-00004.safetensors');
    assert.throws(
      () => assertLoadedAsRecorded(model, [...opened.weightFiles.stableDiffusion, stray]),
      /was loaded from unet\/diffusion_pytorch_model-00004-of-00004\.safetensors, which the model store did not choose \(it chose [^)]*unet\/diffusion_pytorch_model\.safetensors\.index\.json/,
    );
  });
});
