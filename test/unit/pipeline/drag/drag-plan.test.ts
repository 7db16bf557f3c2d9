import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  CANDIDATE_FLOATS,
  CANDIDATE_INTS,
  REFERENCE_INPUT,
  STEP_INPUT,
  referenceInputSpecs,
  stepInputSpecs,
  type DragGraphConfig,
} from '../../../../src/sidecar/pipeline/drag/drag-config';
import { referenceFeeds, stepFeeds, trackingModeFor, type Feeds } from '../../../../src/sidecar/pipeline/drag/drag-plan';
import { motionPatch } from '../../../../src/sidecar/pipeline/drag/patch-geometry';
import { fastTrackingOverride, trackingWindow } from '../../../../src/sidecar/pipeline/drag/tracking';

const config: DragGraphConfig = { variant: 'clipdrag', pairs: 2, channels: 8, motionRadius: 1, trackingRadius: 2, supervision: [24, 32] };
const SIDE = 5;
const CELLS = SIDE * SIDE;

function floatAt(feeds: Feeds, pair: number, cell: number, column: (typeof CANDIDATE_FLOATS)[number]): number {
  return (feeds[STEP_INPUT.candidates] as Float32Array)[(pair * CELLS + cell) * CANDIDATE_FLOATS.length + CANDIDATE_FLOATS.indexOf(column)]!;
}

function intAt(feeds: Feeds, pair: number, cell: number, column: (typeof CANDIDATE_INTS)[number]): number {
  return Number((feeds[STEP_INPUT.candidateIndices] as BigInt64Array)[(pair * CELLS + cell) * CANDIDATE_INTS.length + CANDIDATE_INTS.indexOf(column)]!);
}

test('feeds match the declared input specs', () => {
  const points = { handles: [[5, 6], [20, 30]] as const, handlesInit: [[4, 5], [21, 30]] as const, targets: [[12, 14], [18, 25]] as const };
  const check = (feeds: Feeds, specs: ReturnType<typeof stepInputSpecs>) => {
    assert.deepEqual(Object.keys(feeds).sort(), specs.map((s) => s.name).sort());
    for (const spec of specs) {
      const data = feeds[spec.name]!;
      assert.equal(data.length, spec.shape.reduce((a, b) => a * b, 1), spec.name);
      assert.equal(data instanceof BigInt64Array, spec.dtype === 'int64', spec.name);
    }
  };
  for (const mode of ['none', 'plain', 'fast'] as const) check(stepFeeds(config, points, mode), stepInputSpecs(config));
  check(referenceFeeds(config, points.handlesInit), referenceInputSpecs(config));
});

test('window cells are laid out from the clipped corner; padding cells are excluded', () => {
  // Handle at (1, 31): the r_p = 2 window is rows 0..3, cols 29..31 (clipped top and right). Padding
  // positions read some cell of the map (their distance is discarded).
  const feeds = stepFeeds(config, { handles: [[1, 31], [10, 10]], handlesInit: [[1, 31], [10, 10]], targets: [[20, 20], [15, 15]] }, 'plain');
  assert.deepEqual(Array.from(feeds[STEP_INPUT.trackRows] as BigInt64Array, Number).slice(0, SIDE), [0, 1, 2, 3, 4]);
  assert.deepEqual(Array.from(feeds[STEP_INPUT.trackCols] as BigInt64Array, Number).slice(0, SIDE), [29, 30, 31, 31, 31]);
  const bias = feeds[STEP_INPUT.trackBias] as Float32Array;
  for (let r = 0; r < SIDE; r++) {
    for (let c = 0; c < SIDE; c++) assert.equal(bias[r * SIDE + c], r < 4 && c < 3 ? 0 : Infinity, `cell ${r},${c}`);
  }
  // Every real cell carries the motion supervision of a handle at that cell.
  assert.equal(floatAt(feeds, 0, 1 * SIDE + 2, 'row'), 1);
  assert.equal(floatAt(feeds, 0, 1 * SIDE + 2, 'col'), 31);
  const patch = motionPatch([1, 31], [20, 20], 1, 24, 32, 'clipdrag');
  assert.equal(intAt(feeds, 0, 1 * SIDE + 2, 'rowStart'), patch.rows.start);
  assert.equal(floatAt(feeds, 0, 1 * SIDE + 2, 'colWeight1'), patch.cols.weight1);
});

test('fast tracking restrictions come from the tracking rule, pinned cells keep no distance', () => {
  // Within 1 pixel of the target at the top-left border: the pinned cell [r_p, r_p] is not the handle.
  const p = [0, 1] as const;
  const t = [0, 2] as const;
  const feeds = stepFeeds(config, { handles: [p, [10, 10]], handlesInit: [p, [10, 10]], targets: [t, [15, 15]] }, 'fast');
  const keep = feeds[STEP_INPUT.trackKeep] as Float32Array;
  const bias = feeds[STEP_INPUT.trackBias] as Float32Array;
  const w = trackingWindow(p, 2, 24, 32);
  const rule = fastTrackingOverride(p, t, w, 2);
  for (let r = 0; r < w.r2 - w.r1; r++) {
    for (let c = 0; c < w.c2 - w.c1; c++) {
      const expected = rule(r, c);
      const cell = r * SIDE + c;
      if (expected === null) assert.deepEqual([keep[cell], bias[cell]], [1, 0], `cell ${r},${c}`);
      else if (expected === Infinity) assert.equal(bias[cell], Infinity, `cell ${r},${c}`);
      else assert.deepEqual([keep[cell], bias[cell]], [0, expected], `cell ${r},${c}`);
    }
  }
  assert.deepEqual([keep[2 * SIDE + 2], bias[2 * SIDE + 2]], [0, 1]);
});

test('without tracking only cell 0 is allowed, and it holds the current (possibly fractional) handle', () => {
  const handles = [[7.5, 9.25], [12, 3]] as const;
  const feeds = stepFeeds(config, { handles, handlesInit: handles, targets: [[15, 9], [12, 3]] }, 'none');
  const bias = feeds[STEP_INPUT.trackBias] as Float32Array;
  assert.equal(bias[0], 0);
  assert.ok(bias.slice(1, CELLS).every((b) => b === Infinity));
  assert.equal(floatAt(feeds, 0, 0, 'row'), 7.5);
  assert.equal(floatAt(feeds, 0, 0, 'col'), 9.25);
  // The second pair sits on its target: skipped (no loss terms).
  assert.equal(floatAt(feeds, 1, 0, 'l1Scale'), 0);
  assert.equal(floatAt(feeds, 1, 0, 'meanScale'), 0);
  // The first is active with equal shapes: the L1 term scaled by (2r_m+1)²/(C·9).
  assert.equal(floatAt(feeds, 0, 0, 'l1Scale'), Math.fround(9 / (8 * 9)));
});

test('CLIPDrag compares with the clipped window at the initial handle; differing shapes switch to the signed mean', () => {
  const feeds = stepFeeds(config, { handles: [[0, 12], [10, 10]], handlesInit: [[6, 12], [10, 10]], targets: [[9, 16], [16, 16]] }, 'none');
  // Current window clipped to 2x3, initial window 3x3: shapes differ.
  assert.equal(floatAt(feeds, 0, 0, 'l1Scale'), 0);
  assert.equal(floatAt(feeds, 0, 0, 'meanScale'), 9);
  assert.equal(floatAt(feeds, 0, 0, 'sampleNorm'), Math.fround(1 / (8 * 6)));
  const dragDiffusion = stepFeeds({ ...config, variant: 'dragdiffusion' }, { handles: [[0, 12], [10, 10]], handlesInit: [[6, 12], [10, 10]], targets: [[9, 16], [16, 16]] }, 'none');
  // DragDiffusion compares with the current window itself: same 2x3 shape.
  assert.equal(floatAt(dragDiffusion, 0, 0, 'meanScale'), 0);
});

test('reference feeds: f0 point and clipped window at each initial handle', () => {
  const feeds = referenceFeeds(config, [[0.6, 31.2], [10, 10]]);
  assert.deepEqual(Array.from(feeds[REFERENCE_INPUT.pointRows] as BigInt64Array, Number), [0, 10]);
  assert.deepEqual(Array.from(feeds[REFERENCE_INPUT.pointCols] as BigInt64Array, Number), [31, 10]);
  assert.deepEqual(Array.from(feeds[REFERENCE_INPUT.windows] as BigInt64Array, Number), [0, 2, 30, 2, 9, 3, 9, 3]);
  assert.deepEqual(Array.from(feeds[REFERENCE_INPUT.norms] as Float32Array), [Math.fround(1 / 32), Math.fround(1 / 72)]);
});

test('tracking mode per iteration and variant; input checks', () => {
  assert.equal(trackingModeFor(config, 0), 'none');
  assert.equal(trackingModeFor(config, 3), 'fast');
  assert.equal(trackingModeFor({ ...config, variant: 'dragdiffusion' }, 1), 'plain');
  const ok = { handles: [[1, 1], [2, 2]] as const, handlesInit: [[1, 1], [2, 2]] as const, targets: [[5, 5], [6, 6]] as const };
  assert.throws(() => stepFeeds(config, { ...ok, targets: [[5, 5]] }, 'fast'), /built for 2 pairs, got 1 targets/);
  assert.throws(() => stepFeeds(config, { ...ok, handles: [[1, 1], [24, 2]] }, 'fast'), /handle 1 \[24, 2\] lies outside the 24x32 supervision grid/);
  assert.throws(() => referenceFeeds(config, [[1, 1], [Number.NaN, 2]]), /initial handle 1 is not a finite point/);
  assert.throws(() => stepFeeds({ ...config, trackingRadius: 0 }, ok, 'fast'), /r_p must be a positive integer/);
});
