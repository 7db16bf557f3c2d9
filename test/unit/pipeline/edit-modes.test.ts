// Every mode end to end on the tiny fixture models (CPU): text (no points), drag (DragDiffusion's 80-iteration
// default), freedrag (templates and line search), with results, recipes and the per-mode prompt rules.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EditSpecError, type EditSpec } from '../../../src/shared/edit-spec';
import type { EditProgress } from '../../../src/shared/protocol';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { edit, type EditRequest } from '../../../src/sidecar/pipeline/edit/edit';
import { blobImage, tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const SIZE = 64;
const POINTS = [{ handle: [20, 32], target: [40, 32] }] as EditSpec['points'];
const FAST = { loraSteps: 0, previewInterval: 0 } as const;

describe('edit modes (tiny models, CPU)', () => {
  let dir: string;
  let tokenizer: string;
  let engine: Engine;

  before(async () => {
    dir = await tempDir('modes');
    tokenizer = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
    engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
  });
  after(async () => {
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function imageIn(name: string): Promise<string> {
    const folder = path.join(dir, name);
    await fs.mkdir(folder, { recursive: true });
    const file = path.join(folder, 'blob.png');
    await fs.writeFile(file, await encodePng(blobImage(SIZE, SIZE, 20, 32, 8)));
    return file;
  }

  const request = (imagePath: string, spec: EditSpec, extra: Partial<EditRequest> = {}): EditRequest => ({
    imagePath,
    spec,
    settings: { model: TINY_SD, clipModel: TINY_CLIP, device: 'cpu' },
    cacheDir: path.join(dir, 'cache'),
    tokenizerFolder: tokenizer,
    workingWidth: SIZE,
    engine,
    ...extra,
  });

  it('text mode: no points, both prompts; the CLIP loss falls, the image changes, the recipe names the mode and its iterations', async () => {
    const imagePath = await imageIn('text');
    const spec: EditSpec = {
      version: 1,
      mode: 'text',
      prompt: 'a bright blob on a dark background',
      editPrompt: 'a photo of a cat',
      points: [],
      parameters: { ...FAST, dragSteps: 6, latentLearningRate: 0.05 },
    };
    const clipLosses: number[] = [];
    const outcome = await edit(request(imagePath, spec), {
      onProgress: (p: EditProgress) => {
        if (p.stage === 'drag' && p.losses?.clip !== undefined) clipLosses.push(p.losses.clip);
      },
    });
    assert.equal(outcome.iterations, 6);
    assert.deepEqual(outcome.finalHandles, []);
    assert.equal(clipLosses.length, 6);
    assert.ok(clipLosses.at(-1)! < clipLosses[0]!, `CLIP loss did not fall: ${clipLosses.join(', ')}`);
    assert.equal(outcome.recipe.spec.mode, 'text');
    assert.equal(outcome.recipe.pipeline.guidanceText, 'a photo of a cat');
    assert.equal(outcome.recipe.pipeline.tracking, 'none');
    await fs.access(outcome.imagePath);
  });

  it('drag mode records DragDiffusion\'s 80 iterations in its recipe when none were given', async () => {
    const imagePath = await imageIn('defaults');
    const dragged = await edit(request(imagePath, { version: 1, mode: 'drag', prompt: '', points: POINTS, parameters: FAST }));
    assert.equal(dragged.recipe.spec.parameters?.dragSteps, 80);
    assert.ok(dragged.iterations <= 80);
  });

  it('freedrag mode: templates walk the line to the target without point tracking; the recipe names the mode and FreeDrag\'s defaults', async () => {
    const imagePath = await imageIn('freedrag');
    const spec: EditSpec = { version: 1, mode: 'freedrag', prompt: 'a bright blob on a dark background', points: POINTS, parameters: { ...FAST, dragSteps: 60 } };
    const handles: number[][] = [];
    const outcome = await edit(request(imagePath, spec), {
      onProgress: (p) => {
        if (p.stage === 'drag' && p.handles?.[0]) handles.push([...p.handles[0]]);
      },
    });
    const p = outcome.recipe.spec.parameters!;
    assert.equal(outcome.recipe.spec.mode, 'freedrag');
    assert.equal(p.motionRadius, 4);
    assert.equal(p.maskWeight, 10);
    assert.equal(p.freedragExpectedLoss, 1);
    assert.equal(p.freedragMaxDistance, 5);
    assert.equal(outcome.recipe.pipeline.tracking, 'none');
    assert.equal(outcome.recipe.pipeline.guidanceText, null);
    // The template position moves along handle → target (y stays on the line, x grows toward 40).
    const last = outcome.finalHandles[0]!;
    assert.ok(last[0] > 20, `template did not move toward the target: ${last}`);
    assert.ok(Math.abs(last[1] - 32) < 1e-6, `template left the handle → target line: ${last}`);
    assert.ok(handles.length === outcome.iterations && outcome.iterations > 0);
    await fs.access(outcome.recipePath);
  });

  it('says what a mode needs before any model work: text needs both prompts and no points, the drag modes points', async () => {
    const imagePath = await imageIn('prompts');
    const noModels = { settings: { model: path.join(dir, 'missing-model'), device: 'cpu' as const } };
    const text = (prompt: string, editPrompt: string | undefined, points: EditSpec['points'] = []): EditSpec => ({
      version: 1, mode: 'text', prompt, ...(editPrompt !== undefined ? { editPrompt } : {}), points,
    });
    await assert.rejects(edit(request(imagePath, text('a blob', '   '), noModels)), (error) => error instanceof EditSpecError && /\$\.editPrompt: is empty; text mode needs an edit prompt/.test(error.message));
    await assert.rejects(edit(request(imagePath, text('a blob', undefined), noModels)), (error) => error instanceof EditSpecError && /\$\.editPrompt: missing/.test(error.message));
    await assert.rejects(edit(request(imagePath, text(' \n', 'a cat'), noModels)), (error) => error instanceof EditSpecError && /\$\.prompt: is empty; text mode needs a prompt/.test(error.message));
    await assert.rejects(edit(request(imagePath, text('a blob', 'a cat', POINTS), noModels)), (error) => error instanceof EditSpecError && /takes no points/.test(error.message));
    for (const mode of ['drag', 'freedrag', 'clipdrag'] as const) {
      await assert.rejects(edit(request(imagePath, { version: 1, mode, prompt: 'a blob', points: [] }, noModels)), (error) => error instanceof EditSpecError && new RegExp(`${mode} mode drags points`).test(error.message));
    }
  });
});
