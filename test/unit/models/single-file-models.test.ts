// A single-file SD-1.5 checkpoint in the original (LDM) layout computes what the diffusers folder it was made from
// computes (same bytes out, fp32 and fp16), its configs are inferred from its tensors, and pickles are refused.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mapLdmCheckpoint } from '../../../src/sidecar/models/checkpoint/ldm-layout';
import { ModelLayoutError } from '../../../src/sidecar/models/checkpoint/layout-error';
import { withSafetensorsFile } from '../../../src/sidecar/models/checkpoint/safetensors';
import { inferConfigs, loadSingleFileStableDiffusion } from '../../../src/sidecar/models/checkpoint/single-file';
import { openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { modelOutputs } from '../../support/model-outputs';
import { tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const CHECKPOINT = path.resolve(__dirname, '..', '..', 'fixtures', 'single-file', 'tiny-sd15-ldm.safetensors');

describe('single-file SD-1.5 checkpoints (tiny fixture, CPU)', () => {
  let dir: string;
  let tokenizerFolder: string;

  before(async () => {
    dir = await tempDir('single-file');
    tokenizerFolder = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  for (const precision of ['fp32', 'fp16'] as const) {
    it(`${precision}: UNet, VAE and text encoder outputs equal the diffusers folder's, bit for bit`, async () => {
      const cacheDir = path.join(dir, `cache-${precision}`);
      const common = { clipFolder: TINY_CLIP, tokenizerFolder, precision, cacheDir };
      // The tiny model's attention heads and norm groups are not SD-1.5's: its configs are given, as diffusers' config=.
      const single = await openPipelineModels({ ...common, stableDiffusionFolder: CHECKPOINT, stableDiffusionConfigFolder: TINY_SD });
      const folder = await openPipelineModels({ ...common, stableDiffusionFolder: TINY_SD });
      assert.deepEqual(single.weightFiles.stableDiffusion, [CHECKPOINT], 'the recipe records the one file');
      assert.equal(single.unet.weights.dtype, precision === 'fp16' ? 'float16' : 'float32');
      const [fromFile, fromFolder] = [await modelOutputs(single), await modelOutputs(folder)];
      assert.deepEqual(Object.keys(fromFile), Object.keys(fromFolder));
      for (const [name, values] of Object.entries(fromFolder)) assert.deepEqual(fromFile[name], values, name);
    });
  }

  it('infers every size the tensors determine, as the folder\'s configs state them', async () => {
    const shapes = await withSafetensorsFile(CHECKPOINT, async (file) => new Map(file.tensors().map((t) => [t.name, t.shape] as const)));
    const inferred = inferConfigs(mapLdmCheckpoint(CHECKPOINT, shapes), CHECKPOINT);
    for (const [component, config] of Object.entries(inferred)) {
      const folderConfig = JSON.parse(await fs.readFile(path.join(TINY_SD, component, 'config.json'), 'utf8')) as Record<string, unknown>;
      for (const [key, value] of Object.entries(config)) {
        // What shapes cannot tell (text attention heads) is SD-1.5's rule, not the tiny model's.
        if (key === 'num_attention_heads' || key === 'sample_size') continue;
        assert.deepEqual(value, folderConfig[key], `${component}.${key}`);
      }
    }
  });

  it('refuses pickle checkpoints unopened, saying why and what to use instead, and files of another layout', async () => {
    const pickle = path.join(dir, 'v1-5-pruned.ckpt');
    await fs.writeFile(pickle, 'not opened');
    await assert.rejects(loadSingleFileStableDiffusion(pickle), (e: unknown) => e instanceof ModelLayoutError && /PyTorch pickle checkpoint.*unpickling can run any code.*Use the \.safetensors version/.test(e.message));
    const diffusersUnet = path.join(TINY_SD, 'unet', 'diffusion_pytorch_model.safetensors');
    await assert.rejects(loadSingleFileStableDiffusion(diffusersUnet), /is not a Stable Diffusion checkpoint in the original layout/);
  });
});
