/**
 * The drag graphs on onnxruntime: tracking in the graph against the JS reference tracking (golden and
 * random inputs), the tracking → motion-supervision chain inside one run, one compiled graph reused
 * across iterations, the upsample-folded sampler against the materialised upsample, the clipdrag_step
 * golden quantities from latent-resolution features, and finite-difference checks of d loss / d F.
 * (`npm run conformance` checks the motion-supervision, patch, mask and upsample golden cases.)
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import path from 'node:path';
import { grad } from '../../../../src/sidecar/engine/autodiff';
import { Graph, type Value } from '../../../../src/sidecar/engine/graph';
import { resizeBilinear } from '../../../../src/sidecar/engine/ops';
import { STEP_INPUT, type DragGraphConfig } from '../../../../src/sidecar/pipeline/drag/drag-config';
import {
  buildDragStep,
  buildReferenceFeatures,
  maskInputs,
  outputDragStep,
  outputReferenceFeatures,
  referenceFeatureInputs,
  STEP_OUTPUT,
} from '../../../../src/sidecar/pipeline/drag/drag-graph';
import { referenceFeeds, stepFeeds, type DragPoints, type TrackingMode } from '../../../../src/sidecar/pipeline/drag/drag-plan';
import { backgroundWeights, resizeMaskNearest } from '../../../../src/sidecar/pipeline/drag/mask-term';
import { motionPatch } from '../../../../src/sidecar/pipeline/drag/patch-geometry';
import { featureGrid } from '../../../../src/sidecar/pipeline/drag/patch-sampler';
import { fastPointTracking, featureMap, pointTracking, type Point } from '../../../../src/sidecar/pipeline/drag/tracking';
import { pointsFrom, subcases } from '../../../conformance/case';
import { GoldenTensors, readGoldenIndex } from '../../../conformance/golden';
import { caseConfig, readFeaturePair, runDragStep, type FeaturePair } from '../../../support/drag-cases';
import { FIXTURES, GoldenCase } from '../../../support/golden-case';
import { gradcheck } from '../../../support/gradcheck';
import { GraphSession } from '../../../support/graph-session';
import { rng } from '../../../support/reference';

function randomMap(shape: readonly [number, number, number, number], seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * 2 - 1);
}

function jsTracking(config: DragGraphConfig, features: FeaturePair, points: DragPoints): Point[] {
  const [, c, h, w] = features.shape;
  const f0 = featureMap(features.f0, c, h, w);
  const f1 = featureMap(features.f1, c, h, w);
  return config.variant === 'clipdrag'
    ? fastPointTracking(f0, f1, points.handles, points.handlesInit, points.targets, config.trackingRadius)
    : pointTracking(f0, f1, points.handles, points.handlesInit, config.trackingRadius);
}

/** A step graph (reference + step on F0/F1 inputs at supervision resolution) in one reusable session. */
async function stepSession(config: DragGraphConfig, shape: readonly number[]): Promise<GraphSession> {
  const g = new Graph('drag-step');
  const f0 = g.input('F0', 'float32', shape);
  const f1 = g.input('F1', 'float32', shape);
  const step = buildDragStep(featureGrid(f1, config.supervision), buildReferenceFeatures(featureGrid(f0, config.supervision), config), config);
  outputDragStep(step);
  return GraphSession.create(g);
}

function handlesOf(out: Record<string, unknown>, pairs: number): Point[] {
  const h = out[STEP_OUTPUT.newHandles] as Float32Array;
  return Array.from({ length: pairs }, (_, i) => [h[2 * i]!, h[2 * i + 1]!] as const);
}

for (const name of ['fast_point_tracking', 'point_tracking'] as const) {
  test(`graph tracking reproduces every ${name} golden sub-case and the JS tracking`, async () => {
    const entry = (await readGoldenIndex(FIXTURES)).cases.find((c) => c.name === name)!;
    const golden = await GoldenTensors.open(path.join(FIXTURES, entry.file));
    try {
      const features = await readFeaturePair(golden);
      const variant = name === 'fast_point_tracking' ? 'clipdrag' : 'dragdiffusion';
      for (const sub of subcases(entry)) {
        const p = `${sub.index}.`;
        const handles = pointsFrom(await golden.float32(`${p}handle_points`));
        const points: DragPoints = {
          handles,
          handlesInit: pointsFrom(await golden.float32(`${p}handle_points_init`)),
          targets: golden.has(`${p}target_points`) ? pointsFrom(await golden.float32(`${p}target_points`)) : handles,
        };
        const config = caseConfig(variant, features.shape, handles.length, 1, sub.r_p as number);
        const run = await runDragStep(config, features, points, variant === 'clipdrag' ? 'fast' : 'plain');
        const expected = pointsFrom(await golden.float32(`${p}new_handle_points`));
        assert.deepEqual(run.newHandles, expected, `sub-case ${sub.index} (${String(sub.tag)})`);
        assert.deepEqual(jsTracking(config, features, points), expected);
      }
    } finally {
      await golden.close();
    }
  });
}

test('graph tracking agrees with the JS tracking on random maps, borders, fractional handles and near targets', async () => {
  const shape = [1, 3, 11, 14] as const;
  const next = rng(7);
  const int = (n: number) => Math.floor(next() * n);
  let compared = 0;
  for (const variant of ['clipdrag', 'dragdiffusion'] as const) {
    for (const trackingRadius of [1, 3]) {
      const config: DragGraphConfig = { variant, pairs: 3, channels: 3, motionRadius: 1, trackingRadius, supervision: [11, 14] };
      const session = await stepSession(config, shape);
      try {
        for (let trial = 0; trial < 12; trial++) {
          const features = { shape, f0: randomMap(shape, 100 + trial), f1: randomMap(shape, 200 + trial) };
          // Handles anywhere (edges included, some fractional); targets far, near (within 1) or on the handle.
          const handles = Array.from({ length: 3 }, (_, i) => [int(11) + (i === 2 ? 0.6 : 0), int(14)] as const);
          const targets = handles.map(([r, c], i) => (i === 0 ? [int(11), int(14)] : i === 1 ? [Math.trunc(r), Math.min(13, Math.trunc(c) + 1)] : [r, c]) as Point);
          const points = { handles, handlesInit: Array.from({ length: 3 }, () => [int(11), int(14)] as const), targets };
          const out = await session.run({ F0: features.f0, F1: features.f1, ...referenceFeeds(config, points.handlesInit), ...stepFeeds(config, points, variant === 'clipdrag' ? 'fast' : 'plain') });
          assert.deepEqual(handlesOf(out, 3), jsTracking(config, features, points), `${variant} r_p ${trackingRadius} trial ${trial}`);
          compared++;
        }
      } finally {
        await session.release();
      }
    }
  }
  assert.equal(compared, 48);
});

test('one compiled step graph serves every iteration: tracked handles feed back, and each loss is taken at the tracked handles', async () => {
  const shape = [1, 4, 20, 24] as const;
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 2, channels: 4, motionRadius: 1, trackingRadius: 3, supervision: [20, 24] };
  const session = await stepSession(config, shape);
  try {
    const handlesInit: Point[] = [[4, 5], [15, 18]];
    const targets: Point[] = [[14, 13], [3, 6]];
    let handles = handlesInit;
    const f0 = randomMap(shape, 1);
    for (let iteration = 0; iteration < 6; iteration++) {
      // Features drift between iterations, as the latent does.
      const f1 = randomMap(shape, 50 + iteration);
      const features = { shape, f0, f1 };
      const points = { handles, handlesInit, targets };
      const mode: TrackingMode = iteration === 0 ? 'none' : 'fast';
      const out = await session.run({ F0: f0, F1: f1, ...referenceFeeds(config, handlesInit), ...stepFeeds(config, points, mode) });
      const tracked = handlesOf(out, 2);
      assert.deepEqual(tracked, iteration === 0 ? handles : jsTracking(config, features, points), `iteration ${iteration}`);
      // The same loss as motion supervision alone at the JS-tracked handles.
      const atTracked = await session.run({ F0: f0, F1: f1, ...referenceFeeds(config, handlesInit), ...stepFeeds(config, { handles: tracked, handlesInit, targets }, 'none') });
      assert.equal((out[STEP_OUTPUT.motionLoss] as Float32Array)[0], (atTracked[STEP_OUTPUT.motionLoss] as Float32Array)[0], `iteration ${iteration}`);
      if (iteration > 0) assert.ok(tracked.some((p, i) => p[0] !== handles[i]![0] || p[1] !== handles[i]![1]), 'fast tracking moves at least one handle here');
      handles = tracked;
    }
  } finally {
    await session.release();
  }
});

test('clipdrag_step golden: tracking, motion supervision and mask term from latent-resolution features through the folded upsampling', async () => {
  const golden = await GoldenCase.open('clipdrag_step');
  try {
    const s = golden.entry.settings;
    const shape = golden.entry.outputs.F1_lat!.shape;
    const latentShape = golden.entry.outputs.x_prev!.shape;
    const handles = pointsFrom(await golden.float32('handle_points'));
    const config: DragGraphConfig = {
      variant: 'clipdrag',
      pairs: handles.length,
      channels: shape[1]!,
      motionRadius: s.r_m as number,
      trackingRadius: s.r_p as number,
      supervision: s.sup_res as [number, number],
    };
    const maskShape = golden.entry.inputs.mask!.shape;
    const interpMask = resizeMaskNearest(await golden.float32('mask'), [maskShape[2]!, maskShape[3]!], [latentShape[2]!, latentShape[3]!]);
    await golden.assertOutput('interp_mask', interpMask);

    // The pipeline's two graphs: the reference graph on F0 once, then the step graph on F1.
    const ref = new Graph('reference');
    outputReferenceFeatures(buildReferenceFeatures(featureGrid(ref.input('F0', 'float32', shape), config.supervision), config));
    const refSession = await GraphSession.create(ref);
    const points = { handles, handlesInit: pointsFrom(await golden.float32('handle_points_init')), targets: pointsFrom(await golden.float32('target_points')) };
    const f0 = await refSession.run({ F0: await golden.float32('F0_lat'), ...referenceFeeds(config, points.handlesInit) });
    await refSession.release();

    const g = new Graph('step');
    const xPrev = g.input('x_prev', 'float32', latentShape);
    const step = buildDragStep(featureGrid(g.input('F1', 'float32', shape), config.supervision), referenceFeatureInputs(g, config, 'float32'), config, {
      mask: { xPrev, inputs: maskInputs(g, latentShape, 'float32') },
    });
    outputDragStep(step);
    const session = await GraphSession.create(g);
    const out = await session.run({
      F1: await golden.float32('F1_lat'),
      x_prev: await golden.float32('x_prev'),
      [STEP_INPUT.xPrev0]: await golden.float32('x_prev_0'),
      [STEP_INPUT.backgroundWeights]: backgroundWeights(interpMask, s.lam as number),
      ...f0,
      ...stepFeeds(config, points, 'fast'),
    });
    await session.release();
    await golden.assertOutput('tracked_points', out[STEP_OUTPUT.newHandles] as Float32Array);
    await golden.assertOutput('loss_ms', out[STEP_OUTPUT.motionLoss] as Float32Array);
    await golden.assertOutput('loss_mask', out[STEP_OUTPUT.maskLoss] as Float32Array);
  } finally {
    await golden.close();
  }
});

test('the folded upsampling samples exactly what the materialised bilinear upsample holds, forward and gradient', async () => {
  const latent = [1, 5, 7, 9] as const;
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 2, channels: 5, motionRadius: 2, trackingRadius: 2, supervision: [28, 36] };
  const points = { handles: [[3, 33], [20, 10]] as Point[], handlesInit: [[4, 31], [22, 12]] as Point[], targets: [[12, 20], [14, 16]] as Point[] };
  const build = (materialise: boolean) => {
    const g = new Graph('fold');
    const f0 = g.input('F0', 'float32', latent);
    const f1 = g.input('F1', 'float32', latent);
    const grid = (x: Value) => (materialise ? featureGrid(resizeBilinear(x, config.supervision), config.supervision) : featureGrid(x, config.supervision));
    const step = buildDragStep(grid(f1), buildReferenceFeatures(grid(f0), config), config);
    outputDragStep(step);
    g.output('grad_F1', grad(step.loss, [f1])[0]!);
    return g;
  };
  const feeds = { F0: randomMap(latent, 3), F1: randomMap(latent, 4), ...referenceFeeds(config, points.handlesInit), ...stepFeeds(config, points, 'fast') };
  const [folded, materialised] = await Promise.all([build(false), build(true)].map(async (g) => {
    const session = await GraphSession.create(g);
    try {
      return await session.run(feeds);
    } finally {
      await session.release();
    }
  }));
  assert.deepEqual(folded![STEP_OUTPUT.newHandles], materialised![STEP_OUTPUT.newHandles]);
  const loss = (o: typeof folded) => (o![STEP_OUTPUT.motionLoss] as Float32Array)[0]!;
  assert.ok(Math.abs(loss(folded) - loss(materialised)) <= 1e-5 * Math.abs(loss(materialised)), `${loss(folded)} vs ${loss(materialised)}`);
  const a = folded!.grad_F1 as Float32Array;
  const b = materialised!.grad_F1 as Float32Array;
  let diff = 0;
  let norm = 0;
  b.forEach((v, i) => {
    diff += (a[i]! - v) ** 2;
    norm += v * v;
  });
  assert.ok(norm > 0 && Math.sqrt(diff / norm) < 1e-5, `gradient relative error ${Math.sqrt(diff / norm)}`);
});

test('skipped pairs add nothing: no loss, no gradient', async () => {
  const shape = [1, 2, 10, 10] as const;
  const features = { shape, f0: randomMap(shape, 5), f1: randomMap(shape, 6) };
  const config = caseConfig('clipdrag', shape, 2, 1, 2);
  const both = await runDragStep(config, features, { handles: [[3, 3], [7, 7]], handlesInit: [[3, 3], [7, 7]], targets: [[3, 4], [8, 8]] }, 'none');
  assert.equal(both.motionLoss, 0);
  assert.ok(both.gradF1.every((v) => v === 0));
  const one = await runDragStep(config, features, { handles: [[3, 3], [7, 7]], handlesInit: [[3, 3], [7, 7]], targets: [[3, 4], [2, 9]] }, 'none');
  assert.ok(one.motionLoss > 0);
  // Only the active pair's shifted patch (both bilinear taps) receives gradient.
  const { rows, cols } = motionPatch([7, 7], [2, 9], 1, 10, 10, 'clipdrag');
  const plane = 10 * 10;
  let touched = 0;
  one.gradF1.forEach((v, k) => {
    const [r, c] = [Math.floor((k % plane) / 10), k % 10];
    const inside = r >= rows.start && r <= rows.start + rows.count && c >= cols.start && c <= cols.start + cols.count;
    if (v !== 0) assert.ok(inside, `gradient at ${r},${c}`);
    if (v !== 0) touched++;
  });
  assert.ok(touched > 0);
});

/** d loss / d F1 by central differences (float64) for a fixed drag plan. */
async function checkGradient(config: DragGraphConfig, featureShape: readonly [number, number, number, number], points: DragPoints, mode: TrackingMode): Promise<void> {
  const constants = { ...referenceFeeds(config, points.handlesInit), ...stepFeeds(config, points, mode) };
  await gradcheck({
    dtype: 'float64',
    inputs: { F0: { shape: featureShape }, F1: { shape: featureShape } },
    wrt: ['F1'],
    build: ({ F0, F1 }) => {
      const reference = buildReferenceFeatures(featureGrid(F0!, config.supervision), config, constants);
      return buildDragStep(featureGrid(F1!, config.supervision), reference, config, { constants }).loss;
    },
  });
}

test('finite differences: CLIPDrag loss w.r.t. the features, L1 and border (signed mean) pairs, at supervision resolution', async () => {
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 3, channels: 3, motionRadius: 1, trackingRadius: 2, supervision: [12, 14] };
  // Pair 0 interior, pair 1 clipped at the top (shapes differ), pair 2 sampled past the bottom edge.
  const points = { handles: [[5, 6], [0, 7], [10, 3]] as Point[], handlesInit: [[4, 5], [6, 7], [10, 4]] as Point[], targets: [[9, 11], [8, 10], [11, 6]] as Point[] };
  await checkGradient(config, [1, 3, 12, 14], points, 'none');
});

test('finite differences: through the folded upsampling and with fast tracking in the graph', async () => {
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 2, channels: 2, motionRadius: 1, trackingRadius: 2, supervision: [16, 20] };
  const points = { handles: [[5, 6], [12, 15]] as Point[], handlesInit: [[4, 5], [13, 16]] as Point[], targets: [[11, 13], [4, 7]] as Point[] };
  await checkGradient(config, [1, 2, 4, 5], points, 'fast');
});

test('finite differences: a shifted patch one row longer than its window (float32 rounding at the border)', async () => {
  // With p = (0, 0) and t = (2, 2) the f1 patch covers rows 1..3 for a 2-row window (see patch-geometry
  // tests): it needs the (2r_m+2)² sampling grid, and its shape differs from f0's (signed mean).
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 2, channels: 2, motionRadius: 1, trackingRadius: 1, supervision: [10, 12] };
  const points = { handles: [[0, 0], [6, 7]] as Point[], handlesInit: [[0, 0], [6, 7]] as Point[], targets: [[2, 2], [2, 2]] as Point[] };
  assert.equal(motionPatch([0, 0], [2, 2], 1, 10, 12, 'clipdrag').rows.count, 3);
  await checkGradient(config, [1, 2, 10, 12], points, 'none');
});

test('building the drag graphs fails clearly on mismatched features or missing f0', () => {
  const config: DragGraphConfig = { variant: 'clipdrag', pairs: 1, channels: 4, motionRadius: 1, trackingRadius: 2, supervision: [16, 16] };
  const g = new Graph('bad');
  const features = g.input('F', 'float32', [1, 3, 16, 16]);
  assert.throws(() => buildDragStep(featureGrid(features, [16, 16]), referenceFeatureInputs(g, config, 'float32'), config), /configured for 4 channels on a 16x16 grid, but the features give 3 channels on 16x16/);
  const h = new Graph('no-f0');
  const f1 = h.input('F', 'float32', [1, 4, 4, 4]);
  assert.throws(() => buildDragStep(featureGrid(f1, [16, 16]), { f0Vectors: h.input('v', 'float32', [1, 4]) }, config), /CLIPDrag motion supervision needs the f0 patches and means/);
  assert.throws(() => featureGrid(h.input('flat', 'float32', [4, 4, 4]), [16, 16]), /drag features must be \[1, C, h, w\]/);
});
