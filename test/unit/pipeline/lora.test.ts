import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../src/sidecar/models/config';
import { EditCancelledError } from '../../../src/sidecar/pipeline/edit/cancellation';
import { createDdimSchedule } from '../../../src/sidecar/pipeline/diffusion/ddim';
import { GraphSession } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { resizeShorterSide, trainLora, type LoraTrainingSettings } from '../../../src/sidecar/pipeline/lora/lora';
import { cachedLora, loraCacheFile, loraCacheKey } from '../../../src/sidecar/pipeline/lora/lora-cache';
import type { LoraWeights } from '../../../src/sidecar/pipeline/lora/lora-weights';
import { openPipelineModels, type PipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { encodePrompt } from '../../../src/sidecar/pipeline/models/text-conditioning';
import { blobImage, tempDir, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const SETTINGS: LoraTrainingSettings = { rank: 4, steps: 3, learningRate: 5e-4, batchSize: 2, seed: 7, cropSize: 64, weightDecay: 1e-2, rematerialize: false };

describe('LoRA fine-tuning', () => {
  let dir: string;
  let engine: Engine;
  let session: GraphSession;
  let models: PipelineModels;
  let context: Float32Array;
  let tokens: number;
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50);
  const image = blobImage(64, 64, 24, 30, 9);

  before(async () => {
    dir = await tempDir('lora');
    models = await openPipelineModels({ stableDiffusionFolder: TINY_SD, tokenizerFolder: await writeTinyTokenizer(dir) });
    engine = new Engine();
    session = new GraphSession(engine, { device: 'cpu' });
    const prompt = await encodePrompt(session, models.textEncoder, models.tokenizer, 'a bright blob on a dark background');
    context = prompt.embedding;
    tokens = prompt.tokens;
  });
  after(async () => {
    await session.dispose();
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const train = (settings: LoraTrainingSettings, extra: { signal?: AbortSignal; losses?: number[] } = {}) =>
    trainLora(session, {
      unet: models.unet,
      vae: models.vae,
      schedule,
      image,
      context,
      tokens,
      settings,
      ...(extra.signal ? { signal: extra.signal } : {}),
      onStep: ({ loss }) => extra.losses?.push(loss),
    });

  it('initialises the adapters as diffusers does and moves them by AdamW steps', async () => {
    const untrained = await train({ ...SETTINGS, steps: 0 });
    const losses: number[] = [];
    const trained = await train({ ...SETTINGS, steps: 1 }, { losses });
    assert.equal(losses.length, 1);
    assert.ok(Number.isFinite(losses[0]) && losses[0]! > 0);
    // 32 attention modules × 4 projections × (A, B) in the tiny UNet.
    assert.equal(untrained.tensors.size, 256);
    for (const [name, data] of untrained.tensors) {
      if (name.endsWith('lora_B.weight')) assert.ok(data.every((v) => v === 0), `${name} starts at zero`);
      else {
        const std = Math.sqrt(data.reduce((s, v) => s + v * v, 0) / data.length);
        assert.ok(std > 0.1 && std < 0.45, `${name}: std ${std} should be near 1/rank = 0.25`);
      }
    }
    // Adam's first step moves every parameter with a non-negligible gradient by about the learning rate.
    let moved = 0;
    for (const [name, data] of trained.tensors) {
      if (!name.endsWith('lora_B.weight')) continue;
      for (const v of data) {
        assert.ok(Math.abs(v) <= SETTINGS.learningRate * 1.0001, `${name}: |${v}| exceeds one Adam step`);
        if (Math.abs(v) > SETTINGS.learningRate * 0.5) moved++;
      }
    }
    assert.ok(moved > 100, `only ${moved} LoRA up-projection entries moved`);
  });

  it('computes the batch in runs of microBatchSize rows with the whole batch\'s loss and update', async () => {
    const [split, whole] = [[] as number[], [] as number[]];
    const perRow = await train({ ...SETTINGS, steps: 2, microBatchSize: 1 }, { losses: split });
    const together = await train({ ...SETTINGS, steps: 2, microBatchSize: 2 }, { losses: whole });
    split.forEach((loss, i) => assert.ok(Math.abs(loss - whole[i]!) <= 1e-5 * whole[i]!, `step ${i + 1}: loss ${loss} (runs of 1) vs ${whole[i]} (one run)`));
    // Adam's first steps move each entry by about ±lr whatever its gradient's size, so a wrong row split
    // (another row's noise or timestep) shows as entries moved the other way.
    let moved = 0;
    for (const [name, data] of perRow.tensors) {
      const other = together.tensors.get(name)!;
      data.forEach((v, k) => {
        if (v !== 0 || other[k] !== 0) moved++;
        assert.ok(Math.abs(v - other[k]!) <= 1e-2 * SETTINGS.learningRate, `${name}[${k}]: ${v} vs ${other[k]}`);
      });
    }
    assert.ok(moved > 100);
    await assert.rejects(train({ ...SETTINGS, microBatchSize: 3 }), /micro-batch size must be a positive divisor of the batch size 2, got 3/);
  });

  it('is deterministic for a seed and changes with it', async () => {
    const a = await train(SETTINGS);
    const b = await train(SETTINGS);
    const c = await train({ ...SETTINGS, seed: 8 });
    assert.deepEqual(tensorsOf(a), tensorsOf(b));
    assert.notDeepEqual(tensorsOf(a), tensorsOf(c));
  });

  it('stops with a cancellation error when its signal fires', async () => {
    const controller = new AbortController();
    const losses: number[] = [];
    const training = trainLora(session, {
      unet: models.unet,
      vae: models.vae,
      schedule,
      image,
      context,
      tokens,
      settings: { ...SETTINGS, steps: 50 },
      signal: controller.signal,
      onStep: ({ step, loss }) => {
        losses.push(loss);
        if (step === 2) controller.abort();
      },
    });
    await assert.rejects(training, EditCancelledError);
    assert.equal(losses.length, 2);
  });

  it('caches a trained LoRA on disk and reads it back without training', async () => {
    const key = loraCacheKey({ imageSha256: 'abc', prompt: 'p', model: { id: 'tiny' }, settings: SETTINGS });
    assert.notEqual(key, loraCacheKey({ imageSha256: 'abc', prompt: 'p2', model: { id: 'tiny' }, settings: SETTINGS }));
    let trainings = 0;
    const notes: string[] = [];
    const first = await cachedLora(
      dir,
      key,
      async () => {
        trainings++;
        return train(SETTINGS);
      },
      (note) => notes.push(note),
    );
    assert.deepEqual(notes, [], 'a LoRA not cached yet is the normal first run: nothing to note');
    const second = await cachedLora(dir, key, async () => {
      trainings++;
      return train(SETTINGS);
    });
    assert.equal(trainings, 1);
    assert.equal(first.fromCache, false);
    assert.equal(second.fromCache, true);
    assert.deepEqual(tensorsOf(second.lora), tensorsOf(first.lora));
    assert.deepEqual(Object.fromEntries(second.lora.shapes), Object.fromEntries(first.lora.shapes));
    const leftovers = (await fs.readdir(`${dir}/lora`)).filter((f) => !f.endsWith('.safetensors'));
    assert.deepEqual(leftovers, [], 'no temporary files remain');
  });

  it('trains again, with a note, when the cached file is damaged', async () => {
    const key = loraCacheKey({ imageSha256: 'damaged', prompt: 'p', model: { id: 'tiny' }, settings: SETTINGS });
    await fs.mkdir(`${dir}/lora`, { recursive: true });
    await fs.writeFile(loraCacheFile(dir, key), 'not a safetensors file');
    const notes: string[] = [];
    const again = await cachedLora(dir, key, async () => train(SETTINGS), (note) => notes.push(note));
    assert.equal(again.fromCache, false);
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /^the cached LoRA .*\.safetensors cannot be read \(.+\); training it again$/);
    assert.equal((await cachedLora(dir, key, async () => assert.fail('trained twice'))).fromCache, true, 'the damaged file was replaced');
  });

  it('resizes the shorter side to the crop size as torchvision Resize does', () => {
    const wide = resizeShorterSide(blobImage(96, 64, 40, 30, 9), 32);
    assert.deepEqual([wide.width, wide.height], [48, 32]);
    const tall = resizeShorterSide(blobImage(64, 100, 30, 40, 9), 64);
    assert.deepEqual([tall.width, tall.height], [64, 100]);
  });
});

function tensorsOf(lora: LoraWeights): Record<string, number[]> {
  return Object.fromEntries([...lora.tensors].map(([k, v]) => [k, [...v]]));
}
