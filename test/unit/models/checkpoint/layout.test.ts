import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  loadAutoencoderKLFolder,
  loadClipModel,
  loadStableDiffusionModel,
  ModelLayoutError,
  resolveDiffusersLayout,
} from '../../../../src/sidecar/models/checkpoint/layout';
import { withSafetensorsFile, writeSafetensors, type TensorToWrite } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../../../src/sidecar/engine/float16';

const FIXTURES = path.resolve(__dirname, '../../../fixtures');
const SD = path.join(FIXTURES, 'tiny-sd15');
const CLIP = path.join(FIXTURES, 'tiny-clip-vit-b16');

async function copyDir(from: string, to: string): Promise<void> {
  await fs.cp(from, to, { recursive: true });
}

/** Converts one checkpoint's float32 tensors to F16 (other dtypes kept), as an fp16 variant file. */
async function writeFp16Variant(source: string, target: string): Promise<void> {
  await withSafetensorsFile(source, async (file) => {
    const tensors: TensorToWrite[] = [];
    for (const t of file.tensors()) {
      if (t.dtype === 'F32') {
        const values = await file.readFloat32(t.name);
        tensors.push({ name: t.name, dtype: 'F16', shape: t.shape, data: float32ToFloat16Bits(values) });
      } else {
        tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await file.readBytes(t.name) });
      }
    }
    await writeSafetensors(target, tensors, file.metadata);
  });
}

async function expectLayoutError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ModelLayoutError, `expected ModelLayoutError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('resolves and parses the tiny SD-1.5 diffusers folder', async () => {
  const model = await loadStableDiffusionModel(SD);
  const { layout } = model;
  assert.deepEqual(layout.unet.weightsPaths, [path.join(SD, 'unet', 'diffusion_pytorch_model.safetensors')]);
  assert.deepEqual(layout.vae.weightsPaths, [path.join(SD, 'vae', 'diffusion_pytorch_model.safetensors')]);
  assert.deepEqual(layout.textEncoder.weightsPaths, [path.join(SD, 'text_encoder', 'model.safetensors')]);
  assert.equal(layout.unet.variant, 'default');
  assert.equal(layout.tokenizer, null);
  assert.equal(model.modelIndex.className, 'StableDiffusionPipeline');

  assert.deepEqual(model.unet.blockOutChannels, [16, 16, 32, 32]);
  assert.deepEqual(model.unet.attentionHeads, [4, 4, 4, 4]);
  assert.deepEqual(model.unet.crossAttentionDim, [16, 16, 16, 16]);
  assert.deepEqual(model.unet.layersPerBlock, [2, 2, 2, 2]);
  assert.equal(model.unet.normNumGroups, 8);
  assert.equal(model.unet.timeEmbeddingDim, 64);
  assert.equal(model.unet.useLinearProjection, false);
  assert.equal(model.unet.midBlockType, 'UNetMidBlock2DCrossAttn');

  assert.equal(model.vae.latentChannels, 4);
  assert.equal(model.vae.scalingFactor, 0.18215);
  assert.equal(model.vae.layersPerBlock, 1);

  assert.equal(model.textEncoder.hiddenSize, 16);
  assert.equal(model.textEncoder.intermediateSize, 48);
  assert.equal(model.textEncoder.numAttentionHeads, 4);
  assert.equal(model.textEncoder.hiddenAct, 'quick_gelu');

  assert.equal(model.scheduler.betaSchedule, 'scaled_linear');
  assert.equal(model.scheduler.setAlphaToOne, false);
  assert.equal(model.scheduler.stepsOffset, 1);
  assert.equal(model.scheduler.timestepSpacing, 'leading');
});

test('resolves and parses the tiny CLIP ViT-B/16 transformers folder', async () => {
  const { layout, config } = await loadClipModel(CLIP);
  assert.deepEqual(layout.weightsPaths, [path.join(CLIP, 'model.safetensors')]);
  assert.equal(config.projectionDim, 16);
  assert.deepEqual(
    [config.visionConfig.hiddenSize, config.visionConfig.numAttentionHeads, config.visionConfig.patchSize, config.visionConfig.imageSize],
    [32, 4, 16, 224],
  );
  assert.deepEqual([config.textConfig.hiddenSize, config.textConfig.numAttentionHeads, config.textConfig.intermediateSize], [8, 2, 32]);
  assert.equal(config.logitScaleInitValue, 2.6592);
});

test('fp16 variant files are found and decode to the half-rounded weights', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'layout-fp16-'));
  const root = path.join(dir, 'sd-fp16');
  await fs.mkdir(root);
  await fs.copyFile(path.join(SD, 'model_index.json'), path.join(root, 'model_index.json'));
  await copyDir(path.join(SD, 'scheduler'), path.join(root, 'scheduler'));
  for (const [sub, base] of [['unet', 'diffusion_pytorch_model'], ['vae', 'diffusion_pytorch_model'], ['text_encoder', 'model']] as const) {
    await fs.mkdir(path.join(root, sub));
    await fs.copyFile(path.join(SD, sub, 'config.json'), path.join(root, sub, 'config.json'));
    await writeFp16Variant(path.join(SD, sub, `${base}.safetensors`), path.join(root, sub, `${base}.fp16.safetensors`));
  }

  // Only the fp16 files exist: "auto", "auto-fp16" and "fp16" find them, "default" names the missing file and the alternative.
  for (const variant of ['auto', 'auto-fp16', 'fp16'] as const) {
    const { layout } = await resolveDiffusersLayout(root, { variant });
    assert.equal(layout.unet.variant, 'fp16');
    assert.deepEqual(layout.textEncoder.weightsPaths, [path.join(root, 'text_encoder', 'model.fp16.safetensors')]);
  }
  await expectLayoutError(
    resolveDiffusersLayout(root, { variant: 'default' }),
    /unet\/diffusion_pytorch_model\.safetensors is missing; unet\/diffusion_pytorch_model\.fp16\.safetensors exists \(use the fp16 variant\)/,
  );

  const model = await loadStableDiffusionModel(root, { variant: 'fp16' });
  const name = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight';
  const original = await withSafetensorsFile(path.join(SD, 'unet', 'diffusion_pytorch_model.safetensors'), (f) => f.readFloat32(name));
  await withSafetensorsFile(model.layout.unet.weightsPaths[0]!, async (f) => {
    assert.equal(f.info(name).dtype, 'F16');
    assert.equal(f.info(name).byteLength, original.length * 2);
    const decoded = await f.readFloat32(name);
    assert.deepEqual(decoded, float16BitsToFloat32(float32ToFloat16Bits(original)));
    let maxRel = 0;
    for (let i = 0; i < original.length; i++) maxRel = Math.max(maxRel, Math.abs(decoded[i]! - original[i]!) / Math.max(Math.abs(original[i]!), 1e-3));
    assert.ok(maxRel < 1e-3, `half rounding error ${maxRel}`);
  });
  // Integer buffers are kept as they were.
  await withSafetensorsFile(model.layout.textEncoder.weightsPaths[0]!, async (f) => {
    assert.deepEqual([...(await f.readInt64('text_model.embeddings.position_ids'))].slice(0, 3), [0n, 1n, 2n]);
  });

  // With both present, "auto" prefers full precision and "auto-fp16" the fp16 variant; each falls back per component.
  await fs.copyFile(path.join(SD, 'unet', 'diffusion_pytorch_model.safetensors'), path.join(root, 'unet', 'diffusion_pytorch_model.safetensors'));
  const preferFull = (await resolveDiffusersLayout(root)).layout;
  assert.deepEqual([preferFull.unet.variant, preferFull.vae.variant], ['default', 'fp16']);
  const preferHalf = (await resolveDiffusersLayout(root, { variant: 'auto-fp16' })).layout;
  assert.deepEqual([preferHalf.unet.variant, preferHalf.vae.variant], ['fp16', 'fp16']);
  await fs.rm(path.join(root, 'unet', 'diffusion_pytorch_model.fp16.safetensors'));
  assert.equal((await resolveDiffusersLayout(root, { variant: 'auto-fp16' })).layout.unet.variant, 'default');
  await fs.rm(dir, { recursive: true });
});

test('CLIP folders load the fp16 variant model.fp16.safetensors by the same rules', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'layout-clip-fp16-'));
  const root = path.join(dir, 'clip');
  await copyDir(CLIP, root);
  await writeFp16Variant(path.join(CLIP, 'model.safetensors'), path.join(root, 'model.fp16.safetensors'));
  assert.equal((await loadClipModel(root)).layout.variant, 'default');
  const half = (await loadClipModel(root, { variant: 'auto-fp16' })).layout;
  assert.deepEqual([half.variant, half.weightsPaths], ['fp16', [path.join(root, 'model.fp16.safetensors')]]);
  await fs.rm(path.join(root, 'model.safetensors'));
  assert.equal((await loadClipModel(root)).layout.variant, 'fp16');
  await expectLayoutError(loadClipModel(root, { variant: 'default' }), /model\.safetensors is missing; model\.fp16\.safetensors exists \(use the fp16 variant\)/);
  await fs.rm(dir, { recursive: true });
});

test('incomplete or wrong folders name what is missing', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'layout-missing-'));
  const root = path.join(dir, 'sd');
  await copyDir(SD, root);

  await expectLayoutError(loadStableDiffusionModel(CLIP), /model_index\.json is missing: not a diffusers pipeline folder \(it has a config\.json/);
  await expectLayoutError(loadClipModel(SD), /config\.json is missing: not a transformers CLIPModel folder \(this is a diffusers pipeline folder/);
  await expectLayoutError(loadStableDiffusionModel(path.join(dir, 'nowhere')), /is not a folder/);

  await fs.rename(path.join(root, 'vae', 'diffusion_pytorch_model.safetensors'), path.join(root, 'vae', 'diffusion_pytorch_model.bin'));
  await expectLayoutError(
    loadStableDiffusionModel(root),
    /vae\/diffusion_pytorch_model\.safetensors is missing \(nor vae\/diffusion_pytorch_model\.fp16\.safetensors\); found diffusion_pytorch_model\.bin \(PyTorch pickle\)/,
  );
  await fs.rename(path.join(root, 'vae', 'diffusion_pytorch_model.bin'), path.join(root, 'vae', 'diffusion_pytorch_model.safetensors'));

  await fs.rm(path.join(root, 'scheduler'), { recursive: true });
  await expectLayoutError(loadStableDiffusionModel(root), /scheduler\/scheduler_config\.json is missing/);
  await copyDir(path.join(SD, 'scheduler'), path.join(root, 'scheduler'));

  await fs.rm(path.join(root, 'unet', 'config.json'));
  await expectLayoutError(loadStableDiffusionModel(root), /unet\/config\.json is missing/);
  await fs.copyFile(path.join(SD, 'vae', 'config.json'), path.join(root, 'unet', 'config.json'));
  await expectLayoutError(loadStableDiffusionModel(root), /unet\/config\.json: is a AutoencoderKL config, expected UNet2DConditionModel/);
  await fs.copyFile(path.join(SD, 'unet', 'config.json'), path.join(root, 'unet', 'config.json'));

  await fs.mkdir(path.join(root, 'tokenizer'));
  await fs.writeFile(path.join(root, 'tokenizer', 'vocab.json'), '{}');
  await expectLayoutError(loadStableDiffusionModel(root), /tokenizer\/merges\.txt is missing/);
  await fs.writeFile(path.join(root, 'tokenizer', 'merges.txt'), '#version: 0.2\n');
  assert.equal((await loadStableDiffusionModel(root)).layout.tokenizer?.mergesPath, path.join(root, 'tokenizer', 'merges.txt'));

  const index = JSON.parse(await fs.readFile(path.join(root, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  await fs.writeFile(path.join(root, 'model_index.json'), JSON.stringify({ ...index, text_encoder: ['transformers', 'T5EncoderModel'] }));
  await expectLayoutError(loadStableDiffusionModel(root), /"text_encoder" is T5EncoderModel, expected CLIPTextModel/);
  await fs.writeFile(path.join(root, 'model_index.json'), '{ not json');
  await expectLayoutError(loadStableDiffusionModel(root), /model_index\.json is not valid JSON/);

  const clip = path.join(dir, 'clip');
  await copyDir(CLIP, clip);
  await fs.rm(path.join(clip, 'model.safetensors'));
  await expectLayoutError(loadClipModel(clip), /model\.safetensors is missing/);
  await fs.rm(dir, { recursive: true });
});

test('a stand-alone VAE folder loads like the vae/ sub-folder', async () => {
  const { files, config } = await loadAutoencoderKLFolder(path.join(SD, 'vae'));
  assert.deepEqual(files.weightsPaths, [path.join(SD, 'vae', 'diffusion_pytorch_model.safetensors')]);
  assert.deepEqual(config.blockOutChannels, [16, 16, 32, 32]);
  await expectLayoutError(loadAutoencoderKLFolder(path.join(SD, 'unet')), /is a UNet2DConditionModel config, expected AutoencoderKL/);
});
