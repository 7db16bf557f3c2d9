// A single-file SD-1.5 checkpoint in the original (LDM) layout computes what the diffusers folder it was made from
// computes (same bytes out, fp32 and fp16), its configs are inferred from its tensors, and pickles are refused.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mapLdmCheckpoint } from '../../../src/sidecar/models/checkpoint/ldm-layout';
import { ModelLayoutError } from '../../../src/sidecar/models/checkpoint/layout-error';
import { withSafetensorsFile, writeSafetensors } from '../../../src/sidecar/models/checkpoint/safetensors';
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

  it('names checkpoints of families CLIPDrag cannot run (SD-2.x, SDXL) instead of failing on their tensors', async () => {
    const zeros = (name: string, shape: number[]) => ({ name, dtype: 'F32' as const, shape, data: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) });
    const unet = [zeros('model.diffusion_model.input_blocks.0.0.weight', [4, 4, 3, 3]), zeros('model.diffusion_model.middle_block.1.proj_in.weight', [4, 4])];
    const sd2 = path.join(dir, 'sd21.safetensors');
    await writeSafetensors(sd2, [...unet, zeros('model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight', [4, 1024]), zeros('cond_stage_model.model.token_embedding.weight', [8, 4])]);
    await assert.rejects(loadSingleFileStableDiffusion(sd2), /sd21\.safetensors: is a Stable Diffusion 2\.x checkpoint \(an OpenCLIP ViT-H text encoder.*which CLIPDrag cannot run: it runs SD-1\.x models/);
    const sd2UnetOnly = path.join(dir, 'sd2-unet.safetensors');
    await writeSafetensors(sd2UnetOnly, [...unet, zeros('model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight', [4, 1024])]);
    await assert.rejects(loadSingleFileStableDiffusion(sd2UnetOnly), /has an SD-2-style UNet \(1024-wide cross-attention\)/);
    const sdxl = path.join(dir, 'sdxl.safetensors');
    await writeSafetensors(sdxl, [...unet, zeros('conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight', [8, 4])]);
    await assert.rejects(loadSingleFileStableDiffusion(sdxl), /is a Stable Diffusion XL checkpoint/);
  });

  it('uses a config folder next to the checkpoint, a given one before it, and refuses a given folder without configs', async () => {
    const checkpoint = path.join(dir, 'named.safetensors');
    await fs.copyFile(CHECKPOINT, checkpoint);
    await assert.rejects(loadSingleFileStableDiffusion(checkpoint), /not divisible by norm_num_groups 32.*--model-config <folder>/);
    await fs.mkdir(path.join(dir, 'named', 'unet'), { recursive: true });
    await fs.mkdir(path.join(dir, 'named', 'vae'), { recursive: true });
    await fs.mkdir(path.join(dir, 'named', 'text_encoder'), { recursive: true });
    // What the tensors cannot tell (heads, norm groups), and sizes they agree with, per block or for all blocks at once.
    await fs.writeFile(path.join(dir, 'named', 'unet', 'config.json'), JSON.stringify({ attention_head_dim: 4, norm_num_groups: 8, transformer_layers_per_block: [1, 1, 1, 1], cross_attention_dim: 16 }));
    await fs.writeFile(path.join(dir, 'named', 'vae', 'config.json'), JSON.stringify({ norm_num_groups: 8 }));
    await fs.writeFile(path.join(dir, 'named', 'text_encoder', 'config.json'), JSON.stringify({ num_attention_heads: 4 }));
    const sibling = await loadSingleFileStableDiffusion(checkpoint);
    assert.equal(sibling.model.unet.normNumGroups, 8);
    assert.equal(sibling.model.textEncoder.numAttentionHeads, 4);
    assert.equal(sibling.model.layout.unet.configPath, path.join(dir, 'named', 'unet', 'config.json'));
    assert.match(sibling.configSource, /unet, vae, text_encoder from .*named, the rest inferred from its tensors\.$/);
    const given = await loadSingleFileStableDiffusion(checkpoint, { configFolder: TINY_SD });
    assert.equal(given.model.layout.unet.configPath, path.join(TINY_SD, 'unet', 'config.json'));
    await assert.rejects(loadSingleFileStableDiffusion(checkpoint, { configFolder: path.join(dir, 'tokenizer') }), /has none of unet\/config\.json/);
  });

  it('refuses pickle checkpoints unopened, saying why and what to use instead, and files of another layout', async () => {
    const pickle = path.join(dir, 'v1-5-pruned.ckpt');
    await fs.writeFile(pickle, 'not opened');
    await assert.rejects(loadSingleFileStableDiffusion(pickle), (e: unknown) => e instanceof ModelLayoutError && /PyTorch pickle checkpoint.*unpickling can run any code.*Use the \.safetensors version/.test(e.message));
    const diffusersUnet = path.join(TINY_SD, 'unet', 'diffusion_pytorch_model.safetensors');
    await assert.rejects(loadSingleFileStableDiffusion(diffusersUnet), /is not a Stable Diffusion checkpoint in the original layout/);
  });
});
