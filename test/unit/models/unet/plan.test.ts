import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ModelConfigError, parseUNet2DConditionConfig } from '../../../../src/sidecar/models/config';
import { featureNames, featureShapes, loraTargets, planUNet, transformerBlockSites } from '../../../../src/sidecar/models/unet/plan';
import { BENCH_UNET_CONFIGS, unetParameterSpecs } from '../../../../src/sidecar/models/unet/random-weights';
import { readGoldenIndex } from '../../../conformance/golden';
import { FIXTURES } from '../../../support/golden-case';

const tinyConfigJson = (): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(FIXTURES, 'tiny-sd15', 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
const count = (specs: { shape: readonly number[] }[]): number => specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

describe('UNet plan', () => {
  it('has SD-1.5 parameter count, 16 transformer blocks and 128 LoRA targets for the SD-1.5 config', () => {
    const plan = planUNet(parseUNet2DConditionConfig(BENCH_UNET_CONFIGS.full));
    assert.equal(plan.transformerBlocks, 16);
    assert.equal(plan.downscale, 8);
    assert.equal(loraTargets(plan).length, 128);
    // The published size of SD-1.5's UNet2DConditionModel.
    assert.equal(count(unetParameterSpecs(BENCH_UNET_CONFIGS.full)), 859_520_964);
  });

  it('gives the quarter-width benchmark model about 57 M parameters', () => {
    const n = count(unetParameterSpecs(BENCH_UNET_CONFIGS.quarter));
    assert.ok(n > 57e6 && n < 58e6, `${n} parameters`);
  });

  it('numbers transformer blocks in execution order: up_blocks[2] is 10–12, up_blocks[3] is 13–15', () => {
    const sites = transformerBlockSites(planUNet(parseUNet2DConditionConfig(tinyConfigJson())));
    assert.equal(sites.length, 16);
    assert.deepEqual(
      sites.filter((s) => s.path.startsWith('up_blocks.2.')).map((s) => s.index),
      [10, 11, 12],
    );
    assert.equal(sites[6]!.path, 'mid_block.attentions.0.transformer_blocks.0');
    assert.equal(sites[15]!.path, 'up_blocks.3.attentions.2.transformer_blocks.0');
  });

  it('lists exactly the adapters of the golden LoRA case, with their sizes', async () => {
    const plan = planUNet(parseUNet2DConditionConfig(tinyConfigJson()));
    const targets = loraTargets(plan);
    const entry = (await readGoldenIndex(FIXTURES)).cases.find((c) => c.name === 'unet_lora')!;
    const golden = entry.settings.adapters as string[];
    assert.deepEqual(targets.map((t) => t.module).sort(), [...golden].sort());
    const toK = targets.find((t) => t.module === 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k')!;
    assert.deepEqual([toK.inFeatures, toK.outFeatures], [16, 16]);
  });

  it('predicts the DragDiffusion feature shapes of SD-1.5 at a 64×64 latent', () => {
    const plan = planUNet(parseUNet2DConditionConfig(BENCH_UNET_CONFIGS.full));
    assert.deepEqual(featureNames(plan), ['feat_0_mid', 'feat_1_up0', 'feat_2_up1', 'feat_3_up2', 'feat_4_up3']);
    assert.deepEqual(featureShapes(plan, 1, 64, 64), {
      feat_0_mid: [1, 1280, 8, 8],
      feat_1_up0: [1, 1280, 16, 16],
      feat_2_up1: [1, 1280, 32, 32],
      feat_3_up2: [1, 640, 64, 64],
      feat_4_up3: [1, 320, 64, 64],
    });
  });

  it('rejects configs outside the SD-1.x architecture with the key named', () => {
    const withKey = (key: string, value: unknown) => () => planUNet(parseUNet2DConditionConfig({ ...tinyConfigJson(), [key]: value }));
    assert.throws(withKey('class_embed_type', 'timestep'), (e: unknown) => e instanceof ModelConfigError && /class_embed_type/.test(e.message));
    assert.throws(withKey('resnet_time_scale_shift', 'scale_shift'), /resnet_time_scale_shift/);
    assert.throws(withKey('up_block_types', ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'AttnUpBlock2D']), /AttnUpBlock2D/);
  });
});
