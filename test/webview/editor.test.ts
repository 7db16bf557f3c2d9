// The editor page (the BUILT dist/webview.js) in headless Chromium, driven with real mouse and keyboard input:
// placing, moving and deleting points and painting the mask must produce the expected edits; the page must follow
// the document it is sent; screenshots in a dark and a light theme; and placing points, painting strokes and panning
// on a 4000 × 3000 image (their speed is bench/editor.ts's). `test-host.ts` answers for the extension, with the real
// shared document model.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { EditMode } from '../../src/shared/edit-parameters';
import { decodeMaskRle } from '../../src/shared/edit-spec';
import { maskBitmapOf } from '../../src/shared/editor-model';
import type { FromWebviewMessage } from '../../src/shared/webview-messages';
import { closeBrowser, EditorPage, missingPrerequisite, ORIGIN, REPO, settle, type Theme } from './harness';
import { gestureDisplacement, interactionStart, LARGE_IMAGE, largeImagePng, openLargeImage, performInteraction, selectToolFor, STROKE_RADIUS } from './large-image';
import { TestHost } from './test-host';

const SAMPLE = fs.readFileSync(path.join(REPO, 'media', 'samples', 'sample.png'));
const SCREENSHOT_DIR = path.resolve(REPO, process.env.CLIPDRAG_SCREENSHOT_DIR ?? path.join('.test-run', 'screenshots'));
const skip = missingPrerequisite();

type Of<T extends FromWebviewMessage['type']> = Extract<FromWebviewMessage, { type: T }>;
const isType =
  <T extends FromWebviewMessage['type']>(type: T) =>
  (message: FromWebviewMessage): message is Of<T> =>
    message.type === type;

async function openSample(theme: Theme = 'dark', size?: { width: number; height: number }): Promise<{ page: EditorPage; host: TestHost }> {
  const page = await EditorPage.open({ theme, size, files: { 'sample.png': SAMPLE, 'sample.clipdrag.png': SAMPLE }, imageName: 'sample.png' });
  const host = new TestHost(page, { src: `${ORIGIN}/files/sample.png`, name: 'sample.png' });
  await page.waitFor(isType('imageLoaded'), { since: 0 });
  await settle(page);
  return { page, host };
}

/** RGBA of a canvas layer at an image pixel's centre. */
async function layerPixel(page: EditorPage, layer: 'image' | 'mask' | 'overlay', x: number, y: number): Promise<number[]> {
  const view = await page.view();
  const vx = Math.floor(view.offsetX + (x + 0.5) * view.scale);
  const vy = Math.floor(view.offsetY + (y + 0.5) * view.scale);
  return page.page.evaluate(`Array.from(document.getElementById('layer-${layer}').getContext('2d').getImageData(${vx}, ${vy}, 1, 1).data)`) as Promise<number[]>;
}

describe('editor page in Chromium', { skip }, () => {
  after(() => closeBrowser());

  it('loads the image under the strict Content-Security-Policy, without errors, and says what it shows', async () => {
    const { page } = await openSample();
    try {
      assert.deepEqual(await page.cspViolations(), []);
      assert.deepEqual(page.consoleErrors, []);
      assert.deepEqual(page.received.find(isType('imageLoaded')), { type: 'imageLoaded', src: `${ORIGIN}/files/sample.png`, width: 512, height: 512 });
      assert.match((await page.page.textContent('#clipdrag-status'))!, /^sample\.png — 512 × 512 px · 100% · 0 point pairs$/);
      assert.equal(await page.page.getAttribute('#canvas-stack', 'data-image-size'), '512x512');
      // The image layer shows the picture: the red ball's centre is red.
      const [r, g, b] = await layerPixel(page, 'image', 330, 390);
      assert.ok(r! > 180 && r! > g! + 60 && r! > b! + 60, `ball pixel ${[r, g, b]}`);
    } finally {
      await page.close();
    }
  });

  it('places a pair with two clicks, moves a point by dragging it, and deletes the selected pair with Delete', async () => {
    const { page, host } = await openSample();
    try {
      await page.click(330, 390);
      await settle(page);
      assert.equal(host.edits.length, 0, 'a handle alone is not an edit');
      assert.match((await page.page.textContent('#points-summary'))!, /handle 1 at \(330, 390\) waits for its target/);
      await page.click(430, 380);
      await settle(page);
      assert.deepEqual(host.edits, [{ kind: 'addPair', pair: { handle: [330, 390], target: [430, 380] } }]);
      assert.equal(await page.page.getAttribute('#canvas-stack', 'data-points'), '1');
      assert.equal(await page.page.textContent('#points-list li .pair'), '1: (330, 390) → (430, 380)');
      // Red handle, blue target ring drawn on the overlay.
      const handle = await layerPixel(page, 'overlay', 330, 390);
      assert.ok(handle[0]! > 200 && handle[2]! < 120 && handle[3]! > 200, `handle pixel ${handle}`);
      const ring = await layerPixel(page, 'overlay', 430 + 8, 380); // the new target is selected: a larger ring
      assert.ok(ring[2]! > 200 && ring[0]! < 120, `target ring pixel ${ring}`);

      await page.drag([[430, 380], [450, 300]]);
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'movePoint', index: 0, end: 'target', to: [450, 300] });
      assert.deepEqual(host.model.points, [{ handle: [330, 390], target: [450, 300] }]);

      await page.click(330, 390); // selects the handle (no edit)
      await settle(page);
      assert.equal(host.edits.length, 2);
      await page.page.keyboard.press('Delete');
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'deletePair', index: 0 });
      assert.deepEqual(host.model.points, []);

      // Escape drops an unfinished pair.
      await page.click(100, 100);
      await page.page.keyboard.press('Escape');
      await page.click(200, 100);
      await settle(page);
      assert.equal(host.edits.length, 3, 'the second click started a new pair instead of finishing the dropped one');
      assert.match((await page.page.textContent('#points-summary'))!, /handle 1 at \(200, 100\)/);
    } finally {
      await page.close();
    }
  });

  it('paints and erases the mask: each stroke is one edit, and the page shows what the document rasterises', async () => {
    const { page, host } = await openSample();
    try {
      await page.press('b');
      assert.equal(await page.page.getAttribute('#canvas-stack', 'data-tool'), 'brush');
      await page.drag([[280, 380], [380, 380], [380, 420]]);
      await settle(page);
      assert.equal(host.edits.length, 1);
      const paint = host.edits[0]!;
      assert.equal(paint.kind, 'maskStroke');
      const stroke = (paint as Extract<typeof paint, { kind: 'maskStroke' }>).stroke;
      assert.equal(stroke.mode, 'paint');
      assert.equal(stroke.radius, 13, 'the default brush is 1/40 of the image');
      assert.deepEqual(stroke.points[0], [280, 380]);
      assert.deepEqual(stroke.points.at(-1), [380, 420]);
      assert.ok(stroke.points.length >= 3);

      const size = { width: 512, height: 512 };
      let document = maskBitmapOf(host.model.mask, size);
      assert.equal(document.data[380 * 512 + 330], 1, 'on the stroke');
      assert.equal(document.data[100 * 512 + 100], 0, 'far away');
      const tinted = await layerPixel(page, 'mask', 330, 380);
      assert.ok(tinted[3]! > 60 && tinted[0]! > 200, `mask pixel ${tinted}`);
      assert.equal((await layerPixel(page, 'mask', 100, 100))[3], 0);

      await page.press('e');
      await page.drag([[330, 360], [330, 400]]);
      await settle(page);
      const erase = host.edits[1]!;
      assert.equal(erase.kind === 'maskStroke' && erase.stroke.mode, 'erase');
      document = maskBitmapOf(host.model.mask, size);
      assert.equal(document.data[380 * 512 + 330], 0, 'erased in the document');
      assert.equal((await layerPixel(page, 'mask', 330, 380))[3], 0, 'erased on the page');
      assert.equal(document.data[380 * 512 + 290], 1, 'the rest of the stroke stays');

      // Undo (VS Code's, played by the host) brings the erased part back on the page.
      await host.undo();
      await settle(page);
      assert.ok((await layerPixel(page, 'mask', 330, 380))[3]! > 60, 'restored after undo');

      // Shift+M removes the mask (one edit); undo brings it back.
      await page.page.keyboard.press('Shift+M');
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'clearMask' });
      assert.equal((await layerPixel(page, 'mask', 290, 380))[3], 0, 'mask cleared on the page');
      await host.undo();
      await settle(page);
      assert.ok((await layerPixel(page, 'mask', 290, 380))[3]! > 60, 'back after undo');

      // M hides the mask; Shift+Delete clears points and mask in one edit.
      await page.page.keyboard.press('m');
      assert.equal(await page.page.isHidden('#layer-mask'), true);
      await page.page.keyboard.press('m');
      await page.page.keyboard.press('Shift+Delete');
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'clearAll' });
      assert.equal((await layerPixel(page, 'mask', 290, 380))[3], 0, 'cleared on the page');
      assert.deepEqual(await page.cspViolations(), []);
      assert.deepEqual(page.consoleErrors, []);
    } finally {
      await page.close();
    }
  });

  it('shows a PNG mask file the spec names, reads it as the engine does, and sends its pixels for saving strokes over it', async () => {
    // Left half white (editable), right half black; the top rows transparent (not editable whatever their colour).
    const pixels = Buffer.alloc(512 * 512 * 4);
    for (let y = 0; y < 512; y++) {
      for (let x = 0; x < 512; x++) {
        const i = (y * 512 + x) * 4;
        const value = x < 256 ? 255 : 0;
        pixels.set([value, value, value, y < 16 ? 0 : 255], i);
      }
    }
    const maskPng = await sharp(pixels, { raw: { width: 512, height: 512, channels: 4 } }).png().toBuffer();
    const page = await EditorPage.open({ files: { 'sample.png': SAMPLE, 'mask.png': maskPng }, imageName: 'sample.png' });
    try {
      page.onMessage((message) => {
        if (message.type === 'ready') void page.send({ type: 'showImage', src: `${ORIGIN}/files/sample.png`, name: 'sample.png' });
      });
      await page.waitFor(isType('imageLoaded'), { since: 0 });
      const view = { revision: 1, mode: 'clipdrag' as const, prompt: '', editPrompt: '', points: [], parameters: {}, maskRevision: 1 };
      await page.send({ type: 'document', view, mask: { kind: 'reset', revision: 1, base: { kind: 'file', path: 'mask.png', src: `${ORIGIN}/files/mask.png` }, strokes: [] } });
      const decoded = await page.waitFor(isType('maskFileDecoded'), { since: 0 });
      assert.equal(decoded.path, 'mask.png');
      const bitmap = decodeMaskRle(decoded.mask);
      assert.deepEqual([bitmap.width, bitmap.height], [512, 512]);
      assert.equal(bitmap.data[100 * 512 + 10], 1, 'white: editable');
      assert.equal(bitmap.data[100 * 512 + 300], 0, 'black: kept');
      assert.equal(bitmap.data[5 * 512 + 10], 0, 'transparent: kept');
      await settle(page);
      assert.ok((await layerPixel(page, 'mask', 10, 100))[3]! > 60, 'shown tinted');
      assert.equal((await layerPixel(page, 'mask', 300, 100))[3], 0);
    } finally {
      await page.close();
    }
  });

  it('has a key for every tool, and keyboard-only point editing', async () => {
    const { page, host } = await openSample();
    try {
      for (const [key, tool] of [['e', 'eraser'], ['h', 'pan'], ['b', 'brush'], ['p', 'point']] as const) {
        // The page alone does not switch (no double firing): VS Code's keybinding does, through the extension.
        await page.page.keyboard.press(key);
        assert.notEqual(await page.page.getAttribute('#canvas-stack', 'data-tool'), tool);
        await page.press(key);
        assert.equal(await page.page.getAttribute('#canvas-stack', 'data-tool'), tool);
        assert.equal(await page.page.getAttribute(`.tool[data-tool="${tool}"]`, 'aria-checked'), 'true');
      }
      await page.page.keyboard.press(']');
      assert.equal(await page.page.textContent('#brush-size-value'), '16 px');
      await page.page.keyboard.press('a');
      await settle(page);
      const added = host.edits[0]!;
      assert.equal(added.kind, 'addPair');
      const target = (added as Extract<typeof added, { kind: 'addPair' }>).pair.target;
      await page.page.keyboard.press('ArrowRight');
      await page.page.keyboard.press('Shift+ArrowDown');
      await settle(page);
      assert.deepEqual(host.edits.slice(1), [
        { kind: 'movePoint', index: 0, end: 'target', to: [target[0] + 1, target[1]] },
        { kind: 'movePoint', index: 0, end: 'target', to: [target[0] + 1, target[1] + 10] },
      ]);
      await page.page.keyboard.press('t'); // the handle
      await page.page.keyboard.press('Backspace');
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'deletePair', index: 0 });
      // The shortcut list is in the page.
      assert.ok((await page.page.locator('#shortcuts dt').count()) >= 15);
      for (const label of await page.page.locator('.toolbar button').evaluateAll((buttons) => buttons.map((b) => b.getAttribute('aria-label') ?? b.textContent ?? ''))) {
        assert.ok(label.trim().length > 0, 'every toolbar button has an accessible name');
      }
    } finally {
      await page.close();
    }
  });

  it('zooms about the pointer with the wheel, pans with the pan tool, fits and shows 100%', async () => {
    const { page } = await openSample('dark', { width: 900, height: 600 });
    try {
      const fitted = await page.view();
      assert.ok(fitted.scale < 1, 'a 512 px image in a short view is fitted');
      const at = await page.pagePoint(300, 200);
      await page.page.mouse.move(at.x, at.y);
      await page.page.mouse.wheel(0, -300);
      await settle(page);
      const zoomed = await page.view();
      assert.ok(zoomed.scale > fitted.scale * 1.5, `scale ${fitted.scale} → ${zoomed.scale}`);
      const again = await page.pagePoint(300, 200);
      assert.ok(Math.abs(again.x - at.x) < 1 && Math.abs(again.y - at.y) < 1, 'the point under the pointer stays there');
      await page.press('h');
      await page.drag([[300, 200], [250, 180]]);
      const panned = await page.view();
      assert.ok(Math.abs(panned.offsetX - zoomed.offsetX + 50 * zoomed.scale) < 2, `panned by ${panned.offsetX - zoomed.offsetX}`);
      await page.page.keyboard.press('1');
      assert.equal((await page.view()).scale, 1);
      assert.equal(await page.page.textContent('#zoom-level'), '100%');
      await page.page.click('#zoom-fit');
      assert.deepEqual(await page.view(), fitted);
    } finally {
      await page.close();
    }
  });

  it('sends prompt text as one edit per pause, and checks parameters with the spec module before sending', async () => {
    const { page, host } = await openSample();
    try {
      await page.page.locator('#prompt textarea').fill('a red ball on a meadow');
      await page.page.locator('#canvas-stack').focus(); // leaving the field sends it at once
      await settle(page);
      assert.deepEqual(host.edits, [{ kind: 'setPrompt', field: 'prompt', text: 'a red ball on a meadow' }]);

      await page.page.locator('#parameters-section').click();
      const rank = page.page.locator('#parameter-loraRank input');
      await rank.fill('500');
      await rank.press('Enter');
      await rank.blur();
      await settle(page);
      assert.equal(host.edits.length, 1, 'an out-of-range value is not sent');
      assert.match((await page.page.textContent('#parameter-loraRank ~ .parameter-error, .parameter:has(#parameter-loraRank) .parameter-error'))!, /expected an integer from 1 to 128/);
      await rank.fill('32');
      await rank.press('Enter');
      await rank.blur();
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'setParameter', name: 'loraRank', value: 32 });
      assert.equal(await page.page.isHidden('.parameter:has(#parameter-loraRank) .parameter-error'), true, 'the message goes once the value is valid');
      assert.equal(host.model.parameters.loraRank, 32);
      await page.page.locator('#mode').click(); // opens the list
      await page.page.keyboard.press('ArrowDown');
      await page.page.keyboard.press('Enter');
      await settle(page);
      assert.deepEqual(host.edits.at(-1), { kind: 'setMode', mode: 'drag' });
      assert.equal(await page.page.locator('#edit-prompt').evaluate((e) => (e as unknown as { disabled: boolean }).disabled), true, 'drag mode has no target prompt');
      // Help text: meaning, range and default from the definitions.
      assert.match((await page.page.textContent('#parameter-dragSteps-help'))!, /maximum drag iterations; an integer from 0 to 10000; default 800/);
    } finally {
      await page.close();
    }
  });

  it('runs: sends the request, and shows unavailability, progress with live handles and preview, and how a run ended', async () => {
    const { page, host } = await openSample();
    try {
      await page.click(330, 390);
      await page.click(430, 380);
      await settle(page);
      const since = page.received.length;
      await page.page.keyboard.press('Control+Enter');
      await settle(page);
      assert.equal(page.received.slice(since).filter((m) => m.type === 'run').length, 0, 'Ctrl+Enter is VS Code\'s keybinding, not the page\'s');
      await page.press('Control+Enter');
      await page.waitFor(isType('run'), { since });
      const message = 'Running an edit is disabled in Restricted Mode: it runs the engine and writes files. Trust this workspace to run edits.';
      await page.send({ type: 'run', run: { phase: 'unavailable', message, actions: ['manageTrust'] } });
      await settle(page);
      assert.equal(await page.page.textContent('#run-status'), message);
      await page.page.click('#run-actions button:has-text("Manage Workspace Trust")');
      await page.waitFor((m): m is Of<'userAction'> => m.type === 'userAction' && m.action === 'manageTrust', { since });

      const preview = `data:image/png;base64,${(await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer()).toString('base64')}`;
      await page.send({ type: 'run', run: { phase: 'running', stage: 'drag', label: 'Dragging', step: 3, total: 10, etaSeconds: 12, losses: { motion: 0.25 }, handles: [[360, 388]], preview } });
      await settle(page, 150);
      assert.equal(await page.page.textContent('#run-status'), 'Dragging: step 3 of 10 · about 12 s left in this stage');
      assert.equal(await page.page.isVisible('#run-preview'), true);
      assert.equal(await page.page.locator('#run').evaluate((b) => (b as unknown as { disabled: boolean }).disabled), true, 'Run is disabled while running');
      const live = await layerPixel(page, 'overlay', 360, 388);
      assert.ok(live[1]! > 180 && live[0]! < 120, `live handle pixel ${live}`);
      const shownPreview = await layerPixel(page, 'image', 100, 100);
      assert.ok(shownPreview[2]! > 200 && shownPreview[0]! < 50, `the canvas shows the preview during the run: ${shownPreview}`);
      await page.page.keyboard.press('Escape'); // clears the selection
      await page.page.keyboard.press('Escape'); // cancelling is VS Code's Escape keybinding, not the page's
      await settle(page);
      assert.equal(page.received.slice(since).filter((m) => m.type === 'cancelRun').length, 0, 'the page does not cancel on its own Escape');
      await page.page.click('#cancel');
      await page.waitFor(isType('cancelRun'), { since });
      await page.send({ type: 'run', run: { phase: 'cancelled' } });
      await settle(page);
      assert.match((await page.page.textContent('#run-status'))!, /Cancelled/);
      const [r] = await layerPixel(page, 'image', 330, 390);
      assert.ok(r! > 180, 'the image is back after the run');

      await page.send({ type: 'run', run: { phase: 'failed', message: 'The CUDA provider could not be loaded.', actions: ['chooseDevice', 'showLogs'] } });
      await settle(page);
      assert.deepEqual(await page.page.locator('#run-actions button').allTextContents(), ['Choose Device', 'Show Logs']);
      assert.equal(host.edits.length, 1);
    } finally {
      await page.close();
    }
  });

  it('lists results and compares one with the source, before/after and side by side', async () => {
    const { page } = await openSample();
    try {
      await page.send({ type: 'results', results: [{ file: 'sample.clipdrag.png', src: `${ORIGIN}/files/sample.clipdrag.png`, modified: Date.UTC(2026, 10, 26, 12), recipe: 'sample.clipdrag.json' }] });
      await settle(page);
      assert.equal(await page.page.textContent('#results .result-name'), 'sample.clipdrag.png');
      const since = page.received.length;
      await page.page.click('#results button[aria-label="Reveal sample.clipdrag.png in the Explorer"]');
      await page.waitFor((m): m is Of<'result'> => m.type === 'result' && m.action === 'reveal' && m.file === 'sample.clipdrag.png', { since });
      const zoomBefore = await page.page.textContent('#zoom-level');
      assert.match(zoomBefore ?? '', /^\d+%$/);
      await page.page.click('#results button[aria-label="Compare sample.clipdrag.png with the source"]');
      await settle(page);
      assert.equal(await page.page.isVisible('#compare-slider'), true);
      assert.equal(await page.page.isHidden('#canvas-stack'), true);
      assert.equal(await page.page.getAttribute('.view-mode[data-view="compare"]', 'aria-checked'), 'true');
      // The editing canvas's tools, mask and zoom do not apply to the comparison, and its zoom stays what it was.
      for (const control of ['.tool[data-tool="brush"]', '.tool[data-tool="eraser"]', '#brush-size', '#toggle-mask', '#clear-mask', '#zoom-level', '#zoom-in']) {
        assert.equal(await page.page.isHidden(control), true, `${control} is hidden while comparing`);
      }
      await page.page.setViewportSize({ width: 1100, height: 700 }); // a resize while the canvas is hidden
      await settle(page);
      assert.equal(await page.page.textContent('#zoom-level'), zoomBefore, 'the hidden canvas keeps its zoom');
      await page.page.locator('#compare-position').fill('30');
      assert.equal(await page.page.locator('#compare-after-overlay').evaluate((img) => (img as unknown as { style: { clipPath: string } }).style.clipPath), 'inset(0px 0px 0px 30%)');
      await page.page.click('.compare-mode[data-compare="side"]');
      assert.equal(await page.page.isVisible('#compare-side'), true);
      assert.equal(await page.page.isHidden('#compare-slider'), true);
      await page.page.keyboard.press('c');
      assert.equal(await page.page.isVisible('#canvas-stack'), true, 'C goes back to editing');
      await settle(page);
      assert.equal(await page.page.isVisible('#toggle-mask'), true);
      assert.equal(await page.page.isVisible('#zoom-level'), true);
      assert.notEqual(await page.page.textContent('#zoom-level'), '2%');
      assert.deepEqual(await page.cspViolations(), []);
    } finally {
      await page.close();
    }
  });

  it('chooses each mode, and in text mode runs with no points (the target prompt is on, off in the drag-only modes)', async () => {
    const { page, host } = await openSample();
    try {
      const disabled = () => page.page.locator('#edit-prompt').evaluate((e) => (e as unknown as { disabled: boolean }).disabled);
      const modes: string[] = [];
      for (const [downs, mode, editPromptOff] of [[2, 'freedrag', true], [1, 'text', false]] as const) {
        await page.page.locator('#mode').click();
        for (let i = 0; i < downs; i++) await page.page.keyboard.press('ArrowDown');
        await page.page.keyboard.press('Enter');
        await settle(page);
        assert.deepEqual(host.edits.at(-1), { kind: 'setMode', mode });
        assert.equal(host.model.mode, mode);
        assert.equal(await disabled(), editPromptOff, `target prompt in ${mode} mode`);
        modes.push(mode);
      }
      assert.deepEqual(modes, ['freedrag', 'text']);
      await page.page.locator('#prompt textarea').fill('a photo of a dog');
      await page.page.locator('#edit-prompt textarea').fill('a photo of a cat');
      assert.equal(host.model.points.length, 0);
      const since = page.received.length;
      await page.page.click('#run');
      await page.waitFor(isType('run'), { since });
      // The prompts typed just before are sent first, so the run sees them.
      assert.deepEqual(host.edits.slice(-2), [
        { kind: 'setPrompt', field: 'prompt', text: 'a photo of a dog' },
        { kind: 'setPrompt', field: 'editPrompt', text: 'a photo of a cat' },
      ]);
    } finally {
      await page.close();
    }
  });

  it('compares two results of two modes with each other: each shows its mode; one set as "before", before/after and side by side', async () => {
    const { page } = await openSample();
    try {
      const result = (file: string, hour: number, mode?: EditMode) => ({ file, src: `${ORIGIN}/files/${file}`, modified: Date.UTC(2026, 10, 26, hour), recipe: file.replace(/\.png$/, '.json'), ...(mode ? { mode } : {}) });
      await page.send({ type: 'results', results: [result('sample.clipdrag-2.png', 13, 'text'), result('sample.clipdrag.png', 12, 'drag'), result('sample.clipdrag-3.png', 11)] });
      await settle(page);
      // Each result says the mode its recipe names; one without a readable recipe says that.
      assert.deepEqual(await page.page.locator('#results .result-mode').allTextContents(), ['Mode: Text only (text)', 'Mode: DragDiffusion (drag)', 'Mode: not recorded (no readable recipe)']);
      await page.page.click('#results button[aria-label="Compare other results with sample.clipdrag.png"]');
      await settle(page);
      await page.page.click('#results button[aria-label="Compare sample.clipdrag-2.png with sample.clipdrag.png"]');
      await settle(page);
      assert.equal(await page.page.textContent('#compare-caption'), 'sample.clipdrag.png (DragDiffusion) vs sample.clipdrag-2.png (Text only)');
      assert.equal(await page.page.getAttribute('#compare-before-overlay', 'src'), `${ORIGIN}/files/sample.clipdrag.png`);
      assert.equal(await page.page.getAttribute('#compare-after-overlay', 'src'), `${ORIGIN}/files/sample.clipdrag-2.png`);
      await page.page.click('.compare-mode[data-compare="side"]');
      assert.equal(await page.page.getAttribute('#compare-before-side', 'src'), `${ORIGIN}/files/sample.clipdrag.png`);
      assert.equal(await page.page.getAttribute('#compare-after-side', 'src'), `${ORIGIN}/files/sample.clipdrag-2.png`);
      // Back to the source as "before".
      await page.page.click('#results button[aria-label="Compare with the source again instead of sample.clipdrag.png"]');
      await settle(page);
      assert.equal(await page.page.textContent('#compare-caption'), 'Source vs sample.clipdrag-2.png (Text only)');
      assert.equal(await page.page.getAttribute('#compare-before-side', 'src'), `${ORIGIN}/files/sample.png`);
      assert.deepEqual(await page.cspViolations(), []);
    } finally {
      await page.close();
    }
  });

  for (const theme of ['dark', 'light'] as const) {
    it(`renders the editor in a ${theme} theme (screenshot)`, async () => {
      const { page, host } = await openSample(theme, { width: 1280, height: 760 });
      try {
        await page.page.locator('#prompt textarea').fill('a red ball on a meadow, mountains behind');
        await page.page.locator('#edit-prompt textarea').fill('the red ball rolled to the right');
        await page.click(330, 390);
        await page.click(440, 392);
        await page.click(135, 315);
        await page.click(135, 250);
        await page.press('b');
        await page.page.keyboard.press(']');
        await page.page.keyboard.press(']');
        // Fill the region around the ball and where it goes, and around the tree top.
        await page.drag([[290, 365], [470, 365], [470, 395], [290, 395], [290, 425], [470, 425]]);
        await page.drag([[115, 245], [155, 245], [155, 290], [115, 290], [115, 330], [155, 330]]);
        await page.press('p');
        await page.page.mouse.move(10, 10);
        await settle(page, 200);
        assert.equal(host.model.points.length, 2);
        assert.equal(host.model.mask.strokes.length, 2);
        fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
        const file = path.join(SCREENSHOT_DIR, `editor-${theme}.png`);
        const shot = await page.page.screenshot({ path: file });
        // The theme reached the page: the side panel has the theme's sidebar colour.
        const { data, info } = await sharp(shot).raw().toBuffer({ resolveWithObject: true });
        const at = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
        assert.deepEqual(at(1275, 700), theme === 'dark' ? [0x18, 0x18, 0x18] : [0xf8, 0xf8, 0xf8]);
        assert.deepEqual(await page.cspViolations(), []);
      } finally {
        await page.close();
      }
    });
  }

  describe('on a 4000 × 3000 image', () => {
    let large: Buffer;
    before(async () => {
      large = await largeImagePng();
    });

    it('places points, paints brush strokes and pans, with input dispatched in the page', async () => {
      const { page, host } = await openLargeImage(large);
      try {
        assert.equal(await page.page.getAttribute('#canvas-stack', 'data-image-size'), `${LARGE_IMAGE.width}x${LARGE_IMAGE.height}`);
        for (let n = 0; n < 6; n++) await performInteraction(page, 'point', n);
        await settle(page);
        assert.equal(host.model.points.length, 3, 'six clicks placed three pairs');
        const [h0, t0] = [interactionStart('point', 0), interactionStart('point', 1)];
        assert.deepEqual(host.model.points[0], { handle: [h0.x, h0.y], target: [t0.x, t0.y] });

        await selectToolFor(page, 'stroke');
        for (let n = 0; n < 4; n++) await performInteraction(page, 'stroke', n);
        await settle(page);
        assert.equal(host.model.mask.strokes.length, 4, 'each stroke is one edit');
        assert.equal(host.model.mask.strokes[0]!.radius, STROKE_RADIUS);
        const bitmap = maskBitmapOf(host.model.mask, LARGE_IMAGE);
        const start = interactionStart('stroke', 0);
        assert.equal(bitmap.data[start.y * LARGE_IMAGE.width + start.x], 1, 'the first stroke painted where it started');
        assert.equal(bitmap.data[100 * LARGE_IMAGE.width + 3900], 0, 'no stroke reached the top right corner');

        await selectToolFor(page, 'pan');
        for (let n = 0; n < 4; n++) {
          const before = await page.view();
          await performInteraction(page, 'pan', n);
          const after = await page.view();
          // The view follows the pointer: it moves by the gesture's displacement on screen.
          const { dx, dy } = gestureDisplacement(interactionStart('pan', n).direction);
          assert.ok(Math.abs(after.offsetX - before.offsetX - dx * before.scale) < 2, `pan ${n} moved the view by ${after.offsetX - before.offsetX} px along x`);
          assert.ok(Math.abs(after.offsetY - before.offsetY - dy * before.scale) < 2, `pan ${n} moved the view by ${after.offsetY - before.offsetY} px along y`);
        }
        assert.equal(host.model.points.length, 3, 'panning placed no points');
        assert.equal(host.model.mask.strokes.length, 4, 'panning painted nothing');
        assert.deepEqual(page.consoleErrors, []);
      } finally {
        await page.close();
      }
    });
  });
});
