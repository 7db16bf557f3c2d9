// The precision picks the weight files end to end: fp16 downloads and loads the `*.fp16.safetensors` variants (no
// float16 copy to write), fp32 the full-precision files, and the recipe names the files that ran (fake hub, real
// folders, tiny models on the CPU).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { EditProgress, ModelsProgress } from '../../../src/shared/protocol';
import type { RecipeModel } from '../../../src/shared/recipe';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { ensureModel } from '../../../src/sidecar/hub';
import { edit, type EditRequest } from '../../../src/sidecar/pipeline/edit/edit';
import { assertLoadedAsRecorded } from '../../../src/sidecar/pipeline/edit/edit-models';
import { halfPrecisionCacheDir } from '../../../src/sidecar/pipeline/models/models';
import { editRequestFromRecipe } from '../../../src/sidecar/pipeline/edit/recipe-replay';
import { ensureModels } from '../../../src/sidecar/rpc/pipeline-handlers';
import { buildTinyBpeVocabulary } from '../../helpers/tiny-bpe';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, sha256Of } from '../../support/hub-server';
import { SD_FP32_SELECTION, tinyClipRepo, tinySdRepo, writeModelFolder } from '../../support/model-repos';
import { blobImage, tempDir } from '../../support/tiny-pipeline';

const SD_REPO = 'stable-diffusion-v1-5/stable-diffusion-v1-5';
const CLIP_REPO = 'openai/clip-vit-base-patch16';
const PLAIN_CLIP_REPO = 'openai/clip-without-fp16';
const PROMPT = 'a bright blob on a dark background';

const SD_FP16_SELECTION = SD_FP32_SELECTION.map((file) => file.replace(/\.safetensors$/, '.fp16.safetensors'));
const WEIGHT_FILE = /\.safetensors$/;

/** The weight files a recipe records for a model, as path → sha256. */
function recordedWeights(model: RecipeModel | undefined): Record<string, string> {
  assert.ok(model, 'the recipe records the model');
  return Object.fromEntries(model.files.filter((f) => WEIGHT_FILE.test(f.path)).map((f) => [f.path, f.sha256]));
}

/** path → sha256 of the weight files among `files`. */
function expectedWeights(files: ReadonlyMap<string, Buffer>, paths: readonly string[]): Record<string, string> {
  return Object.fromEntries(paths.filter((p) => WEIGHT_FILE.test(p)).map((p) => [p, sha256Of(files.get(p)!)]));
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

describe('precision picks the weight variants (fake hub and folders)', () => {
  let hub: FakeHub;
  let dir: string;
  let sdFiles: Map<string, Buffer>;
  let clipFiles: Map<string, Buffer>;
  let engine: Engine;
  let imagePath: string;
  let restoreEnv: () => void;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    hub = await FakeHub.start();
    sdFiles = await tinySdRepo({ fp16: true, tokenizer: true, decoys: true });
    // A vocabulary that can spell the prompt (the store's fixture tokenizer is a stub).
    const bpe = buildTinyBpeVocabulary([PROMPT]);
    sdFiles.set('tokenizer/vocab.json', Buffer.from(JSON.stringify(bpe.vocab)));
    sdFiles.set('tokenizer/merges.txt', Buffer.from(['#version: 0.2', ...bpe.merges].join('\n') + '\n'));
    clipFiles = await tinyClipRepo({ fp16: true, decoys: true });
    hub.addRepo(SD_REPO, sdFiles);
    hub.addRepo(CLIP_REPO, clipFiles);
    hub.addRepo(PLAIN_CLIP_REPO, await tinyClipRepo());
    process.env.HF_ENDPOINT = hub.url;
    dir = await tempDir('weights-variant');
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
  beforeEach(() => hub.resetLog());

  /** The files of `repo` the hub sent content of since the last reset. */
  const served = (repo: string, files: ReadonlyMap<string, Buffer>) => [...files.keys()].filter((file) => hub.bytesServed(repo, file) > 0).sort();

  const request = (name: string, extra: Partial<EditRequest> & { settings: EditRequest['settings'] }): EditRequest => ({
    imagePath,
    spec: { version: 1, mode: 'clipdrag', prompt: PROMPT, points: [{ handle: [20, 32], target: [40, 32] }], parameters: { loraSteps: 0, dragSteps: 2, previewInterval: 0 } },
    cacheDir: path.join(dir, `cache-${name}`),
    workingWidth: 64,
    engine,
    outPath: path.join(dir, `${name}.png`),
    ...extra,
  });

  it('models/ensure in fp16 downloads only the fp16 weight variants; in fp32 only the full-precision files', async () => {
    const updates: ModelsProgress[] = [];
    const fp16 = await ensureModels({ precision: 'fp16', hubCacheDirectory: path.join(dir, 'hub-ensure-fp16') }, new AbortController().signal, (p) => updates.push(p));
    assert.deepEqual(served(SD_REPO, sdFiles), [...SD_FP16_SELECTION].sort());
    assert.deepEqual(served(CLIP_REPO, clipFiles), ['config.json', 'model.fp16.safetensors']);
    assert.deepEqual(fp16.models.map((m) => [m.role, m.weightsPrecision, m.notes]), [['stable-diffusion', 'fp16', []], ['clip', 'fp16', []]]);
    // Half the weight bytes of the fp32 files (plus configs and tokenizer).
    const fp32Bytes = SD_FP32_SELECTION.reduce((sum, file) => sum + sdFiles.get(file)!.length, 0);
    assert.equal(fp16.models[0]!.downloadedBytes, SD_FP16_SELECTION.reduce((sum, file) => sum + sdFiles.get(file)!.length, 0));
    assert.ok(fp16.models[0]!.downloadedBytes < 0.6 * fp32Bytes, `${fp16.models[0]!.downloadedBytes} of ${fp32Bytes}`);
    assert.ok(!(await exists(path.join(fp16.models[0]!.folder, 'unet', 'diffusion_pytorch_model.safetensors'))));

    hub.resetLog();
    const fp32 = await ensureModels({ precision: 'fp32', hubCacheDirectory: path.join(dir, 'hub-ensure-fp32') }, new AbortController().signal, () => undefined);
    assert.deepEqual(served(SD_REPO, sdFiles), [...SD_FP32_SELECTION].sort());
    assert.deepEqual(served(CLIP_REPO, clipFiles), ['config.json', 'model.safetensors']);
    assert.deepEqual(fp32.models.map((m) => m.weightsPrecision), ['fp32', 'fp32']);

    // `auto` is fp32 (the default) for now.
    hub.resetLog();
    await ensureModels({ hubCacheDirectory: path.join(dir, 'hub-ensure-auto') }, new AbortController().signal, () => undefined);
    assert.deepEqual(served(CLIP_REPO, clipFiles), ['config.json', 'model.safetensors']);
  });

  it('models/ensure in fp16 takes the fp32 files of a repo without fp16 variants, with a note', async () => {
    const updates: ModelsProgress[] = [];
    const result = await ensureModels(
      { precision: 'fp16', clipModel: PLAIN_CLIP_REPO, hubCacheDirectory: path.join(dir, 'hub-ensure-plain') },
      new AbortController().signal,
      (p) => updates.push(p),
    );
    const clip = result.models[1]!;
    assert.equal(clip.weightsPrecision, 'fp32');
    assert.match(clip.notes.join(' '), /no fp16 weights in openai\/clip-without-fp16.*using the fp32 files instead/);
    assert.ok(updates.some((u) => u.role === 'clip' && u.message === clip.notes[0]), 'the note reaches the progress the user sees');
  });

  it('an fp16 edit with hub ids downloads and loads the fp16 variants, writes no float16 copy, and replays the same files', async () => {
    const hubCacheDirectory = path.join(dir, 'hub-edit');
    const messages: string[] = [];
    const outcome = await edit(request('hub-fp16', { settings: { device: 'cpu', precision: 'fp16', hubCacheDirectory } }), {
      onProgress: (p: EditProgress) => void (p.message && messages.push(p.message)),
    });
    assert.deepEqual(served(SD_REPO, sdFiles), [...SD_FP16_SELECTION].sort());
    assert.deepEqual(served(CLIP_REPO, clipFiles), ['config.json', 'model.fp16.safetensors']);
    const { recipe } = outcome;
    assert.equal(recipe.pipeline.precision, 'fp16');
    assert.deepEqual(recordedWeights(recipe.models[0]), expectedWeights(sdFiles, SD_FP16_SELECTION));
    assert.deepEqual(recordedWeights(recipe.models[1]), { 'model.fp16.safetensors': sha256Of(clipFiles.get('model.fp16.safetensors')!) });
    assert.ok(!(await exists(halfPrecisionCacheDir(path.join(dir, 'cache-hub-fp16')))), 'no float16 copy was written');
    assert.ok(!messages.some((m) => m.includes('float16 copy')), messages.join('\n'));

    // An fp32 edit from the same cache downloads the full-precision files and loads them, though the snapshot
    // now holds both variants.
    hub.resetLog();
    const fp32 = await edit(request('hub-fp32', { settings: { device: 'cpu', precision: 'fp32', hubCacheDirectory } }));
    assert.deepEqual(served(SD_REPO, sdFiles), SD_FP32_SELECTION.filter((f) => WEIGHT_FILE.test(f)).sort());
    assert.deepEqual(recordedWeights(fp32.recipe.models[0]), expectedWeights(sdFiles, SD_FP32_SELECTION));
    assert.deepEqual(recordedWeights(fp32.recipe.models[1]), { 'model.safetensors': sha256Of(clipFiles.get('model.safetensors')!) });

    // The replay (pinned commit, fp16) loads the fp16 files again, from the cache, to the same image.
    hub.resetLog();
    const replay = await editRequestFromRecipe(outcome.recipePath);
    const again = await edit({ ...replay, settings: { ...replay.settings, hubCacheDirectory }, cacheDir: path.join(dir, 'cache-hub-fp16'), engine, outPath: path.join(dir, 'hub-fp16-replay.png') });
    assert.deepEqual(hub.fileRequests(), []);
    assert.deepEqual(again.recipe.models.map(recordedWeights), recipe.models.map(recordedWeights));
    assert.deepEqual(await fs.readFile(again.imagePath), await fs.readFile(outcome.imagePath));
  });

  it('an fp16 edit on folders holding both variants loads the fp16 files and writes no float16 copy', async () => {
    const sdFolder = await writeModelFolder(path.join(dir, 'sd-both'), sdFiles);
    const clipFolder = await writeModelFolder(path.join(dir, 'clip-both'), clipFiles);
    const outcome = await edit(request('folder-fp16', { settings: { model: sdFolder, clipModel: clipFolder, device: 'cpu', precision: 'fp16' } }));
    assert.deepEqual(recordedWeights(outcome.recipe.models[0]), expectedWeights(sdFiles, SD_FP16_SELECTION));
    assert.deepEqual(recordedWeights(outcome.recipe.models[1]), { 'model.fp16.safetensors': sha256Of(clipFiles.get('model.fp16.safetensors')!) });
    assert.ok(!(await exists(halfPrecisionCacheDir(path.join(dir, 'cache-folder-fp16')))), 'no float16 copy was written');

    const fp32 = await edit(request('folder-fp32', { settings: { model: sdFolder, clipModel: clipFolder, device: 'cpu', precision: 'fp32' } }));
    assert.deepEqual(recordedWeights(fp32.recipe.models[0]), expectedWeights(sdFiles, SD_FP32_SELECTION));
  });

  it('refuses weights the model store did not choose, so a recipe never names other bytes than those that ran', async () => {
    const folder = await writeModelFolder(path.join(dir, 'sd-guard'), sdFiles);
    const resolved = await ensureModel({ source: folder, kind: 'stable-diffusion', precision: 'fp16' });
    const model = { role: 'stable-diffusion' as const, id: folder, resolved };
    const weights = (variant: string) => ['unet/diffusion_pytorch_model', 'vae/diffusion_pytorch_model', 'text_encoder/model'].map((base) => path.join(folder, `${base}${variant}.safetensors`));
    assertLoadedAsRecorded(model, weights('.fp16'));
    assert.throws(() => assertLoadedAsRecorded(model, weights('')), /was loaded from unet\/diffusion_pytorch_model\.safetensors, .* which the model store did not choose \(it chose unet\/diffusion_pytorch_model\.fp16\.safetensors/);
  });

  it('an fp32 edit on a folder with only fp16 files loads them (computed in float32) and says so', async () => {
    const fp16Only = new Map([...sdFiles].filter(([file]) => !SD_FP32_SELECTION.includes(file) || !WEIGHT_FILE.test(file)));
    const sdFolder = await writeModelFolder(path.join(dir, 'sd-fp16-only'), fp16Only);
    const messages: string[] = [];
    const outcome = await edit(request('fp16-only', { settings: { model: sdFolder, device: 'cpu', precision: 'fp32' }, spec: { version: 1, mode: 'drag', prompt: PROMPT, points: [{ handle: [20, 32], target: [40, 32] }], parameters: { loraSteps: 0, dragSteps: 2, previewInterval: 0 } } }), {
      onProgress: (p: EditProgress) => void (p.message && messages.push(p.message)),
    });
    assert.equal(outcome.recipe.pipeline.precision, 'fp32');
    assert.deepEqual(recordedWeights(outcome.recipe.models[0]), expectedWeights(sdFiles, SD_FP16_SELECTION));
    const notes = outcome.recipe.notes ?? [];
    for (const component of ['unet', 'vae', 'text_encoder']) {
      const note = notes.find((n) => n.startsWith(`${component}: no fp32 weights`));
      assert.match(note ?? '', /using the fp16 files instead/, notes.join('\n'));
      assert.ok(messages.includes(note!), `the note reaches the edit's progress: ${messages.join('\n')}`);
    }
  });
});
