import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { interpolationSpan, motionPatch, motionStep } from '../../../../src/sidecar/pipeline/drag/patch-geometry';

const f32 = Math.fround;

test('interpolation span: cells from the floors of both ends, weights from the start only', () => {
  // y1 = 2.2, y2 = 5.9: floor(5.9) − floor(2.2) = 3 cells (not 3.7), fractions of 2.2 only.
  const span = interpolationSpan(f32(2.2), f32(5.9), 20);
  assert.equal(span.start, 2);
  assert.equal(span.count, 3);
  assert.equal(span.weight1, f32(f32(2.2) - 2));
  assert.equal(span.weight0, f32(3 - f32(2.2)));
  // Integer coordinates: the second tap has weight 0.
  assert.deepEqual(interpolationSpan(4, 7, 20), { start: 4, count: 3, weight0: 1, weight1: 0 });
});

test('interpolation span: truncated at the bottom edge like the reference slices', () => {
  // Sub-case 6 of the golden case: rows 18, 19 of 20 remain.
  assert.equal(interpolationSpan(f32(18.4), f32(21.4), 20).count, 2);
  // A patch that ends exactly at the edge keeps all its rows (its second tap is clamped).
  assert.equal(interpolationSpan(f32(17.5), f32(20.5), 20).count, 3);
  // Past the reference's domain: at least one (edge-replicating) cell, and a start below 0 keeps its span.
  assert.equal(interpolationSpan(19.5, 22.5, 20).count, 1);
  assert.deepEqual(interpolationSpan(-0.5, 2.5, 20), { start: -1, count: 3, weight0: 0.5, weight1: 0.5 });
});

test('motion step: CLIPDrag steps min(4, |t − p|), DragDiffusion one pixel, pairs closer than 2 are skipped', () => {
  assert.deepEqual(motionStep([10, 10], [16, 18], 'clipdrag'), { active: true, delta: [f32(f32(0.6) * 4), f32(f32(0.8) * 4)] });
  assert.deepEqual(motionStep([10, 10], [16, 18], 'dragdiffusion'), { active: true, delta: [f32(0.6), f32(0.8)] });
  // Under 4 pixels the step is the whole distance (up to float32 rounding).
  const short = motionStep([5, 5], [5, 8], 'clipdrag');
  assert.deepEqual(short, { active: true, delta: [0, 3] });
  assert.equal(motionStep([5, 5], [5, 7], 'clipdrag').active, true); // exactly 2 is not < 2
  assert.equal(motionStep([5, 5], [6, 6], 'clipdrag').active, false);
  assert.equal(motionStep([5, 5], [5, 5], 'dragdiffusion').active, false);
});

test('motion patch: the window around int(p) clipped to the map, shifted by the step', () => {
  const patch = motionPatch([8.7, 9.2], [14, 17], 1, 24, 32, 'clipdrag');
  assert.deepEqual(patch.window, { r1: 7, r2: 10, c1: 8, c2: 11 });
  const [dr, dc] = motionStep([8.7, 9.2], [14, 17], 'clipdrag').delta;
  assert.deepEqual(patch.rows, interpolationSpan(f32(7 + dr), f32(10 + dr), 24));
  assert.deepEqual(patch.cols, interpolationSpan(f32(8 + dc), f32(11 + dc), 32));
  // Clipped at the top-left border: a 2x2 window.
  assert.deepEqual(motionPatch([0, 0], [10, 10], 1, 24, 32, 'clipdrag').window, { r1: 0, r2: 2, c1: 0, c2: 2 });
});

test('motion patch: float32 rounding can make the shifted patch one row longer than its window, as in the reference', () => {
  // d = (2,2)/|(2,2)|·|(2,2)| = 1.9999999 in float32; 0 + d stays below 2 but 2 + d rounds to 4.0,
  // so floor(y2) − floor(y1) = 3 rows for a 2-row window. The drag graph samples on a (2r_m+2)² grid for this.
  const patch = motionPatch([0, 0], [2, 2], 1, 64, 64, 'clipdrag');
  assert.equal(patch.window.r2 - patch.window.r1, 2);
  assert.equal(patch.rows.start, 1);
  assert.equal(patch.rows.count, 3);
  assert.equal(patch.cols.count, 3);
});
