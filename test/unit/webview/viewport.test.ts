import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hitTestPoints } from '../../../src/webview/point-hits';
import { shortcutFor, SHORTCUTS } from '../../../src/webview/shortcuts';
import { MAX_SCALE, Viewport } from '../../../src/webview/viewport';

function viewport(viewWidth: number, viewHeight: number, imageWidth: number, imageHeight: number): Viewport {
  const v = new Viewport();
  v.setView(viewWidth, viewHeight);
  v.setImage(imageWidth, imageHeight);
  return v;
}

describe('viewport', () => {
  it('fits a large image into the view, centred, and never enlarges a small one', () => {
    const large = viewport(1000, 800, 4000, 3000);
    assert.equal(large.scale, (1000 - 32) / 4000);
    assert.ok(Math.abs(large.offsetX - 16) < 1e-9);
    assert.ok(Math.abs(large.offsetY - (800 - 3000 * large.scale) / 2) < 1e-9);
    const small = viewport(1000, 800, 200, 100);
    assert.equal(small.scale, 1);
    assert.deepEqual([small.offsetX, small.offsetY], [400, 350]);
  });

  it('maps image pixel centres to the view and back', () => {
    const v = viewport(640, 480, 4000, 3000);
    v.zoomAt(3.7, 100, 50);
    for (const [x, y] of [[0, 0], [123.5, 77], [3999, 2999]] as const) {
      const [vx, vy] = v.toView(x, y);
      const [ix, iy] = v.toImage(vx, vy);
      assert.ok(Math.abs(ix - x) < 1e-9 && Math.abs(iy - y) < 1e-9, `${x}, ${y} → ${ix}, ${iy}`);
    }
    const [vx, vy] = v.toView(10, 20);
    assert.deepEqual(v.toImagePixel(vx + 0.3 * v.scale, vy - 0.4 * v.scale), [10, 20], 'the nearest pixel centre');
    assert.deepEqual(v.toImagePixel(-1e6, 1e6), [0, 2999], 'clamped to the image');
  });

  it('zooms about the pointer: the image point under it stays under it', () => {
    const v = viewport(800, 600, 512, 512);
    const before = v.toImage(300, 200);
    v.zoomAt(2.5, 300, 200);
    const after = v.toImage(300, 200);
    assert.ok(Math.abs(before[0] - after[0]) < 1e-9 && Math.abs(before[1] - after[1]) < 1e-9);
    assert.equal(v.fitted, false);
    v.zoomAt(1e9, 0, 0);
    assert.equal(v.scale, MAX_SCALE, 'zoom is bounded');
    v.actualSize();
    assert.equal(v.scale, 1);
    v.fit();
    assert.equal(v.fitted, true);
  });

  it('keeps a corner of the image in view when panning far away', () => {
    const v = viewport(800, 600, 512, 512);
    v.panBy(10_000, 10_000);
    assert.ok(v.offsetX <= 800 - 32 && v.offsetY <= 600 - 32);
    v.panBy(-100_000, -100_000);
    assert.ok(v.offsetX + 512 * v.scale >= 32 && v.offsetY + 512 * v.scale >= 32);
  });

  it('keeps fitting when the view is resized, until the user zooms', () => {
    const v = viewport(800, 600, 1000, 1000);
    v.setView(400, 300);
    assert.equal(v.scale, (300 - 32) / 1000);
    v.zoomAt(2, 10, 10);
    const scale = v.scale;
    v.setView(800, 600);
    assert.equal(v.scale, scale, 'a chosen zoom survives a resize');
  });
});

describe('point hits', () => {
  const points = [
    { handle: [10, 10] as [number, number], target: [40, 10] as [number, number] },
    { handle: [12, 10] as [number, number], target: [80, 80] as [number, number] },
  ];
  it('finds the nearest point within the radius', () => {
    assert.deepEqual(hitTestPoints(points, [41, 11], 3), { index: 0, end: 'target' });
    assert.deepEqual(hitTestPoints(points, [12.4, 10], 3), { index: 1, end: 'handle' });
    assert.deepEqual(hitTestPoints(points, [10.5, 10], 3), { index: 0, end: 'handle' });
    assert.equal(hitTestPoints(points, [60, 60], 3), undefined);
  });
});

describe('keyboard shortcuts', () => {
  const key = (k: string, modifiers: { shift?: boolean; ctrl?: boolean; alt?: boolean } = {}) =>
    shortcutFor({ key: k, shiftKey: modifiers.shift ?? false, ctrlKey: modifiers.ctrl ?? false, metaKey: false, altKey: modifiers.alt ?? false });
  it('maps keys to actions, with modifiers telling similar keys apart', () => {
    // Run and the tool keys are contributed keybindings: VS Code sends them to the page, which must not act on them too.
    for (const k of ['p', 'b', 'e', 'h']) assert.equal(key(k), undefined, k);
    assert.equal(key('Enter', { ctrl: true }), undefined);
    assert.equal(key('Delete'), 'delete-selected');
    assert.equal(key('Delete', { shift: true }), 'clear-all');
    assert.equal(key('m'), 'toggle-mask');
    assert.equal(key('M', { shift: true }), 'clear-mask');
    assert.equal(key('N', { shift: true }), 'select-previous');
    assert.equal(key('n'), 'select-next');
    assert.equal(key('ArrowLeft', { shift: true }), 'nudge-left');
    assert.equal(key('Enter'), undefined);
    assert.equal(key('+', { shift: true }), 'zoom-in');
    assert.equal(key('p', { ctrl: true }), undefined, 'Ctrl+P stays VS Code\'s');
    assert.equal(key('p', { alt: true }), undefined);
  });
  it('lists every tool with its key', () => {
    for (const action of ['tool-point', 'tool-brush', 'tool-eraser', 'tool-pan', 'toggle-mask', 'delete-selected', 'clear-all', 'run'] as const) {
      assert.ok(SHORTCUTS.some((s) => s.action === action && s.keys.length > 0), action);
    }
  });
});
