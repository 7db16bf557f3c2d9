import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { SD15_DRAG_SCHEDULER_CONFIG, type DdimSchedulerConfig } from '../../../src/sidecar/models/config';
import {
  computeBetas,
  createDdimSchedule,
  ddimTimesteps,
  dragStep,
  dragStepCoefficients,
  inversionPlan,
  inversionStep,
  schedulerStep,
  schedulerStepCoefficients,
} from '../../../src/sidecar/pipeline/diffusion/ddim';
import { GoldenTensors } from '../../conformance/golden';

const GOLDEN_DDIM = path.resolve(__dirname, '../../fixtures/golden/ddim.safetensors');
const sd15 = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50);

function config(overrides: Partial<DdimSchedulerConfig>): DdimSchedulerConfig {
  return { ...SD15_DRAG_SCHEDULER_CONFIG, ...overrides };
}

test('SD-1.5 schedule tables equal the reference exactly', async () => {
  const golden = await GoldenTensors.open(GOLDEN_DDIM);
  try {
    assert.deepEqual(sd15.alphasCumprod, await golden.float32('alphas_cumprod'));
    assert.deepEqual(sd15.timesteps, [...(await golden.int64('timesteps'))].map(Number));
    assert.equal(sd15.timesteps[0], 981);
    assert.equal(sd15.timesteps.at(-1), 1);
    assert.equal(sd15.finalAlphaCumprod, sd15.alphasCumprod[0]);
    assert.equal(inversionPlan(sd15, 35).tStar, Number((await golden.int64('t_inv'))[0]));
  } finally {
    await golden.close();
  }
});

test('single steps reproduce the reference tensors bit for bit', async () => {
  const golden = await GoldenTensors.open(GOLDEN_DDIM);
  try {
    for (const t of [681, 1]) {
      const eps = await golden.float32(`step_t${t}_eps`);
      const x = await golden.float32(`step_t${t}_x`);
      const drag = dragStep(sd15, eps, t, x);
      assert.deepEqual(drag.sample, await golden.float32(`step_t${t}_x_prev`));
      assert.deepEqual(drag.predX0, await golden.float32(`step_t${t}_pred_x0`));
      const inv = inversionStep(sd15, eps, t, x);
      assert.deepEqual(inv.sample, await golden.float32(`inv_step_t${t}_x_next`));
      assert.deepEqual(inv.predX0, await golden.float32(`inv_step_t${t}_pred_x0`));
      assert.deepEqual(schedulerStep(sd15, eps, t, x).sample, await golden.float32(`scheduler_step_t${t}`));
    }
  } finally {
    await golden.close();
  }
});

test('inversion plan: ascending to t*, denoising back down', () => {
  const plan = inversionPlan(sd15, 35);
  assert.equal(plan.tStar, 681);
  assert.deepEqual(plan.inversion.slice(0, 3), [1, 21, 41]);
  assert.equal(plan.inversion.at(-1), 681);
  assert.deepEqual(plan.denoising, [...plan.inversion].reverse());
  assert.equal(plan.denoising.length, 35);
  assert.throws(() => inversionPlan(sd15, 51), /1\.\.50/);
});

test('timestep spacings follow diffusers (numpy rounding)', () => {
  assert.deepEqual(ddimTimesteps(config({ timestepSpacing: 'leading' }), 7), [853, 711, 569, 427, 285, 143, 1]);
  assert.deepEqual(ddimTimesteps(config({ timestepSpacing: 'trailing' }), 7), [999, 856, 713, 570, 428, 285, 142]);
  assert.deepEqual(ddimTimesteps(config({ timestepSpacing: 'linspace' }), 7), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(ddimTimesteps(config({ timestepSpacing: 'trailing' }), 50).slice(0, 3), [999, 979, 959]);
  assert.deepEqual(ddimTimesteps(config({ timestepSpacing: 'linspace' }), 50).slice(0, 4), [999, 979, 958, 938]);
  assert.throws(() => ddimTimesteps(SD15_DRAG_SCHEDULER_CONFIG, 0), /num_inference_steps/);
});

test('beta schedules: linear and cosine endpoints, trained betas', () => {
  const linear = computeBetas(config({ betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 }));
  assert.equal(linear[0], Math.fround(0.0001));
  assert.equal(linear[999], Math.fround(0.02));
  const cosine = computeBetas(config({ betaSchedule: 'squaredcos_cap_v2' }));
  assert.equal(cosine[999], Math.fround(0.999));
  assert.ok(cosine[0]! > 0 && cosine[0]! < 1e-4);
  assert.deepEqual([...computeBetas(config({ numTrainTimesteps: 2, trainedBetas: [0.5, 0.25] }))], [0.5, 0.25]);
});

test('the drag step and the scheduler differ only where t_prev is exactly 0', () => {
  // With steps_offset 0 the schedule reaches t=20 -> t_prev=0; with set_alpha_to_one the final alpha is 1.
  const s = createDdimSchedule(config({ stepsOffset: 0, setAlphaToOne: true }), 50);
  assert.equal(s.finalAlphaCumprod, 1);
  assert.equal(schedulerStepCoefficients(s, 20).sqrtAlphaTarget, Math.fround(Math.sqrt(s.alphasCumprod[0]!)));
  assert.equal(dragStepCoefficients(s, 20).sqrtAlphaTarget, 1);
  assert.equal(dragStepCoefficients(s, 40).sqrtAlphaTarget, schedulerStepCoefficients(s, 40).sqrtAlphaTarget);
});

test('v-prediction and sample prediction agree with the epsilon form', () => {
  const t = 501;
  const a = sd15.alphasCumprod[t]!;
  const x0 = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
  const eps = Float32Array.from({ length: 64 }, (_, i) => Math.cos(3 * i));
  const xt = x0.map((v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i]!);
  const vel = x0.map((v, i) => Math.sqrt(a) * eps[i]! - Math.sqrt(1 - a) * v);
  const viaEps = schedulerStep(sd15, eps, t, xt);
  for (const [predictionType, output] of [['v_prediction', vel], ['sample', x0]] as const) {
    const s = createDdimSchedule(config({ predictionType }), 50);
    const r = schedulerStep(s, output, t, xt);
    for (let i = 0; i < 64; i++) {
      assert.ok(Math.abs(r.predX0[i]! - x0[i]!) < 1e-5, `${predictionType} x0[${i}]`);
      assert.ok(Math.abs(r.sample[i]! - viaEps.sample[i]!) < 1e-5, `${predictionType} sample[${i}]`);
    }
  }
  const clipped = schedulerStep(createDdimSchedule(config({ clipSample: true, clipSampleRange: 0.5 }), 50), eps, t, xt);
  assert.ok(clipped.predX0.every((v) => Math.abs(v) <= 0.5));
});

test('invalid inputs are rejected with clear messages', () => {
  const x = new Float32Array(4);
  assert.throws(() => dragStep(sd15, new Float32Array(3), 681, x), /model output has 3 values, latent has 4/);
  assert.throws(() => dragStep(sd15, x, 1000, x), /timestep 1000 is outside 0\.\.999/);
  assert.throws(() => createDdimSchedule(config({ rescaleBetasZeroSnr: true }), 50), /rescale_betas_zero_snr/);
});
