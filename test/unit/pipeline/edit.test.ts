// The whole edit pipeline on the tiny fixture models (CPU), on a synthetic image: a bright blob to move.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EditSpecError, type EditSpec } from '../../../src/shared/edit-spec';
import type { EditProgress } from '../../../src/shared/protocol';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng, ImageFileError } from '../../../src/sidecar/io/image';
import { EditCancelledError } from '../../../src/sidecar/pipeline/edit/cancellation';
import { edit, type EditRequest, type PipelineRecipe } from '../../../src/sidecar/pipeline/edit/edit';
import { editRequestFromRecipe } from '../../../src/sidecar/pipeline/edit/recipe-replay';
import { blobImage, tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const SIZE = 64;
/** Handle on the blob's centre, target 20 pixels to the right (10 supervision pixels). */
const POINTS = [{ handle: [20, 32], target: [40, 32] }] as EditSpec['points'];

function spec(overrides: Partial<EditSpec> = {}, parameters: EditSpec['parameters'] = {}): EditSpec {
  return {
    version: 1,
    mode: 'clipdrag',
    prompt: 'a bright blob on a dark background',
    editPrompt: 'move the blob to the right',
    points: POINTS,
    ...overrides,
    parameters: { loraSteps: 2, loraBatchSize: 1, loraRank: 4, dragSteps: 40, previewInterval: 4, ...parameters },
  };
}

const sha256 = async (file: string) => createHash('sha256').update(await fs.readFile(file)).digest('hex');

describe('edit pipeline (tiny models, CPU)', () => {
  let dir: string;
  let tokenizer: string;
  let engine: Engine;

  before(async () => {
    dir = await tempDir('edit');
    tokenizer = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
    engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
  });
  after(async () => {
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A folder with the blob image; returns the image path. */
  async function imageIn(name: string, bytes?: Uint8Array): Promise<string> {
    const folder = path.join(dir, name);
    await fs.mkdir(folder, { recursive: true });
    const file = path.join(folder, 'blob.png');
    await fs.writeFile(file, bytes ?? (await encodePng(blobImage(SIZE, SIZE, 20, 32, 8))));
    return file;
  }

  const request = (imagePath: string, extra: Partial<EditRequest> = {}): EditRequest => ({
    imagePath,
    spec: spec(),
    settings: { model: TINY_SD, clipModel: TINY_CLIP, device: 'cpu' },
    cacheDir: path.join(dir, 'cache'),
    tokenizerFolder: tokenizer,
    workingWidth: SIZE,
    engine,
    ...extra,
  });

  it('drags the blob: the handle ends within 2 px of its target, result and recipe appear next to the source, which is untouched', async () => {
    const imagePath = await imageIn('drag');
    const before = await sha256(imagePath);
    const events: EditProgress[] = [];
    const outcome = await edit(request(imagePath), { onProgress: (p) => events.push(p) });

    assert.equal(outcome.reachedTargets, true);
    const [handle] = outcome.finalHandles;
    // 2 supervision pixels are 4 image pixels at this size.
    assert.ok(Math.hypot(handle![0] - 40, handle![1] - 32) < 4, `final handle ${handle} is not within 2 px of the target`);
    assert.ok(outcome.iterations > 0 && outcome.iterations < 40);
    assert.equal(outcome.imagePath, path.join(path.dirname(imagePath), 'blob.clipdrag.png'));
    assert.equal(outcome.recipePath, path.join(path.dirname(imagePath), 'blob.clipdrag.json'));
    assert.equal(await sha256(imagePath), before, 'the source is unchanged');
    const recipe = JSON.parse(await fs.readFile(outcome.recipePath, 'utf8')) as PipelineRecipe;
    assert.equal(recipe.source.sha256, before);
    assert.equal(recipe.drag.iterations, outcome.iterations);
    assert.deepEqual(recipe.pipeline.workingSize, { width: SIZE, height: SIZE });
    assert.equal(recipe.pipeline.guidanceText, 'move the blob to the right');
    assert.equal(recipe.device.executionProvider, 'cpu');
    assert.deepEqual(
      recipe.timings.map((t) => t.stage),
      ['decode', 'load', 'lora', 'encode', 'inversion', 'drag', 'denoise', 'write'],
    );

    // Every stage reported, in order, and the drag stage with losses, handles and previews.
    const stages = [...new Set(events.map((e) => e.stage))];
    assert.deepEqual(stages, ['decode', 'load', 'lora', 'encode', 'inversion', 'drag', 'denoise', 'write']);
    const drag = events.filter((e) => e.stage === 'drag' && e.step > 0);
    assert.equal(drag.length, outcome.iterations);
    assert.ok(drag.every((e) => e.losses && e.losses.motion! >= 0 && e.losses.clip! > 0 && e.handles?.length === 1));
    const previews = drag.filter((e) => e.previewPngBase64);
    assert.equal(previews.length, Math.floor(outcome.iterations / 4));
    if (previews[0]) assert.deepEqual([...Buffer.from(previews[0].previewPngBase64!, 'base64').subarray(1, 4)], [0x50, 0x4e, 0x47]);
    assert.ok(events.filter((e) => e.stage === 'lora' && e.step > 0).every((e) => Number.isFinite(e.losses?.lora)));
    assert.ok(events.some((e) => e.stage === 'inversion' && e.step === 35 && e.total === 35));

    // The recipe reproduces the result bit for bit: once retraining the LoRA (empty cache), once from the cache.
    const replay = await editRequestFromRecipe(outcome.recipePath);
    const fresh = await edit({ ...replay, cacheDir: path.join(dir, 'cache-replay'), tokenizerFolder: tokenizer, engine, outPath: path.join(dir, 'replay.png') });
    assert.equal(fresh.loraFromCache, false);
    assert.deepEqual(await fs.readFile(fresh.imagePath), await fs.readFile(outcome.imagePath));
    const again = await edit(request(imagePath));
    assert.equal(again.loraFromCache, true, 'a second edit of the same image reuses the LoRA');
    assert.equal(again.imagePath, path.join(path.dirname(imagePath), 'blob.clipdrag-2.png'));
    assert.deepEqual(await fs.readFile(again.imagePath), await fs.readFile(outcome.imagePath));

    // Guards the drag gradient. Fast tracking only accepts cells closer to the target, so it walks the handle
    // there whatever the latent does: everything above passes with the drag gradient zeroed. Plain tracking
    // follows the best feature match and stays on the blob where it is unless the content moved, so reaching the
    // target with it shows that the motion supervision moved the blob.
    const plain = await edit(request(imagePath, { tracking: 'plain', outPath: path.join(dir, 'drag-plain.png') }));
    assert.equal(plain.reachedTargets, true, `with plain tracking the handle stopped at ${plain.finalHandles[0]} after ${plain.iterations} iterations`);
  });

  it('fast point tracking needs no more iterations than plain tracking on the same task', async () => {
    const imagePath = await imageIn('tracking');
    const run = (tracking: 'fast' | 'plain') =>
      edit(request(imagePath, { tracking, spec: spec({}, { loraSteps: 0, dragSteps: 30, previewInterval: 0 }), outPath: path.join(dir, `tracking-${tracking}.png`) }));
    const fast = await run('fast');
    const plain = await run('plain');
    assert.equal(fast.reachedTargets, true);
    assert.ok(fast.iterations <= plain.iterations, `fast tracking took ${fast.iterations} iterations, plain ${plain.iterations}`);
    const recipe = JSON.parse(await fs.readFile(plain.recipePath, 'utf8')) as PipelineRecipe;
    assert.equal(recipe.pipeline.tracking, 'plain');
  });

  it('runs in fp16: the edit completes, its recipe says fp16 and replays in fp16 to the same bytes', async () => {
    const imagePath = await imageIn('fp16');
    const cacheDir = path.join(dir, 'cache-fp16');
    const fp16Spec = spec({}, { loraSteps: 1, dragSteps: 30, previewInterval: 0 });
    const outcome = await edit(request(imagePath, { cacheDir, spec: fp16Spec, settings: { model: TINY_SD, clipModel: TINY_CLIP, device: 'cpu', precision: 'fp16' } }));
    assert.equal(outcome.reachedTargets, true);
    const [handle] = outcome.finalHandles;
    assert.ok(Math.hypot(handle![0] - 40, handle![1] - 32) < 4, `final handle ${handle} is not within 2 px of the target`);
    const recipe = JSON.parse(await fs.readFile(outcome.recipePath, 'utf8')) as PipelineRecipe;
    assert.equal(recipe.pipeline.precision, 'fp16');
    // The fp32 checkpoints were converted once into the cache (UNet, VAE, text encoder, CLIP).
    assert.equal((await fs.readdir(path.join(cacheDir, 'fp16-weights'))).length, 4);

    const replay = await editRequestFromRecipe(outcome.recipePath);
    assert.equal(replay.settings?.precision, 'fp16');
    const again = await edit({ ...replay, cacheDir, tokenizerFolder: tokenizer, engine, outPath: path.join(dir, 'fp16-replay.png') });
    assert.deepEqual(await fs.readFile(again.imagePath), await fs.readFile(outcome.imagePath));

    // The same edit in fp32 differs (the precision is not ignored), yet lands the handle as well.
    const fp32 = await edit(request(imagePath, { cacheDir, spec: fp16Spec, outPath: path.join(dir, 'fp32.png') }));
    assert.equal((JSON.parse(await fs.readFile(fp32.recipePath, 'utf8')) as PipelineRecipe).pipeline.precision, 'fp32');
    assert.notDeepEqual(await fs.readFile(fp32.imagePath), await fs.readFile(outcome.imagePath));
  });

  it('runs DragDiffusion mode with a mask (background term on, no CLIP model needed)', async () => {
    const imagePath = await imageIn('drag-mode');
    const mask = { width: SIZE, height: SIZE, rle: [SIZE * 16, SIZE * 32, SIZE * 16] };
    const events: EditProgress[] = [];
    const outcome = await edit(
      request(imagePath, { spec: spec({ mode: 'drag', mask }, { loraSteps: 0, dragSteps: 3, previewInterval: 2 }), settings: { model: TINY_SD, device: 'cpu' } }),
      { onProgress: (p) => events.push(p) },
    );
    assert.equal(outcome.iterations, 3);
    const drag = events.filter((e) => e.stage === 'drag' && e.step > 0);
    assert.ok(drag.every((e) => e.losses?.mask !== undefined && e.losses.clip === undefined));
    assert.equal(drag.filter((e) => e.previewPngBase64).length, 1, 'drag mode decodes its preview separately');
    const recipe = JSON.parse(await fs.readFile(outcome.recipePath, 'utf8')) as PipelineRecipe;
    assert.deepEqual(recipe.models.map((m) => m.role), ['stable-diffusion']);
    assert.equal(recipe.pipeline.guidanceText, null);
    assert.deepEqual(recipe.spec.mask, mask);
  });

  it('leaves no result when cancelled during LoRA training or during the drag', async () => {
    for (const stage of ['lora', 'drag'] as const) {
      const imagePath = await imageIn(`cancel-${stage}`);
      const controller = new AbortController();
      const onProgress = (p: EditProgress) => {
        if (p.stage === stage && p.step === 1) controller.abort();
      };
      const cacheDir = path.join(dir, `cache-cancel-${stage}`);
      await assert.rejects(edit(request(imagePath, { cacheDir, spec: spec({}, { loraSteps: 3 }) }), { signal: controller.signal, onProgress }), (error) => {
        assert.ok(error instanceof EditCancelledError, String(error));
        assert.match(error.message, new RegExp(stage === 'lora' ? 'LoRA training' : 'dragging'));
        return true;
      });
      assert.deepEqual(await fs.readdir(path.dirname(imagePath)), ['blob.png'], `nothing written after cancelling during ${stage}`);
      if (stage === 'lora') await assert.rejects(fs.readdir(path.join(cacheDir, 'lora')), /ENOENT/, 'no half-trained LoRA is cached');
    }
  });

  it('explains a corrupt image and an invalid spec before loading any model', async () => {
    const corrupt = await imageIn('corrupt', new TextEncoder().encode('not a png at all'));
    await assert.rejects(edit(request(corrupt)), (error) => {
      assert.ok(error instanceof ImageFileError);
      assert.match(error.message, /blob\.png/);
      return true;
    });
    const imagePath = await imageIn('invalid');
    const bad = spec({ points: [{ handle: [20, 32], target: [90, 32] }] }, { latentLearningRate: -1 });
    await assert.rejects(edit(request(imagePath, { spec: bad })), (error) => {
      assert.ok(error instanceof EditSpecError);
      assert.match(error.message, /\$\.points\[0\]\.target\[0\]: x = 90 is outside the image/);
      assert.match(error.message, /\$\.parameters\.latentLearningRate/);
      return true;
    });
    await assert.rejects(edit(request(imagePath, { outPath: imagePath })), /must be a \.png|overwrite the source/);
    assert.deepEqual(await fs.readdir(path.dirname(imagePath)), ['blob.png']);
  });
});
