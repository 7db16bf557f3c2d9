// The memory policy: the rematerialisation mode an edit's gradient graphs use, chosen from their static estimate
// and the device's memory; forced by the user's setting; an edit that cannot fit fails before any model runs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EditSpec } from '../../../src/shared/edit-spec';
import type { EditProgress, Precision } from '../../../src/shared/protocol';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { edit } from '../../../src/sidecar/pipeline/edit/edit';
import { openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { readEditInput, workingGeometry } from '../../../src/sidecar/pipeline/edit/edit-input';
import { planEditMemory } from '../../../src/sidecar/pipeline/edit/edit-memory';
import { MemoryBudgetError, deviceMemory, type DeviceMemory } from '../../../src/sidecar/pipeline/runtime/memory-policy';
import { blobImage, tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const SIZE = 64;
const GB = 2 ** 30;
const spec: EditSpec = {
  version: 1,
  mode: 'clipdrag',
  prompt: 'a bright blob',
  editPrompt: 'move the blob to the right',
  points: [{ handle: [20, 32], target: [40, 32] }],
  parameters: { loraSteps: 1, dragSteps: 1, previewInterval: 0 },
};
const memoryOf = (totalBytes: number, availableBytes = totalBytes): DeviceMemory => ({ totalBytes, availableBytes, source: 'test memory' });

describe('memory policy', () => {
  let dir: string;
  let tokenizer: string;
  let imagePath: string;

  before(async () => {
    dir = await tempDir('memory-policy');
    tokenizer = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
    imagePath = path.join(dir, 'blob.png');
    await fs.writeFile(imagePath, await encodePng(blobImage(SIZE, SIZE, 20, 32, 8)));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  async function plan(memory: DeviceMemory | null, preference: 'auto' | 'attention' | 'blocks' = 'auto', precision: Precision = 'fp32', halveWeightsIfNeeded = false) {
    const models = await openPipelineModels({ stableDiffusionFolder: TINY_SD, clipFolder: TINY_CLIP, tokenizerFolder: tokenizer, precision, cacheDir: path.join(dir, 'cache') });
    const input = await readEditInput({ imagePath, spec });
    const geometry = workingGeometry(input, SIZE, 8);
    return planEditMemory({ models, input, geometry, guided: true, precision, halveWeightsIfNeeded, device: 'cpu', preference, memory });
  }

  it('takes the mode that recomputes least among those that fit, and says why', async () => {
    const roomy = await plan(memoryOf(64 * GB));
    assert.equal(roomy.recompute, 'attention');
    assert.equal(roomy.forced, false);
    assert.match(roomy.reason, /memory policy "attention" \(auto\): the (drag step|LoRA training step) ≈ .* GB .* budget .* of test memory.*it fits/);

    // A budget between the two estimates: only block rematerialisation fits.
    const attention = roomy.estimate!.largest.peakBytes;
    const blocksPlan = await plan(memoryOf(64 * GB), 'blocks');
    const blocks = blocksPlan.estimate!.largest.peakBytes;
    assert.ok(blocks < attention, `blocks ${blocks} < attention ${attention}`);
    const between = (attention + blocks) / 2;
    // 4 GiB in all keeps the 1 GiB reserve: the budget is what is free beyond it.
    const tight = await plan(memoryOf(4 * GB, between + GB));
    assert.equal(tight.recompute, 'blocks');
    assert.match(tight.reason, /"attention" would not/);
  });

  it('fails with the estimate and what to change when no mode fits', async () => {
    await assert.rejects(plan(memoryOf(64 * 2 ** 20)), (error) => {
      assert.ok(error instanceof MemoryBudgetError);
      assert.match(error.message, /does not fit in memory: even recomputing whole blocks, the .* ≈ .* GB/);
      assert.match(error.message, /smaller working width \(now 64×64/);
      assert.match(error.message, /Nothing was run/);
      return true;
    });
  });

  it('a forced mode is kept even when it may not fit; an unknown device memory keeps the default', async () => {
    const forced = await plan(memoryOf(64 * 2 ** 20), 'attention');
    assert.equal(forced.recompute, 'attention');
    assert.equal(forced.forced, true);
    assert.match(forced.reason, /set by the user.*may not fit/);
    const unknown = await plan(null);
    assert.equal(unknown.recompute, 'attention');
    assert.equal(unknown.estimate, null);
    assert.match(unknown.reason, /reports no memory figure/);
  });

  it('fp16 estimates less than fp32', async () => {
    const fp32 = await plan(memoryOf(64 * GB), 'attention', 'fp32');
    const fp16 = await plan(memoryOf(64 * GB), 'attention', 'fp16');
    assert.ok(fp16.estimate!.largest.weightBytes < fp32.estimate!.largest.weightBytes);
  });

  it('with auto precision, holds the weights in float16 only when no float32 plan fits; fp16-weights counts half the weight bytes', async () => {
    const fp32Blocks = (await plan(memoryOf(64 * GB), 'blocks')).estimate!.largest;
    const halfBlocks = (await plan(memoryOf(64 * GB), 'blocks', 'fp16-weights')).estimate!.largest;
    assert.equal(halfBlocks.weightBytes * 2, fp32Blocks.weightBytes);
    assert.equal(halfBlocks.savedActivationBytes, fp32Blocks.savedActivationBytes);
    const roomy = await plan(memoryOf(64 * GB), 'auto', 'fp32', true);
    assert.equal(roomy.precision, 'fp32', 'float32 weights while they fit');

    const between = (fp32Blocks.peakBytes + halfBlocks.peakBytes) / 2;
    const tight = memoryOf(4 * GB, between + GB);
    const halved = await plan(tight, 'auto', 'fp32', true);
    assert.equal(halved.precision, 'fp16-weights');
    assert.match(halved.reason, /with fp16-weights \(float16 weights, float32 arithmetic\) \(auto\): .* would not/);
    // An explicit fp32 keeps float32 weights and says what would fit.
    await assert.rejects(plan(tight, 'auto', 'fp32', false), (error) => error instanceof MemoryBudgetError && /use fp16-weights precision/.test(error.message));
    // A forced mode with auto precision halves the weights when that is what fits.
    const forced = await plan(tight, 'blocks', 'fp32', true);
    assert.deepEqual([forced.precision, forced.recompute, forced.forced], ['fp16-weights', 'blocks', true]);
  });

  it('reads the CPU device memory from the system', () => {
    const memory = deviceMemory('cpu')!;
    assert.ok(memory.totalBytes > 0 && memory.availableBytes > 0 && memory.availableBytes <= memory.totalBytes);
  });

  it('an edit that cannot fit fails before any graph is compiled; the chosen policy is logged', async () => {
    class CountingEngine extends Engine {
      compiles = 0;
      override async compile(...args: Parameters<Engine['compile']>): ReturnType<Engine['compile']> {
        this.compiles++;
        return super.compile(...args);
      }
    }
    const engine = new CountingEngine({ cacheDir: path.join(dir, 'sessions') });
    try {
      const request = {
        imagePath,
        spec,
        settings: { model: TINY_SD, clipModel: TINY_CLIP, device: 'cpu' as const },
        cacheDir: path.join(dir, 'cache'),
        tokenizerFolder: tokenizer,
        workingWidth: SIZE,
        engine,
        outPath: path.join(dir, 'out.png'),
      };
      await assert.rejects(edit({ ...request, deviceMemory: memoryOf(64 * 2 ** 20) }), MemoryBudgetError);
      assert.equal(engine.compiles, 0, 'no graph was compiled');
      await assert.rejects(fs.stat(path.join(dir, 'out.png')), /ENOENT/);

      const messages: string[] = [];
      // A short edit (no LoRA): only the policy's choice and log are checked here.
      const quick = { ...spec, parameters: { ...spec.parameters, loraSteps: 0 } };
      const done = await edit({ ...request, spec: quick, settings: { ...request.settings, memoryPolicy: 'blocks' } }, { onProgress: (p: EditProgress) => p.message && messages.push(p.message) });
      assert.ok(messages.some((m) => /memory policy "blocks" \(set by the user\)/.test(m)), messages.join('\n'));
      assert.equal(done.recipe.pipeline.rematerialize, true);
      assert.equal(done.recipe.pipeline.precision, 'fp32');
      assert.equal(done.recipe.pipeline.precisionByPolicy, undefined);

      // Room for float16 weights only: an auto edit runs with them and its recipe says the policy chose them.
      const fp32Blocks = (await plan(memoryOf(64 * GB), 'blocks')).estimate!.largest.peakBytes;
      const halfBlocks = (await plan(memoryOf(64 * GB), 'blocks', 'fp16-weights')).estimate!.largest.peakBytes;
      const tight = memoryOf(4 * GB, (fp32Blocks + halfBlocks) / 2 + GB);
      const halved = await edit({ ...request, spec: quick, outPath: path.join(dir, 'halved.png'), deviceMemory: tight });
      assert.equal(halved.recipe.pipeline.precision, 'fp16-weights');
      assert.equal(halved.recipe.pipeline.precisionByPolicy, true);
      await assert.rejects(edit({ ...request, spec: quick, settings: { ...request.settings, precision: 'fp32' }, outPath: path.join(dir, 'fp32.png'), deviceMemory: tight }), MemoryBudgetError);
    } finally {
      await engine.close();
    }
  });
});
