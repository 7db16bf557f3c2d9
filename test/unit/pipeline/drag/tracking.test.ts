import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { allHandlesReached, fastPointTracking, featureMap, pointTracking, type Point } from '../../../../src/sidecar/pipeline/drag/tracking';
import { GoldenTensors, readGoldenIndex } from '../../../conformance/golden';
import { pointsFrom, subcases } from '../../../conformance/case';
import { readFeatureMaps } from '../../../conformance/feature-maps';

const FIXTURES = path.resolve(__dirname, '../../../fixtures');

/** A map whose single channel is 0 everywhere except given cells, so the best match is known. */
function oneHot(height: number, width: number, cells: Array<[number, number, number]>): ReturnType<typeof featureMap> {
  const data = new Float32Array(height * width);
  for (const [r, c, v] of cells) data[r * width + c] = v;
  return featureMap(data, 1, height, width);
}

for (const name of ['point_tracking', 'fast_point_tracking'] as const) {
  test(`${name}: every golden sub-case`, async () => {
    const entry = (await readGoldenIndex(FIXTURES)).cases.find((c) => c.name === name)!;
    const golden = await GoldenTensors.open(path.join(FIXTURES, entry.file));
    try {
      const { f0, f1 } = await readFeatureMaps(golden);
      for (const sub of subcases(entry)) {
        const p = `${sub.index}.`;
        const handles = pointsFrom(await golden.float32(`${p}handle_points`));
        const init = pointsFrom(await golden.float32(`${p}handle_points_init`));
        const rP = sub.r_p as number;
        const tracked =
          name === 'point_tracking'
            ? pointTracking(f0, f1, handles, init, rP)
            : fastPointTracking(f0, f1, handles, init, pointsFrom(await golden.float32(`${p}target_points`)), rP);
        assert.deepEqual(tracked, pointsFrom(await golden.float32(`${p}new_handle_points`)), `sub-case ${sub.index} (${String(sub.tag)})`);
      }
    } finally {
      await golden.close();
    }
  });
}

test('point tracking finds the matching feature inside the clipped window', () => {
  const f0 = oneHot(8, 8, [[2, 2, 5]]);
  const f1 = oneHot(8, 8, [[0, 1, 5], [6, 6, 5]]);
  // The window around (1,1) with radius 2 is rows 0..3, cols 0..3: (0,1) matches, (6,6) is outside.
  assert.deepEqual(pointTracking(f0, f1, [[1, 1]], [[2, 2]], 2), [[0, 1]]);
  // Fractional handles are truncated like Python's int().
  assert.deepEqual(pointTracking(f0, f1, [[1.9, 1.7]], [[2.4, 2.9]], 2), [[0, 1]]);
});

test('fast tracking only accepts positions strictly closer to the target', () => {
  const f0 = oneHot(8, 8, [[4, 4, 5]]);
  // The perfect match (3,4) is farther from the target (7,4) than the handle: it is excluded.
  const f1 = oneHot(8, 8, [[3, 4, 5]]);
  const moved = fastPointTracking(f0, f1, [[4, 4]], [[4, 4]], [[7, 4]], 1);
  assert.ok((moved[0]![0] - 7) ** 2 + (moved[0]![1] - 4) ** 2 < 9, `moved to ${JSON.stringify(moved)}`);
  assert.deepEqual(moved, [[5, 3]]); // all closer candidates tie (distance 5): row-major first
  // Within 1 pixel of the target, the handle's own entry gets |p-t|² and wins over worse matches.
  assert.deepEqual(fastPointTracking(f0, oneHot(8, 8, []), [[4, 4]], [[4, 4]], [[4, 5]], 1), [[4, 4]]);
});

// Guards the rule's strictness (`>=` in fastTrackingOverride): a cell exactly as far from the target as the
// handle, the handle's own cell included, is excluded even when it is the best feature match. With `>` the
// handle would stay, or move sideways to an equally distant cell, and both assertions fail.
test('fast tracking excludes cells exactly as far from the target as the handle, even a perfect match', () => {
  const f0 = oneHot(8, 8, [[4, 4, 5]]);
  // The handle (4,4) is 3 away from the target (4,7) and its own cell matches perfectly: it must still move closer,
  // to the row-major first of the strictly closer cells (all equally poor matches).
  const stays = fastPointTracking(f0, oneHot(8, 8, [[4, 4, 5]]), [[4, 4]], [[4, 4]], [[4, 7]], 3);
  assert.deepEqual(stays, [[2, 5]], `the handle's own cell was accepted: ${JSON.stringify(stays)}`);
  // (7,7) is also exactly 3 from the target (|Δ|² = 9 = |p − t|²) and matches perfectly: excluded as well.
  const sideways = fastPointTracking(f0, oneHot(8, 8, [[7, 7, 5]]), [[4, 4]], [[4, 4]], [[4, 7]], 3);
  assert.deepEqual(sideways, [[2, 5]], `an equally distant cell was accepted: ${JSON.stringify(sideways)}`);
});

test('fast tracking: no allowed candidate falls back to the window corner, like argmin over +inf', () => {
  const f = oneHot(8, 8, []);
  // The handle is on the target: nothing is strictly closer and |p-t|² = 0 is set at [r_p, r_p] = the handle.
  assert.deepEqual(fastPointTracking(f, f, [[4, 4]], [[4, 4]], [[4, 4]], 2), [[4, 4]]);
  // At the top-left border [r_p, r_p] is not the handle, and the handle jumps there (reference quirk).
  assert.deepEqual(fastPointTracking(f, f, [[0, 0]], [[0, 0]], [[0, 0]], 2), [[2, 2]]);
});

test('stop test and input validation', () => {
  const targets: Point[] = [[10, 10], [0, 0]];
  assert.equal(allHandlesReached([[11, 11], [1, 1]], targets), true);
  assert.equal(allHandlesReached([[12, 10], [1, 1]], targets), false); // exactly 2 is not < 2
  const f = oneHot(4, 4, []);
  assert.throws(() => pointTracking(f, oneHot(4, 5, []), [[1, 1]], [[1, 1]], 1), /differ in shape/);
  assert.throws(() => pointTracking(f, f, [[1, 1]], [], 1), /1 handles but 0 matching points/);
  assert.throws(() => pointTracking(f, f, [[1, 1]], [[9, 1]], 1), /outside the 4x4 feature map/);
  assert.throws(() => featureMap(new Float32Array(5), 1, 2, 2), /needs 4 values/);
});
