import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLIP_VIT_B16_CONFIG,
  SD15_SCHEDULER_CONFIG,
  SD15_TEXT_ENCODER_CONFIG,
  SD15_VAE_CONFIG,
} from '../../../scripts/bench-pipeline-models';
import {
  parseAutoencoderKLConfig,
  parseClipModelConfig,
  parseClipTextConfig,
  parseDdimSchedulerConfig,
} from '../../../src/sidecar/models/config';
import { SD15_UNET_CONFIG, unetParameterSpecs } from '../../../src/sidecar/models/unet/random-weights';
import { clipModelSpecs, clipTextSpecs } from './clip/random-clip';
import { vaeCheckpointSpecs } from './vae/random-vae';

const count = (specs: readonly { shape: readonly number[] }[]): number =>
  specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);

// The published parameter counts of the real checkpoints: the generated folders have the same architecture.
test('the benchmark pipeline configs imply the real models\' parameter counts', () => {
  assert.equal(count(unetParameterSpecs(SD15_UNET_CONFIG)), 859_520_964);
  assert.equal(count(vaeCheckpointSpecs(parseAutoencoderKLConfig(SD15_VAE_CONFIG))), 83_653_863);
  assert.equal(count(clipTextSpecs(parseClipTextConfig(SD15_TEXT_ENCODER_CONFIG))), 123_060_480);
  // CLIPModel ViT-B/16 without its scalar logit_scale, which the pipeline does not read.
  assert.equal(count(clipModelSpecs(parseClipModelConfig(CLIP_VIT_B16_CONFIG))), 149_620_736);
});

test('the benchmark scheduler config reads as SD-1.5\'s schedule', () => {
  const scheduler = parseDdimSchedulerConfig(SD15_SCHEDULER_CONFIG);
  assert.equal(scheduler.numTrainTimesteps, 1000);
  assert.equal(scheduler.betaSchedule, 'scaled_linear');
  assert.equal(scheduler.stepsOffset, 1);
});
