// The tiny models split into shards compute exactly what the single-file checkpoints compute (same bytes out),
// in fp32 and in fp16 (where each fp32 shard gets its own float16 copy): UNet, VAE, SD text encoder and CLIP.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { halfPrecisionCacheDir, openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { modelOutputs as outputs } from '../../support/model-outputs';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import type { Precision } from '../../../src/shared/protocol';
import { CLIP_WEIGHT_STEM, SD_WEIGHT_STEMS, shardInFolder } from '../../support/sharded-checkpoint';
import { tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

describe('sharded checkpoints compute what single files compute (tiny fixtures, CPU)', () => {
  let dir: string;
  let sdFolder: string;
  let clipFolder: string;
  let tokenizerFolder: string;

  before(async () => {
    dir = await tempDir('sharded-models');
    sdFolder = path.join(dir, 'sd');
    clipFolder = path.join(dir, 'clip');
    await fs.cp(TINY_SD, sdFolder, { recursive: true });
    await fs.cp(TINY_CLIP, clipFolder, { recursive: true });
    for (const [i, stem] of SD_WEIGHT_STEMS.entries()) await shardInFolder(sdFolder, stem, 2 + (i % 2));
    await shardInFolder(clipFolder, CLIP_WEIGHT_STEM, 3);
    tokenizerFolder = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const open = (stableDiffusionFolder: string, clip: string, precision: Precision, cacheDir: string) =>
    openPipelineModels({ stableDiffusionFolder, clipFolder: clip, tokenizerFolder, precision, cacheDir });

  for (const precision of ['fp32', 'fp16'] as const) {
    it(`${precision}: UNet, VAE, text encoder and CLIP outputs are bit-identical`, async () => {
      const cacheDir = path.join(dir, `cache-${precision}`);
      const sharded = await open(sdFolder, clipFolder, precision, cacheDir);
      const single = await open(TINY_SD, TINY_CLIP, precision, cacheDir);
      const unetWeights = sharded.unet.weights;
      assert.ok(unetWeights instanceof CheckpointWeights);
      assert.equal(unetWeights.files.length, 2);
      assert.equal(sharded.clip!.weights.files.length, 3);
      assert.equal(unetWeights.dtype, precision === 'fp16' ? 'float16' : 'float32');
      // The recorded weight files are the folders' own: each index and its shards.
      assert.deepEqual(
        sharded.weightFiles.stableDiffusion.map((f) => path.relative(sdFolder, f).split(path.sep).join('/')),
        [
          'unet/diffusion_pytorch_model.safetensors.index.json',
          'unet/diffusion_pytorch_model-00001-of-00002.safetensors',
          'unet/diffusion_pytorch_model-00002-of-00002.safetensors',
          'vae/diffusion_pytorch_model.safetensors.index.json',
          'vae/diffusion_pytorch_model-00001-of-00003.safetensors',
          'vae/diffusion_pytorch_model-00002-of-00003.safetensors',
          'vae/diffusion_pytorch_model-00003-of-00003.safetensors',
          'text_encoder/model.safetensors.index.json',
          'text_encoder/model-00001-of-00002.safetensors',
          'text_encoder/model-00002-of-00002.safetensors',
        ],
      );
      if (precision === 'fp16') {
        // Every fp32 shard got its own float16 copy; the single files got theirs.
        const copies = await fs.readdir(halfPrecisionCacheDir(cacheDir));
        assert.equal(copies.length, 2 + 3 + 2 + 3 + 4);
        assert.ok(unetWeights.files.every((f) => f.startsWith(halfPrecisionCacheDir(cacheDir))));
      }
      const [fromShards, fromSingle] = [await outputs(sharded), await outputs(single)];
      assert.deepEqual(Object.keys(fromShards), Object.keys(fromSingle));
      for (const name of Object.keys(fromSingle)) {
        const [a, b] = [fromShards[name]!, fromSingle[name]!];
        assert.ok(a.length > 0, `${name} is empty`);
        assert.deepEqual(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength), `${name} differs`);
      }
    });
  }
});
