// The editor page on a 4000 × 3000 image, and its three interactions (place a point, paint a brush stroke, pan)
// dispatched in the page and timed there. Shared by the webview test (which checks what the interactions do) and
// bench/editor.ts (which reports how long they take).
import sharp from 'sharp';
import type { FromWebviewMessage } from '../../src/shared/webview-messages';
import { EditorPage, ORIGIN, settle } from './harness';
import { TestHost } from './test-host';

export const LARGE_IMAGE = { name: 'large.png', width: 4000, height: 3000 } as const;

/** Brush radius of the strokes, in image pixels (the brush-size slider's value). */
export const STROKE_RADIUS = 80;

/** Pointer moves in a stroke or a pan gesture; each move advances 25 image pixels to the right (or left). */
export const GESTURE_MOVES = 40;
export const GESTURE_STEP = 25;

export type Interaction = 'point' | 'stroke' | 'pan';
export const INTERACTIONS: readonly Interaction[] = ['point', 'stroke', 'pan'];

/** Times of one interaction, measured in the page. */
export interface InteractionTiming {
  /** From the first pointer event to the return of the last one's handler. */
  readonly handlerMs: number;
  /** The frame's canvas calls, plus rasterising them. */
  readonly drawMs: number;
  /** From the first pointer event to the drawn frame (includes waiting for the next frame). */
  readonly totalMs: number;
}

/** Red and green gradients with an XOR texture in blue: no flat areas the codec or the canvas could shortcut. */
export async function largeImagePng(): Promise<Buffer> {
  const { width, height } = LARGE_IMAGE;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = ((x ^ y) & 255) >> 1;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

/** Opens the page on the image (1280 × 800 window) and waits until the image and its downscaled copies are ready. */
export async function openLargeImage(png: Buffer): Promise<{ page: EditorPage; host: TestHost }> {
  const page = await EditorPage.open({ files: { [LARGE_IMAGE.name]: png }, imageName: LARGE_IMAGE.name, size: { width: 1280, height: 800 } });
  const host = new TestHost(page, { src: `${ORIGIN}/files/${LARGE_IMAGE.name}`, name: LARGE_IMAGE.name });
  try {
    await page.waitFor((m: FromWebviewMessage): m is Extract<FromWebviewMessage, { type: 'imageLoaded' }> => m.type === 'imageLoaded', { since: 0, timeoutMs: 30_000 });
    await settle(page, 1500); // downscaled copies are built after loading
  } catch (error) {
    await page.close();
    throw error;
  }
  return { page, host };
}

/** Selects the tool the interaction needs (for strokes, a brush of STROKE_RADIUS). */
export async function selectToolFor(page: EditorPage, interaction: Interaction): Promise<void> {
  await page.press(interaction === 'point' ? 'p' : interaction === 'stroke' ? 'b' : 'h');
  if (interaction === 'stroke') await page.page.locator('#brush-size').fill(String(STROKE_RADIUS));
}

/**
 * Where the n-th repetition of an interaction starts, in image pixels, and which way a gesture moves. Points go
 * on a grid of distinct places (a click on an existing point would select it instead of placing one); strokes
 * repeat over five rows; pans alternate right and left so that the image stays in view.
 */
export function interactionStart(interaction: Interaction, n: number): { x: number; y: number; direction: 1 | -1 } {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`repetition index must be a non-negative integer, got ${n}`);
  if (interaction === 'point') {
    if (n >= 36) throw new RangeError(`at most 36 points fit the grid of distinct places; repetition ${n} asked for`);
    return { x: 500 + (n % 9) * 400, y: 800 + (n % 2) * 900 + Math.floor(n / 9) * 200, direction: 1 };
  }
  if (interaction === 'stroke') return { x: 400, y: 600 + (n % 5) * 500, direction: 1 };
  return { x: 2000, y: 1500, direction: n % 2 === 0 ? 1 : -1 };
}

/**
 * Runs in the page (as source text: the compiler's helpers do not exist there). Presses at image pixel (x, y),
 * for a gesture moves `moves` times by `step` pixels along x (and a sine along y), releases, and waits for the
 * frame that shows it.
 */
const MEASURE_IN_PAGE = `async ({ gesture, x, y, moves, step }) => {
  const stack = document.getElementById('canvas-stack');
  const box = stack.getBoundingClientRect();
  const view = JSON.parse(stack.dataset.view);
  const at = (ix, iy, buttons) => ({
    clientX: box.left + view.offsetX + (ix + 0.5) * view.scale,
    clientY: box.top + view.offsetY + (iy + 0.5) * view.scale,
    button: 0, buttons, pointerId: 1, pointerType: 'mouse', isPrimary: true, bubbles: true,
  });
  const started = performance.now();
  stack.dispatchEvent(new PointerEvent('pointerdown', at(x, y, 1)));
  let last = [x, y];
  if (gesture) {
    for (let i = 1; i <= moves; i++) {
      last = [x + i * step, y + Math.sin(i / 4) * 200];
      stack.dispatchEvent(new PointerEvent('pointermove', at(last[0], last[1], 1)));
    }
  }
  stack.dispatchEvent(new PointerEvent('pointerup', at(last[0], last[1], 0)));
  const handled = performance.now();
  await new Promise((resolve) => requestAnimationFrame(resolve));
  // Canvas drawing is recorded and rasterised later: reading a pixel of each layer forces the rasterisation now,
  // so the total includes it.
  const flushStarted = performance.now();
  for (const id of ['layer-image', 'layer-mask', 'layer-overlay']) document.getElementById(id).getContext('2d').getImageData(0, 0, 1, 1);
  const flushed = performance.now();
  return { handlerMs: handled - started, drawMs: Number(stack.dataset.frameMs) + (flushed - flushStarted), totalMs: flushed - started };
}`;

/**
 * The n-th repetition of an interaction (the tool selected with selectToolFor), as synthetic pointer events
 * dispatched in the page: the time measured is the editor's, not the test driver's.
 */
export function performInteraction(page: EditorPage, interaction: Interaction, n: number): Promise<InteractionTiming> {
  const { x, y, direction } = interactionStart(interaction, n);
  const args = { gesture: interaction !== 'point', x, y, moves: GESTURE_MOVES, step: GESTURE_STEP * direction };
  return page.page.evaluate(`(${MEASURE_IN_PAGE})(${JSON.stringify(args)})`) as Promise<InteractionTiming>;
}

/** How far a gesture moves the pointer, in image pixels: the end of the last move minus the press. */
export function gestureDisplacement(direction: 1 | -1): { dx: number; dy: number } {
  return { dx: GESTURE_MOVES * GESTURE_STEP * direction, dy: Math.sin(GESTURE_MOVES / 4) * 200 };
}
