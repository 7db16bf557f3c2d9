// Planning a batch: path safety (nothing a spec or a pickle names may lead out of the folder), resume (an item whose
// result recipe matches its current spec, parameters and models is done), and the time estimate. The resume cases
// run real edits with the tiny fixture models and then change one thing at a time.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BatchOptions, BatchPlanItem } from '../../../src/shared/batch';
import { serializeEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import { runPlannedBatch } from '../../../src/sidecar/batch/batch-service';
import { BatchFolderError, planBatch } from '../../../src/sidecar/batch/plan';
import { describePlan } from '../../../src/sidecar/cli/batch-command';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { BATCH_TEST_PARAMETERS, DRAGBENCH_SAMPLE_PICKLE, batchSpec } from '../../support/batch-folder';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

let dir: string;

before(async () => {
  dir = await fs.realpath(await tempDir('batch-plan'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function write(file: string, data: string | Uint8Array): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, data);
}

const blobPng = (cx = 20) => encodePng(blobImage(64, 64, cx, 32, 8));
const itemOf = (items: BatchPlanItem[], image: string) => {
  const item = items.find((i) => i.image === image);
  assert.ok(item, `no item ${image} in ${JSON.stringify(items.map((i) => i.image))}`);
  return item;
};

describe('planBatch: path safety', () => {
  let root: string;
  let outside: string;

  before(async () => {
    root = path.join(dir, 'safety');
    outside = path.join(dir, 'safety-outside');
    const png = await blobPng();
    await write(path.join(outside, 'secret.png'), png);
    await write(path.join(outside, 'mask.png'), png);
    await write(path.join(outside, 'spec.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }])));
    await write(path.join(outside, 'meta_data.pkl'), await fs.readFile(DRAGBENCH_SAMPLE_PICKLE));
    await fs.mkdir(path.join(outside, 'sd-model'), { recursive: true });
    const spec = (extra: Partial<EditSpec>) => serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }], extra));

    for (const name of ['up.png', 'absolute.png', 'linked-mask.png', 'model-up.png', 'model-absolute.png', 'model-home.png', 'model-hub.png', 'model-inside.png']) {
      await write(path.join(root, name), png);
    }
    await write(path.join(root, 'up.png.clipdrag-edit.json'), spec({ mask: '../safety-outside/mask.png' }));
    await write(path.join(root, 'absolute.png.clipdrag-edit.json'), spec({ mask: path.join(outside, 'mask.png') }));
    await fs.mkdir(path.join(root, 'masks'));
    await fs.symlink(path.join(outside, 'mask.png'), path.join(root, 'masks', 'out.png'));
    await write(path.join(root, 'linked-mask.png.clipdrag-edit.json'), spec({ mask: 'masks/out.png' }));
    // Model folders a spec names must be inside the folder too (hub ids come from the model cache).
    await write(path.join(root, 'model-up.png.clipdrag-edit.json'), spec({ model: '../safety-outside/sd-model' }));
    await write(path.join(root, 'model-absolute.png.clipdrag-edit.json'), spec({ clipModel: path.join(outside, 'sd-model') }));
    await write(path.join(root, 'model-home.png.clipdrag-edit.json'), spec({ model: '~/' }));
    await write(path.join(root, 'model-hub.png.clipdrag-edit.json'), spec({ model: 'someone/some-model@main' }));
    await fs.mkdir(path.join(root, 'models', 'sd'), { recursive: true });
    await write(path.join(root, 'model-inside.png.clipdrag-edit.json'), spec({ model: 'models/sd' }));
    // The image or the spec itself linked to a file outside.
    await fs.symlink(path.join(outside, 'secret.png'), path.join(root, 'linked-image.png'));
    await write(path.join(root, 'linked-image.png.clipdrag-edit.json'), spec({}));
    await write(path.join(root, 'linked-spec.png'), png);
    await fs.symlink(path.join(outside, 'spec.json'), path.join(root, 'linked-spec.png.clipdrag-edit.json'));
    // DragBench samples with their image or their meta data linked outside.
    await write(path.join(root, 'bench', 'a', 'meta_data.pkl'), await fs.readFile(DRAGBENCH_SAMPLE_PICKLE));
    await fs.symlink(path.join(outside, 'secret.png'), path.join(root, 'bench', 'a', 'original_image.png'));
    await write(path.join(root, 'bench', 'b', 'original_image.png'), png);
    await fs.symlink(path.join(outside, 'meta_data.pkl'), path.join(root, 'bench', 'b', 'meta_data.pkl'));
  });

  it('refuses every path that leads out of the folder, with a reason, and plans the rest', async () => {
    const { plan } = await planBatch({ folder: root, dragBenchParameters: BATCH_TEST_PARAMETERS });
    const refused = (image: string, pattern: RegExp) => {
      const item = itemOf(plan.items, image);
      assert.equal(item.state, 'invalid', `${image} should be refused`);
      assert.match(item.problem!, pattern);
    };
    refused('up.png', /\$\.mask: "\.\.\/safety-outside\/mask\.png" leaves the image's folder \(".."\)/);
    refused('absolute.png', /\$\.mask: ".*safety-outside\/mask\.png" is absolute; expected a path relative to the spec inside the image's folder/);
    refused('linked-mask.png', /^The mask "masks\/out\.png" named by linked-mask\.png\.clipdrag-edit\.json leads through a symbolic link to .*safety-outside\/mask\.png, outside the folder/);
    refused('model-up.png', /^The Stable Diffusion model folder ".*safety-outside\/sd-model" named by model-up\.png\.clipdrag-edit\.json points outside the folder/);
    refused('model-absolute.png', /^The CLIP model folder ".*safety-outside\/sd-model" named by model-absolute\.png\.clipdrag-edit\.json points outside the folder/);
    refused('model-home.png', /Stable Diffusion model folder .* points outside the folder/);
    refused('linked-image.png', /^The image "linked-image\.png" named by linked-image\.png\.clipdrag-edit\.json leads through a symbolic link to .*safety-outside\/secret\.png, outside the folder/);
    refused('linked-spec.png', /^The edit spec "linked-spec\.png\.clipdrag-edit\.json" leads through a symbolic link to .*safety-outside\/spec\.json, outside the folder/);
    refused('bench/a/original_image.png', /^The image "bench\/a\/original_image\.png" named by bench\/a\/meta_data\.pkl leads through a symbolic link/);
    refused('bench/b/original_image.png', /^The DragBench meta data "bench\/b\/meta_data\.pkl" leads through a symbolic link to .*safety-outside\/meta_data\.pkl/);
    assert.equal(itemOf(plan.items, 'model-hub.png').state, 'pending');
    assert.equal(itemOf(plan.items, 'model-inside.png').state, 'pending');
    assert.equal(plan.counts.invalid, 10);
    assert.equal(plan.counts.pending, 2);
  });

  it('refuses a folder that is not an absolute path to a folder', async () => {
    await assert.rejects(planBatch({ folder: 'relative/folder' }), (e: unknown) => e instanceof BatchFolderError && /must be an absolute path/.test(e.message));
    await assert.rejects(planBatch({ folder: path.join(root, 'up.png') }), (e: unknown) => e instanceof BatchFolderError && /is not a folder/.test(e.message));
    await assert.rejects(planBatch({ folder: path.join(root, 'nothing-here') }), (e: unknown) => e instanceof BatchFolderError && /cannot be opened \(ENOENT\)/.test(e.message));
  });
});

describe('planBatch: DragBench meta data', () => {
  it('plans a sample with a 1 MiB prompt and a 512 × 512 mask, and names the file and the reason for a damaged one', async () => {
    const root = path.join(dir, 'dragbench-large');
    const large = await fs.readFile(path.resolve(__dirname, '..', '..', 'fixtures', 'batch', 'pickles', 'large-dragbench-python2.pkl'));
    const png512 = await encodePng(blobImage(512, 512, 100, 200, 20));
    await write(path.join(root, 'large', 'original_image.png'), png512);
    await write(path.join(root, 'large', 'meta_data.pkl'), large);
    await write(path.join(root, 'cut', 'original_image.png'), png512);
    await write(path.join(root, 'cut', 'meta_data.pkl'), large.subarray(0, 600_000));
    const { plan } = await planBatch({ folder: root, dragBenchParameters: BATCH_TEST_PARAMETERS });
    const planned = itemOf(plan.items, 'large/original_image.png');
    assert.equal(planned.state, 'pending', planned.problem);
    const cut = itemOf(plan.items, 'cut/original_image.png');
    assert.equal(cut.state, 'invalid');
    assert.match(cut.problem!, /^Cannot read cut\/meta_data\.pkl: it is cut off: an item needs \d+ bytes, but only \d+ remain \(at byte \d+\)\.$/);
  });
});

describe('planBatch: resume and estimates (tiny models, CPU)', () => {
  let root: string;
  let engine: Engine;
  let options: BatchOptions;
  const SPEC_IMAGE = 'cats/blob.png';
  const SAMPLE_IMAGE = 'bench/animals/s1/original_image.png';
  const specFile = () => path.join(root, `${SPEC_IMAGE}.clipdrag-edit.json`);
  const writeSpec = (parameters: Partial<EditSpec['parameters']> = {}) =>
    write(specFile(), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }], { parameters: { ...BATCH_TEST_PARAMETERS, ...parameters } })));
  const states = async (extra: Partial<BatchOptions> = {}) => {
    const { plan } = await planBatch({ ...options, ...extra });
    return { spec: itemOf(plan.items, SPEC_IMAGE).state, sample: itemOf(plan.items, SAMPLE_IMAGE).state, plan };
  };

  before(async () => {
    root = path.join(dir, 'resume');
    await write(path.join(root, SPEC_IMAGE), await blobPng());
    await writeSpec();
    await write(path.join(root, SAMPLE_IMAGE), await blobPng());
    await write(path.join(root, 'bench', 'animals', 's1', 'meta_data.pkl'), await fs.readFile(DRAGBENCH_SAMPLE_PICKLE));
    const model = await tinySdWithTokenizer(dir);
    options = { folder: root, model, clipModel: TINY_CLIP, device: 'cpu', workingWidth: 64, dragBenchParameters: BATCH_TEST_PARAMETERS };
    engine = new Engine({ cacheDir: path.join(dir, 'sessions') });
  });
  after(async () => {
    await engine.close();
  });

  it('estimates with the conservative default before any result exists', async () => {
    const { spec, sample, plan } = await states();
    assert.equal(spec, 'pending');
    assert.equal(sample, 'pending');
    assert.equal(plan.estimate.basis, 'default');
    assert.equal(plan.estimate.recipes, 0);
    assert.ok(plan.estimate.seconds > 0);
    assert.equal(plan.estimate.seconds, plan.items.reduce((sum, item) => sum + (item.estimateSeconds ?? 0), 0));
  });

  it('marks items done once their results exist, and pending again when what they depend on changes', async () => {
    const report = await runPlannedBatch(await planBatch(options), options, { engine, cacheDir: path.join(dir, 'cache') });
    assert.deepEqual(report.items.map((i) => i.status), ['succeeded', 'succeeded']);

    let now = await states();
    assert.deepEqual([now.spec, now.sample], ['done', 'done']);
    assert.equal(itemOf(now.plan.items, SPEC_IMAGE).result, 'cats/blob.clipdrag.png');
    assert.equal(itemOf(now.plan.items, SAMPLE_IMAGE).result, 'bench/animals/s1/original_image.clipdrag.png');
    assert.equal(now.plan.counts.done, 2);
    assert.equal(now.plan.estimate.seconds, 0);
    // A rerun with every result there still knows its earlier results, and says there is nothing to run.
    assert.equal(now.plan.estimate.basis, 'previous-results');
    assert.equal(now.plan.estimate.recipes, 2);
    assert.deepEqual(describePlan(now.plan).slice(1), ['nothing to run (use --force to run done items again)']);

    // Previews do not change the result.
    await writeSpec({ previewInterval: 5 });
    assert.equal((await states()).spec, 'done');
    // A parameter does.
    await writeSpec({ dragSteps: 4 });
    now = await states();
    assert.deepEqual([now.spec, now.sample], ['pending', 'done']);
    // From previous results: rates per stage of the recipes with the same model.
    assert.equal(now.plan.estimate.basis, 'previous-results');
    assert.equal(now.plan.estimate.recipes, 2);
    assert.ok(now.plan.estimate.seconds > 0 && now.plan.estimate.seconds < 600, `estimate ${now.plan.estimate.seconds} s for one tiny edit`);
    await writeSpec();
    assert.equal((await states()).spec, 'done');

    // Batch-level settings: DragBench parameters touch only samples; models and working width touch both.
    now = await states({ dragBenchParameters: { ...BATCH_TEST_PARAMETERS, seed: 7 } });
    assert.deepEqual([now.spec, now.sample], ['done', 'pending']);
    now = await states({ clipModel: path.join(dir, 'tiny-sd15-with-tokenizer') });
    assert.deepEqual([now.spec, now.sample], ['pending', 'pending']);
    now = await states({ workingWidth: 128 });
    assert.deepEqual([now.spec, now.sample], ['pending', 'pending']);
    now = await states({ force: true });
    assert.deepEqual([now.spec, now.sample], ['pending', 'pending']);

    // The source image's bytes.
    const image = path.join(root, SPEC_IMAGE);
    const original = await fs.readFile(image);
    await fs.writeFile(image, await blobPng(22));
    assert.equal((await states()).spec, 'pending');
    await fs.writeFile(image, original);
    assert.equal((await states()).spec, 'done');

    // The result must still be there, and its recipe readable.
    const result = path.join(root, 'cats', 'blob.clipdrag.png');
    const recipe = path.join(root, 'cats', 'blob.clipdrag.json');
    await fs.rename(result, `${result}.away`);
    assert.equal((await states()).spec, 'pending');
    await fs.rename(`${result}.away`, result);
    const recipeText = await fs.readFile(recipe, 'utf8');
    await fs.writeFile(recipe, recipeText.slice(0, 100));
    assert.equal((await states()).spec, 'pending');
    await fs.writeFile(recipe, recipeText);
    assert.equal((await states()).spec, 'done');

    // A recipe that is a link to a file outside the folder is not read.
    const outsideRecipe = path.join(dir, 'outside-recipe.json');
    await fs.rename(recipe, outsideRecipe);
    await fs.symlink(outsideRecipe, recipe);
    assert.equal((await states()).spec, 'pending');
    await fs.rm(recipe);
    await fs.rename(outsideRecipe, recipe);
    assert.equal((await states()).spec, 'done');
  });
});
