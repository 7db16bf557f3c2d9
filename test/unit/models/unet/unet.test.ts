import assert from 'node:assert/strict';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { vjp } from '../../../../src/sidecar/engine/autodiff';
import { float32ToFloat16Bits } from '../../../../src/sidecar/engine/float16';
import type { OpType } from '../../../../src/sidecar/engine/op-attrs';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { loadUNet } from '../../../../src/sidecar/models/unet/load';
import { writeRandomUNet } from '../../../../src/sidecar/models/unet/random-weights';
import { unetAttentionSegment, unetBlockSegment } from '../../../../src/sidecar/models/unet/remat';
import { featureShapes } from '../../../../src/sidecar/models/unet/plan';
import { buildUNetGraph, type UNetGraphSpec, type UNetModel } from '../../../../src/sidecar/models/unet/unet';
import { CheckpointKeyError } from '../../../../src/sidecar/models/weights';
import { FIXTURES, GoldenCase, relativeL2 } from '../../../support/golden-case';
import { randomFloat32, withTempDir } from '../../../support/random-checkpoint';
import { runGraph } from '../../../support/run-graph';

const TINY_UNET = path.join(FIXTURES, 'tiny-sd15', 'unet');
const TINY_WEIGHTS = path.join(TINY_UNET, 'diffusion_pytorch_model.safetensors');

/** Copies the tiny UNet into `dir` (diffusers layout), passing every tensor through `rewrite`. */
async function copyTinyUNet(dir: string, file: string, rewrite: (name: string, shape: readonly number[], data: Float32Array) => TensorToWrite[]): Promise<void> {
  await copyFile(path.join(TINY_UNET, 'config.json'), path.join(dir, 'config.json'));
  const source = await SafetensorsFile.open(TINY_WEIGHTS);
  try {
    const tensors: TensorToWrite[] = [];
    for (const info of source.tensors()) tensors.push(...rewrite(info.name, info.shape, await source.readFloat32(info.name)));
    await writeSafetensors(path.join(dir, file), tensors);
  } finally {
    await source.close();
  }
}

async function runUNet(unet: UNetModel, spec: UNetGraphSpec, feeds: Record<string, Float32Array>) {
  const { graph, forward } = buildUNetGraph(unet, spec);
  const feedsWithLora = { ...feeds };
  for (const a of forward.lora) {
    feedsWithLora[a.down.name] ??= randomFloat32(a.down.size, a.down.size, 0.1);
    feedsWithLora[a.up.name] ??= new Float32Array(a.up.size);
  }
  return { outputs: (await runGraph(graph, feedsWithLora)) as Record<string, Float32Array>, forward };
}

describe('UNet from a diffusers folder', () => {
  it('loads the fp16 variant (float16 weights cast in the graph) and matches the golden forward within fp16 precision', async () => {
    await withTempDir(async (dir) => {
      await copyTinyUNet(dir, 'diffusion_pytorch_model.fp16.safetensors', (name, shape, data) => [
        { name, dtype: 'F16', shape, data: float32ToFloat16Bits(data) },
      ]);
      const unet = await loadUNet(dir, { variant: 'fp16' });
      assert.equal(unet.files.variant, 'fp16');
      const golden = await GoldenCase.open('unet_forward');
      try {
        const { graph } = buildUNetGraph(unet, { batch: 1, height: 16, width: 16, timestep: 'batch', outputs: ['eps', 'feat_3_up2'] });
        assert.ok(graph.weights.length > 0 && graph.weights.every((w) => w.dtype === 'float16'), 'weights stay float16 in the graph');
        const out = await runGraph(graph, {
          sample: await golden.float32('sample'),
          timestep: Float32Array.from(await golden.int64('timestep'), Number),
          encoder_hidden_states: await golden.float32('encoder_hidden_states'),
        });
        for (const name of ['eps', 'feat_3_up2']) {
          const error = relativeL2(out[name] as Float32Array, await golden.float32(name));
          // Weights rounded to 11 significant bits: errors of a few 1e-4 through the network.
          assert.ok(error < 5e-3, `${name}: relative error ${error} with fp16 weights`);
          assert.ok(error > 1e-6, `${name}: an fp16 run should differ measurably from fp32 (${error})`);
        }
      } finally {
        await golden.close();
      }
    });
  });

  it('names the file and key of a missing, misshapen or unexpected tensor', async () => {
    await withTempDir(async (dir) => {
      const file = 'diffusion_pytorch_model.safetensors';
      await copyTinyUNet(dir, file, (name, shape, data) => (name === 'mid_block.resnets.1.conv2.bias' ? [] : [{ name, dtype: 'F32', shape, data }]));
      const missing = await loadUNet(dir);
      assert.throws(
        () => buildUNetGraph(missing, { batch: 1, height: 16, width: 16 }),
        (e: unknown) => e instanceof CheckpointKeyError && e.message.includes(path.join(dir, file)) && e.message.includes('mid_block.resnets.1.conv2.bias is missing'),
      );

      await copyTinyUNet(dir, file, (name, shape, data) =>
        name === 'conv_in.bias' ? [{ name, dtype: 'F32', shape: [1, ...shape], data }] : [{ name, dtype: 'F32', shape, data }],
      );
      const misshapen = await loadUNet(dir);
      assert.throws(() => buildUNetGraph(misshapen, { batch: 1, height: 16, width: 16 }), /conv_in\.bias has shape \[1, 16\].*expects \[16\]/);

      await copyTinyUNet(dir, file, (name, shape, data) => [
        { name, dtype: 'F32', shape, data },
        ...(name === 'conv_in.bias' ? [{ name: 'extra.adapter.weight', dtype: 'F32' as const, shape, data }] : []),
      ]);
      const extra = await loadUNet(dir);
      assert.throws(() => buildUNetGraph(extra, { batch: 1, height: 16, width: 16 }), /1 tensor\(s\) are not used.*extra\.adapter\.weight/);
    });
  });
});

describe('UNet rematerialisation policy', () => {
  it('segments each resnet and transformer, and leaves other nodes alone', () => {
    const segment = (scope: string) => unetBlockSegment({ scope });
    assert.equal(segment('down_blocks.0.resnets.1.conv1'), 'down_blocks.0.resnets.1');
    assert.equal(segment('up_blocks.2.attentions.0.transformer_blocks.0.attn1.to_q'), 'up_blocks.2.attentions.0');
    assert.equal(segment('mid_block.attentions.0.norm'), 'mid_block.attentions.0');
    assert.equal(segment('down_blocks.0.downsamplers.0.conv'), null);
    assert.equal(segment('time_embedding.linear_1'), null);
    assert.equal(segment('conv_in'), null);
  });

  it('segments the self-attention cores only', () => {
    const at = (scope: string, op: OpType) => unetAttentionSegment({ scope, op });
    assert.equal(at('up_blocks.3.attentions.1.transformer_blocks.0.attn1', 'Softmax'), 'up_blocks.3.attentions.1.transformer_blocks.0.attn1');
    assert.equal(at('up_blocks.3.attentions.1.transformer_blocks.0.attn1', 'MatMul'), 'up_blocks.3.attentions.1.transformer_blocks.0.attn1');
    assert.equal(at('up_blocks.3.attentions.1.transformer_blocks.0.attn2', 'Softmax'), null);
    assert.equal(at('up_blocks.3.attentions.1.transformer_blocks.0.attn1.to_q', 'Gemm'), null);
  });

  for (const [name, policy, minExtraNodes] of [
    ['blocks', unetBlockSegment, 500],
    ['self-attention cores', unetAttentionSegment, 30],
  ] as const) {
    it(`gives the golden d(loss)/d(sample) when ${name} are recomputed in the backward pass`, async () => {
      const golden = await GoldenCase.open('unet_vjp');
      try {
        const unet = await loadUNet(TINY_UNET);
        const build = (recompute: typeof policy | null) => {
          const { graph, inputs, forward } = buildUNetGraph(unet, { batch: 1, height: 16, width: 16, timestep: 'batch', attentionChunkBytes: 64 * 1024 });
          const feature = forward.features.feat_3_up2!;
          const seeds = [
            { value: forward.eps, cotangent: graph.input('R_eps', 'float32', forward.eps.shape) },
            { value: feature, cotangent: graph.input('R_feat', 'float32', feature.shape) },
          ];
          const [dSample] = vjp(graph, seeds, [inputs.sample], recompute ? { recompute } : {});
          graph.output('grad_sample', dSample!);
          return graph;
        };
        const graph = build(policy);
        const out = await runGraph(graph, {
          sample: await golden.float32('sample'),
          timestep: Float32Array.from(await golden.int64('timestep'), Number),
          encoder_hidden_states: await golden.float32('encoder_hidden_states'),
          R_eps: await golden.float32('R_eps'),
          R_feat: await golden.float32('R_feat'),
        });
        await golden.assertOutput('grad_sample', out.grad_sample as Float32Array);
        // The same backward without rematerialisation has fewer nodes: the segments were really recomputed.
        const plain = build(null);
        assert.ok(graph.nodes.length > plain.nodes.length + minExtraNodes, `${graph.nodes.length} vs ${plain.nodes.length} nodes`);
      } finally {
        await golden.close();
      }
    });
  }
});

describe('UNet of another shape (3 levels, per-block heads and layers, linear projections, depth-2 transformers)', () => {
  const config = {
    _class_name: 'UNet2DConditionModel',
    block_out_channels: [24, 48, 48],
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    layers_per_block: [1, 2, 1],
    attention_head_dim: [2, 3, 4],
    transformer_layers_per_block: 2,
    norm_num_groups: 12,
    cross_attention_dim: 12,
    in_channels: 3,
    out_channels: 5,
    use_linear_projection: true,
    flip_sin_to_cos: false,
    freq_shift: 1,
  };

  async function withModel(fn: (unet: UNetModel) => Promise<void>): Promise<void> {
    await withTempDir(async (dir) => {
      await writeRandomUNet(dir, config, { seed: 3 });
      await fn(await loadUNet(dir));
    });
  }

  const feedsFor = (batch: number, h: number, w: number, seed: number) => ({
    sample: randomFloat32(batch * 3 * h * w, seed),
    timestep: Float32Array.from({ length: batch }, (_, i) => 400 + 300 * i),
    encoder_hidden_states: randomFloat32(batch * 7 * 12, seed + 1),
  });

  it('builds and runs on a non-square latent whose sizes do not halve evenly, with consistent shapes', async () => {
    await withModel(async (unet) => {
      assert.equal(unet.plan.transformerBlocks, 2 * (1 + 2) + 2 + 2 * (3 + 2));
      const outputs = ['eps', 'feat_0_mid', 'feat_1_up0', 'feat_2_up1', 'feat_3_up2'];
      const spec = { batch: 2, height: 10, width: 7, tokens: 7, timestep: 'batch' as const, outputs };
      const { outputs: out } = await runUNet(unet, spec, feedsFor(2, 10, 7, 1));
      const { graph } = buildUNetGraph(unet, spec);
      const shapes = Object.fromEntries(graph.outputs.map((o) => [o.name, [...o.value.shape]]));
      assert.deepEqual(shapes.eps, [2, 5, 10, 7]);
      const expected = featureShapes(unet.plan, 2, 10, 7);
      for (const name of outputs.slice(1)) assert.deepEqual(shapes[name], expected[name], name);
      assert.deepEqual(expected.feat_0_mid, [2, 48, 3, 2]);
      for (const name of outputs) assert.ok(out[name]!.every(Number.isFinite), `${name} is finite`);
    });
  });

  it('query-chunked attention equals whole attention', async () => {
    await withModel(async (unet) => {
      const spec = { batch: 2, height: 8, width: 12, tokens: 7, timestep: 'batch' as const, outputs: ['eps', 'feat_3_up2'] };
      const feeds = feedsFor(2, 8, 12, 6);
      const whole = await runUNet(unet, { ...spec, attentionChunkBytes: 0 }, feeds);
      const chunkedSpec = { ...spec, attentionChunkBytes: 2048 };
      const chunked = await runUNet(unet, chunkedSpec, feeds);
      const { graph } = buildUNetGraph(unet, chunkedSpec);
      assert.ok(graph.nodes.some((n) => n.op === 'Split' && n.scope.endsWith('.attn1')), 'self-attention ran in chunks');
      for (const name of ['eps', 'feat_3_up2']) assert.ok(relativeL2(chunked.outputs[name]!, whole.outputs[name]!) < 1e-6, name);
    });
  });

  it('a scalar timestep equals the same timestep given per row', async () => {
    await withModel(async (unet) => {
      const feeds = feedsFor(2, 8, 12, 2);
      const perRow = await runUNet(unet, { batch: 2, height: 8, width: 12, tokens: 7, timestep: 'batch' }, { ...feeds, timestep: Float32Array.of(250, 250) });
      const scalar = await runUNet(unet, { batch: 2, height: 8, width: 12, tokens: 7, timestep: 'scalar' }, { ...feeds, timestep: Float32Array.of(250) });
      assert.ok(relativeL2(scalar.outputs.eps!, perRow.outputs.eps!) < 1e-6);
      const other = await runUNet(unet, { batch: 2, height: 8, width: 12, tokens: 7, timestep: 'scalar' }, { ...feeds, timestep: Float32Array.of(900) });
      assert.ok(relativeL2(other.outputs.eps!, perRow.outputs.eps!) > 1e-3, 'the timestep matters');
    });
  });

  it('LoRA: zero up-weights leave the output unchanged; non-zero ones change it', async () => {
    await withModel(async (unet) => {
      const spec = { batch: 1, height: 8, width: 8, tokens: 7 };
      const feeds = feedsFor(1, 8, 8, 4);
      const plain = await runUNet(unet, spec, { ...feeds, timestep: Float32Array.of(500) });
      const zeroB = await runUNet(unet, { ...spec, lora: { rank: 3 } }, { ...feeds, timestep: Float32Array.of(500) });
      assert.equal(zeroB.forward.lora.length, 4 * 2 * unet.plan.transformerBlocks);
      assert.ok(relativeL2(zeroB.outputs.eps!, plain.outputs.eps!) < 1e-6);
      const withB: Record<string, Float32Array> = { ...feeds, timestep: Float32Array.of(500) };
      for (const a of zeroB.forward.lora) withB[a.up.name] = randomFloat32(a.up.size, a.up.size + 7, 0.2);
      const active = await runUNet(unet, { ...spec, lora: { rank: 3, scale: 0.5 } }, withB);
      assert.ok(relativeL2(active.outputs.eps!, plain.outputs.eps!) > 1e-4);
    });
  });

  it('mutual self-attention: source rows are unchanged, and identical pairs give the plain output', async () => {
    await withModel(async (unet) => {
      const spec = { batch: 4, height: 8, width: 8, tokens: 7, timestep: 'batch' as const };
      const masa = { ...spec, mutualSelfAttention: { startLayer: 3 } };
      const feeds = feedsFor(4, 8, 8, 5);
      const plain = await runUNet(unet, spec, feeds);
      const mutual = await runUNet(unet, masa, feeds);
      const row = (v: Float32Array, i: number) => v.subarray((i * v.length) / 4, ((i + 1) * v.length) / 4);
      for (const source of [0, 2]) assert.ok(relativeL2(row(mutual.outputs.eps!, source), row(plain.outputs.eps!, source)) < 1e-6);
      for (const edited of [1, 3]) assert.ok(relativeL2(row(mutual.outputs.eps!, edited), row(plain.outputs.eps!, edited)) > 1e-4);

      // Rows 0 and 1 identical (same latent, timestep, text): the edited row attends to itself.
      const same = { ...feeds };
      const rowSize = (v: Float32Array) => v.length / 4;
      same.sample = Float32Array.from(feeds.sample);
      same.sample.copyWithin(rowSize(same.sample), 0, rowSize(same.sample));
      same.encoder_hidden_states = Float32Array.from(feeds.encoder_hidden_states);
      same.encoder_hidden_states.copyWithin(rowSize(same.encoder_hidden_states), 0, rowSize(same.encoder_hidden_states));
      same.timestep = Float32Array.of(400, 400, 500, 600);
      const m2 = await runUNet(unet, masa, same);
      assert.ok(relativeL2(row(m2.outputs.eps!, 1), row(m2.outputs.eps!, 0)) < 1e-6);
      assert.throws(() => buildUNetGraph(unet, { ...masa, batch: 3 }), /pairs/);
      assert.throws(() => buildUNetGraph(unet, { ...spec, mutualSelfAttention: { startLayer: 99 } }), /outside 0\.\.17/);
    });
  });
});

describe('random benchmark weights', () => {
  it('are deterministic per seed and PyTorch-default-like in scale', async () => {
    await withTempDir(async (dir) => {
      const config = { block_out_channels: [16, 32], down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'], norm_num_groups: 8, attention_head_dim: 2, cross_attention_dim: 8, layers_per_block: 1 };
      const a = await writeRandomUNet(path.join(dir, 'a'), config, { seed: 1 });
      await writeRandomUNet(path.join(dir, 'b'), config, { seed: 1 });
      await writeRandomUNet(path.join(dir, 'c'), config, { seed: 2 });
      const bytes = (d: string) => readFile(path.join(dir, d, 'diffusion_pytorch_model.safetensors'));
      assert.deepEqual(await bytes('a'), await bytes('b'));
      assert.notDeepEqual(await bytes('a'), await bytes('c'));
      assert.ok(a.parameters > 0 && a.bytes > 4 * a.parameters);

      const file = await SafetensorsFile.open(path.join(dir, 'a', 'diffusion_pytorch_model.safetensors'));
      try {
        const conv = await file.readFloat32('down_blocks.0.resnets.0.conv1.weight'); // fan-in 16·3·3
        const bound = 1 / Math.sqrt(16 * 9);
        assert.ok(conv.every((v) => Math.abs(v) <= bound) && Math.max(...conv.map(Math.abs)) > 0.9 * bound);
        assert.ok((await file.readFloat32('down_blocks.0.resnets.0.norm1.weight')).every((v) => v === 1));
        assert.ok((await file.readFloat32('down_blocks.0.resnets.0.norm1.bias')).every((v) => v === 0));
      } finally {
        await file.close();
      }
    });
  });
});
