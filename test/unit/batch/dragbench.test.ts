import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeMaskRle, type RleMask } from '../../../src/shared/edit-spec';
import { DragBenchSampleError, MAX_META_BYTES, dragBenchSpec, readDragBenchMeta } from '../../../src/sidecar/batch/dragbench';
import { PickleError, readPickle } from '../../../src/sidecar/formats/pickle';
import { tempDir } from '../../support/tiny-pipeline';

const PICKLES = path.resolve(__dirname, '..', '..', 'fixtures', 'batch', 'pickles');
const fixture = (name: string) => readPickle(readFileSync(path.join(PICKLES, `${name}.pkl`)));
const SIZE_8x6 = { width: 8, height: 6 };

/** A pickle dict built in the test (keys → values), as readPickle would return it. */
function meta(entries: Record<string, unknown>): Map<string, never> {
  return new Map(Object.entries(entries)) as Map<string, never>;
}

function assertSampleError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof DragBenchSampleError, String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

describe('DragBench meta data → edit spec', () => {
  for (const name of ['dragbench-numpy1-p2', 'dragbench-numpy1-p3', 'dragbench-numpy1-p4', 'dragbench-numpy2-p4', 'dragbench-numpy2-p5']) {
    it(`maps ${name}.pkl: points paired in order, mask 1 = editable, prompt as the only prompt`, () => {
      const spec = dragBenchSpec(fixture(name), SIZE_8x6, 'animals/cat/meta_data.pkl');
      assert.equal(spec.mode, 'clipdrag');
      assert.equal(spec.prompt, 'a photo of a cat');
      assert.equal(spec.editPrompt, undefined, 'the edit prompt defaults to the prompt');
      assert.deepEqual(spec.points, [
        { handle: [2, 1], target: [5, 2] },
        { handle: [6, 4], target: [7, 5] },
      ]);
      const mask = decodeMaskRle(spec.mask as RleMask);
      assert.equal(mask.width, 8);
      assert.equal(mask.height, 6);
      // make-pickles.py: mask[1:4, 2:6] = 1
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 8; x++) assert.equal(mask.data[y * 8 + x], y >= 1 && y < 4 && x >= 2 && x < 6 ? 1 : 0, `(${x}, ${y})`);
      }
      assert.equal(spec.parameters, undefined);
    });
  }

  it('treats an all-zero (float) mask as no mask drawn', () => {
    const spec = dragBenchSpec(fixture('dragbench-nomask-p4'), { width: 32, height: 24 }, 'meta_data.pkl');
    assert.equal(spec.mask, undefined);
    assert.deepEqual(spec.points, [{ handle: [10, 12], target: [20, 12] }]);
  });

  it('takes the batch parameters (DragBench samples carry none)', () => {
    const spec = dragBenchSpec(fixture('dragbench-numpy1-p4'), SIZE_8x6, 'meta_data.pkl', { dragSteps: 40, fusionWeight: 0.3 });
    assert.deepEqual(spec.parameters, { dragSteps: 40, fusionWeight: 0.3 });
  });

  it('refuses samples that do not make an edit, naming the file and the field', () => {
    const label = 'art_work/x/meta_data.pkl';
    const mask = fixture('dragbench-numpy1-p4') as Map<string, unknown>;
    assertSampleError(() => dragBenchSpec(fixture('dragbench-numpy1-p4'), { width: 16, height: 6 }, label), /^art_work\/x\/meta_data\.pkl: 'mask' has shape \(6, 8\), but original_image\.png is 16 × 6; expected \(6, 16\)\.$/);
    assertSampleError(() => dragBenchSpec(meta({ prompt: 'p', points: [[1, 1]], mask: null }), SIZE_8x6, label), /'points' holds 1 points; they alternate handle and target, so their number must be even/);
    assertSampleError(() => dragBenchSpec(meta({ points: [], mask: null }), SIZE_8x6, label), /'prompt' is missing; expected the text/);
    assertSampleError(() => dragBenchSpec(meta({ prompt: 'p', points: [[1, 1, 1], [2, 2]] }), SIZE_8x6, label), /'points'\[0\] is a list of 3; expected an \(x, y\) pair of numbers/);
    assertSampleError(() => dragBenchSpec(meta({ prompt: 'p', points: 'nope' }), SIZE_8x6, label), /'points' is a str; expected a list of \(x, y\) pairs/);
    assertSampleError(() => dragBenchSpec(meta({ prompt: 'p', points: [], mask: mask.get('mask') }), SIZE_8x6, label), /does not make a valid edit:\n {2}\$\.points: .*at least one/);
    assertSampleError(() => dragBenchSpec(meta({ prompt: 'p', points: [[1, 1], [9, 1]], mask: null }), SIZE_8x6, label), /\$\.points\[0\]\.target\[0\]: x = 9 is outside the image/);
    assertSampleError(() => dragBenchSpec(['not', 'a', 'dict'], SIZE_8x6, label), /holds a list; a DragBench meta_data\.pkl holds a dict/);
    assertSampleError(() => dragBenchSpec(fixture('dragbench-numpy1-p4'), SIZE_8x6, label, { dragSteps: -1 }), /\$\.parameters\.dragSteps/);
  });
});

describe('readDragBenchMeta', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('dragbench');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses a pickle that asks for code, without running it', async () => {
    const file = path.join(dir, 'meta_data.pkl');
    await fs.copyFile(path.join(PICKLES, 'evil-os-system-p2.pkl'), file);
    await assert.rejects(readDragBenchMeta(file, 'animals/evil/meta_data.pkl'), (error: unknown) => {
      assert.ok(error instanceof PickleError);
      assert.match(error.message, /^Unsupported object posix\.system in animals\/evil\/meta_data\.pkl/);
      return true;
    });
  });

  it('does not read a file far larger than a meta_data.pkl', async () => {
    const file = path.join(dir, 'huge.pkl');
    const handle = await fs.open(file, 'w');
    await handle.truncate(MAX_META_BYTES + 1);
    await handle.close();
    await assert.rejects(readDragBenchMeta(file, 'huge/meta_data.pkl'), /huge\/meta_data\.pkl is \d+ bytes; a DragBench meta_data\.pkl is far smaller/);
  });
});
