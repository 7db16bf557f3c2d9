import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { vjp } from '../../../../src/sidecar/engine/autodiff';
import { Graph } from '../../../../src/sidecar/engine/graph';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { parseAutoencoderKLConfig, type AutoencoderKLConfig } from '../../../../src/sidecar/models/config';
import {
  assertVaePartBound,
  VAE_DECODER_PREFIXES,
  VAE_ENCODER_PREFIXES,
  vaeDecode,
  vaeDecodeImage,
  vaeDecoderBlockScopes,
  vaeEncode,
  vaeEncodeLatents,
  type VaeModel,
} from '../../../../src/sidecar/models/vae/autoencoder-kl';
import { CheckpointKeyError, CheckpointWeights } from '../../../../src/sidecar/models/weights';
import { FIXTURES, GoldenCase, relativeL2 } from '../../../support/golden-case';
import { randomFloat32, withTempDir, writeRandomCheckpoint } from '../../../support/random-checkpoint';
import { runGraph } from '../../../support/run-graph';
import { vaeCheckpointSpecs } from './random-vae';

const VAE_DIR = path.join(FIXTURES, 'tiny-sd15', 'vae');
const VAE_WEIGHTS = path.join(VAE_DIR, 'diffusion_pytorch_model.safetensors');
const tinyConfig = (): AutoencoderKLConfig => parseAutoencoderKLConfig(JSON.parse(readFileSync(path.join(VAE_DIR, 'config.json'), 'utf8')));

/** Encodes `image` and decodes `z` with one graph; returns (mean, logvar, decoded). */
async function encodeDecode(model: VaeModel, image: Float32Array, imageShape: number[], z: Float32Array, zShape: number[]) {
  const graph = new Graph('vae');
  const posterior = vaeEncode(model, graph.input('image', 'float32', imageShape));
  graph.output('mean', posterior.mean);
  graph.output('logvar', posterior.logvar);
  graph.output('decoded', vaeDecode(model, graph.input('z', 'float32', zShape)));
  model.weights.assertAllBound(graph);
  const out = await runGraph(graph, { image, z });
  return { graph, mean: out.mean as Float32Array, logvar: out.logvar as Float32Array, decoded: out.decoded as Float32Array };
}

/** Copies the tiny VAE checkpoint through `rewrite` (which may rename, reshape, drop or add tensors). */
async function rewrittenCheckpoint(file: string, rewrite: (name: string, shape: readonly number[], data: Float32Array) => TensorToWrite[]) {
  const source = await SafetensorsFile.open(VAE_WEIGHTS);
  try {
    const tensors: TensorToWrite[] = [];
    for (const info of source.tensors()) tensors.push(...rewrite(info.name, info.shape, await source.readFloat32(info.name)));
    await writeSafetensors(file, tensors);
  } finally {
    await source.close();
  }
}

describe('AutoencoderKL', () => {
  it('reproduces the golden encode mean and decode output of the tiny VAE', async () => {
    const golden = await GoldenCase.open('vae');
    try {
      const model = { config: tinyConfig(), weights: await CheckpointWeights.open(VAE_WEIGHTS) };
      const out = await encodeDecode(model, await golden.float32('image'), [1, 3, 128, 128], await golden.float32('z'), [1, 4, 16, 16]);
      await golden.assertOutput('latent_mean', out.mean);
      await golden.assertOutput('decoded', out.decoded);
      assert.ok(out.logvar.every((v) => v >= -30 && v <= 20), 'logvar is clamped to [-30, 20]');
    } finally {
      await golden.close();
    }
  });

  it('reproduces the golden gradient d(Σ decoded·R)/dz through the decoder, with and without recomputed blocks', async () => {
    const golden = await GoldenCase.open('vae');
    try {
      const config = tinyConfig();
      const model = { config, weights: await CheckpointWeights.open(VAE_WEIGHTS) };
      const scopes = vaeDecoderBlockScopes(config);
      assert.equal(scopes.length, 2 + 1 + 4 * (config.layersPerBlock + 1) + 3);
      for (const recompute of [undefined, { scopes }]) {
        const graph = new Graph('vae_vjp');
        const z = graph.input('z', 'float32', [1, 4, 16, 16]);
        const decoded = vaeDecode(model, z);
        const cotangent = graph.input('R_img', 'float32', [1, 3, 128, 128]);
        const [gradZ] = vjp(graph, [{ value: decoded, cotangent }], [z], recompute ? { recompute } : {});
        graph.output('grad_z', gradZ!);
        if (recompute) assert.ok(graph.nodes.some((n) => n.scope.startsWith(`recompute.decoder.up_blocks.3.resnets.${config.layersPerBlock}`)));
        const out = await runGraph(graph, { z: await golden.float32('z'), R_img: await golden.float32('R_img') });
        await golden.assertOutput('grad_z', out.grad_z as Float32Array);
      }
    } finally {
      await golden.close();
    }
  });

  it('scales latents as SD pipelines do (golden ddim z0 and clipdrag_step pred_image)', async () => {
    const model = { config: tinyConfig(), weights: await CheckpointWeights.open(VAE_WEIGHTS) };
    const ddim = await GoldenCase.open('ddim');
    const step = await GoldenCase.open('clipdrag_step');
    try {
      const graph = new Graph('sd_vae');
      graph.output('z0', vaeEncodeLatents(model, graph.input('image', 'float32', [1, 3, 128, 128])));
      graph.output('pred_image', vaeDecodeImage(model, graph.input('pred_x0', 'float32', [1, 4, 16, 16])));
      const out = await runGraph(graph, { image: await ddim.float32('image'), pred_x0: await step.float32('pred_x0') });
      await ddim.assertOutput('z0', out.z0 as Float32Array);
      await step.assertOutput('pred_image', out.pred_image as Float32Array);
    } finally {
      await ddim.close();
      await step.close();
    }
  });

  it('binds the older query/key/value/proj_attn names and 1×1-kernel projections to the same graph', async () => {
    await withTempDir(async (dir) => {
      const legacy = path.join(dir, 'legacy.safetensors');
      const renames: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
      await rewrittenCheckpoint(legacy, (name, shape, data) => {
        const match = /^(.*\.attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(name);
        if (!match) return [{ name, dtype: 'F32', shape, data }];
        const [, scope, proj, kind] = match;
        // The encoder's copy also stores its projection kernels as 1×1 convolutions.
        const asKernel = kind === 'weight' && name.startsWith('encoder.');
        return [{ name: `${scope}.${renames[proj!]}.${kind}`, dtype: 'F32', shape: asKernel ? [...shape, 1, 1] : shape, data }];
      });
      const image = randomFloat32(3 * 32 * 32, 1, 0.5);
      const z = randomFloat32(4 * 4 * 4, 2);
      const config = tinyConfig();
      const current = await encodeDecode({ config, weights: await CheckpointWeights.open(VAE_WEIGHTS) }, image, [1, 3, 32, 32], z, [1, 4, 4, 4]);
      const old = await encodeDecode({ config, weights: await CheckpointWeights.open(legacy) }, image, [1, 3, 32, 32], z, [1, 4, 4, 4]);
      assert.ok(old.graph.weights.some((w) => w.name === 'decoder.mid_block.attentions.0.proj_attn.weight'));
      assert.ok(relativeL2(old.mean, current.mean) < 1e-6);
      assert.ok(relativeL2(old.decoded, current.decoded) < 1e-6);
    });
  });

  it('names the file and the keys when checkpoint tensors are missing or left over', async () => {
    await withTempDir(async (dir) => {
      const broken = path.join(dir, 'broken.safetensors');
      await rewrittenCheckpoint(broken, (name, shape, data) => {
        if (name === 'decoder.conv_out.bias') return [];
        const copy: TensorToWrite[] = [{ name, dtype: 'F32', shape, data }];
        if (name === 'encoder.conv_in.bias') copy.push({ name: 'encoder.down_blocks.0.extra.bias', dtype: 'F32', shape, data });
        return copy;
      });
      const model = { config: tinyConfig(), weights: await CheckpointWeights.open(broken) };
      const decoder = new Graph('decoder');
      assert.throws(
        () => vaeDecode(model, decoder.input('z', 'float32', [1, 4, 4, 4])),
        (e: Error) => e instanceof CheckpointKeyError && e.message.includes(broken) && e.message.includes('decoder.conv_out.bias'),
      );
      const encoder = new Graph('encoder');
      vaeEncode(model, encoder.input('image', 'float32', [1, 3, 32, 32]));
      assert.throws(
        () => assertVaePartBound(model, encoder, VAE_ENCODER_PREFIXES),
        (e: Error) => e instanceof CheckpointKeyError && e.message.includes(broken) && e.message.includes('encoder.down_blocks.0.extra.bias'),
      );
    });
  });

  it('checks its input shapes and block types against the config', async () => {
    const model = { config: tinyConfig(), weights: await CheckpointWeights.open(VAE_WEIGHTS) };
    const graph = new Graph('bad');
    assert.throws(() => vaeEncode(model, graph.input('odd', 'float32', [1, 3, 60, 64])), /multiples of 8/);
    assert.throws(() => vaeDecode(model, graph.input('wide', 'float32', [1, 8, 4, 4])), /latent \[B, 4, h, w\]/);
    const other = { ...model, config: { ...model.config, upBlockTypes: ['UpDecoderBlock2D', 'AttnUpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'] } };
    assert.throws(() => vaeDecode(other, graph.input('z', 'float32', [1, 4, 4, 4])), /AttnUpDecoderBlock2D/);
  });

  it('builds from other configs (widths, groups, depth, no mid attention) and runs non-square batches per image', async () => {
    await withTempDir(async (dir) => {
      for (const [i, midAttention] of [true, false].entries()) {
        const config = parseAutoencoderKLConfig({
          _class_name: 'AutoencoderKL',
          block_out_channels: [8, 12, 24],
          down_block_types: Array(3).fill('DownEncoderBlock2D'),
          up_block_types: Array(3).fill('UpDecoderBlock2D'),
          layers_per_block: 2,
          norm_num_groups: 4,
          latent_channels: 3,
          in_channels: 3,
          out_channels: 2,
          mid_block_add_attention: midAttention,
        });
        const file = path.join(dir, `vae${i}.safetensors`);
        await writeRandomCheckpoint(file, vaeCheckpointSpecs(config), 7 + i);
        const model = { config, weights: await CheckpointWeights.open(file) };
        // Two different non-square images (16×24, factor 4) and latents (4×6), as one batch of 2.
        const image = randomFloat32(2 * 3 * 16 * 24, 11, 0.5);
        const z = randomFloat32(2 * 3 * 4 * 6, 12);
        const both = await encodeDecode(model, image, [2, 3, 16, 24], z, [2, 3, 4, 6]);
        assert.equal(both.mean.length, 2 * 3 * 4 * 6);
        assert.equal(both.decoded.length, 2 * 2 * 16 * 24);
        assert.ok([...both.mean, ...both.decoded].every(Number.isFinite));
        // Each batch row depends on its own image only (catches a reshape that mixes batch and space).
        const second = await encodeDecode(model, image.subarray(3 * 16 * 24), [1, 3, 16, 24], z.subarray(3 * 4 * 6), [1, 3, 4, 6]);
        assert.ok(relativeL2(both.mean.subarray(3 * 4 * 6), second.mean) < 1e-5);
        assert.ok(relativeL2(both.decoded.subarray(2 * 16 * 24), second.decoded) < 1e-5);
        assert.ok(relativeL2(both.mean.subarray(0, 3 * 4 * 6), second.mean) > 1e-2, 'different images give different latents');
        assertVaePartBound(model, both.graph, [...VAE_ENCODER_PREFIXES, ...VAE_DECODER_PREFIXES]);
      }
    });
  });
});
