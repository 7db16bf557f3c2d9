import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Graph } from '../../../../src/sidecar/engine/graph';
import { loadClipModel } from '../../../../src/sidecar/models/checkpoint/layout';
import {
  assertClipPartBound,
  CLIP_IMAGE_PREFIXES,
  CLIP_TEXT_PREFIXES,
  clipImageEmbeds,
  clipTextEmbeds,
  type ClipModelWeights,
} from '../../../../src/sidecar/models/clip/clip-model';
import { clipGuidanceGradients, clipGuidanceLoss } from '../../../../src/sidecar/models/clip/guidance';
import { clipPreprocess, IDENTITY_REMAP, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD } from '../../../../src/sidecar/models/clip/preprocess';
import { parseClipModelConfig } from '../../../../src/sidecar/models/config';
import { CheckpointWeights } from '../../../../src/sidecar/models/weights';
import { FIXTURES, GoldenCase, relativeL2 } from '../../../support/golden-case';
import { randomFloat32, withTempDir, writeRandomCheckpoint } from '../../../support/random-checkpoint';
import { runGraph } from '../../../support/run-graph';
import { clipModelSpecs } from './random-clip';

async function tinyClip(): Promise<ClipModelWeights> {
  const { layout, config } = await loadClipModel(path.join(FIXTURES, 'tiny-clip-vit-b16'));
  return { config, weights: await CheckpointWeights.open(layout.weightsPaths) };
}

async function textEmbeds(model: ClipModelWeights, ids: BigInt64Array, shape: [number, number]): Promise<Float32Array> {
  const graph = new Graph('text');
  graph.output('text_embeds', clipTextEmbeds(model, graph.input('input_ids', 'int64', shape)));
  assertClipPartBound(model.weights, graph, CLIP_TEXT_PREFIXES);
  return (await runGraph(graph, { input_ids: ids })).text_embeds as Float32Array;
}

describe('CLIP ViT-B/16 (CLIPModel)', () => {
  it('reproduces the golden pixel_values, embeddings, CLIPDrag loss and its gradients of the tiny CLIP', async () => {
    const golden = await GoldenCase.open('clip');
    try {
      const model = await tinyClip();
      const graph = new Graph('clip');
      const image = graph.input('image', 'float32', [1, 3, 64, 64]);
      const text = clipTextEmbeds(model, graph.input('input_ids', 'int64', [1, 77]));
      const guidance = clipGuidanceLoss(model, image, text);
      graph.output('pixel_values', guidance.pixelValues);
      graph.output('image_embeds', guidance.imageEmbeds);
      graph.output('text_embeds', text);
      graph.output('loss', guidance.loss);
      const grads = clipGuidanceGradients(guidance, image);
      graph.output('grad_pixel_values', grads.gradPixelValues);
      graph.output('grad_image', grads.gradImage);
      assertClipPartBound(model.weights, graph, [...CLIP_IMAGE_PREFIXES, ...CLIP_TEXT_PREFIXES]);
      const out = await runGraph(graph, { image: await golden.float32('image'), input_ids: await golden.int64('input_ids') });
      for (const name of ['pixel_values', 'image_embeds', 'text_embeds', 'loss', 'grad_pixel_values', 'grad_image']) {
        await golden.assertOutput(name, out[name] as Float32Array);
      }
    } finally {
      await golden.close();
    }
  });

  it('reproduces the CLIP loss of the golden clipdrag_step from its decoded 128×128 image', async () => {
    const step = await GoldenCase.open('clipdrag_step');
    try {
      const model = await tinyClip();
      const graph = new Graph('clip_step');
      const text = clipTextEmbeds(model, graph.input('clip_input_ids', 'int64', [1, 77]));
      const guidance = clipGuidanceLoss(model, graph.input('pred_image', 'float32', [1, 3, 128, 128]), text, {
        coefficient: step.entry.settings.clip_loss_coef as number,
      });
      graph.output('image_embeds', guidance.imageEmbeds);
      graph.output('text_embeds', text);
      graph.output('clip_loss', guidance.loss);
      const out = await runGraph(graph, { pred_image: await step.float32('pred_image'), clip_input_ids: await step.int64('clip_input_ids') });
      for (const name of ['image_embeds', 'text_embeds', 'clip_loss']) await step.assertOutput(name, out[name] as Float32Array);
    } finally {
      await step.close();
    }
  });

  it('pools the text at the first end-of-text token, whatever padding follows it', async () => {
    const model = await tinyClip();
    const tokens = [49406, 320, 1125, 539, 320, 2368, 49407];
    const padded = (pad: number) => [...tokens, ...Array<number>(77 - tokens.length).fill(pad)];
    const ids = BigInt64Array.from([...padded(0), ...padded(49407), ...padded(5)], BigInt);
    const embeds = await textEmbeds(model, ids, [3, 77]);
    const row = (b: number) => embeds.subarray(b * 16, (b + 1) * 16);
    assert.ok(relativeL2(row(1), row(0)) < 1e-6, 'SD-style padding (49407) pools the same token as clip.tokenize padding (0)');
    assert.ok(relativeL2(row(2), row(0)) < 1e-6, 'tokens after the end-of-text token do not matter');
    const shorter = BigInt64Array.from([...tokens.slice(0, 5), 49407, ...Array<number>(71).fill(0)], BigInt);
    assert.ok(relativeL2(await textEmbeds(model, shorter, [1, 77]), row(0)) > 1e-3, 'a different prompt gives a different embedding');
  });

  it('preprocesses with a configurable remap: constant images map to ((c·scale + offset) − mean) / std', async () => {
    const graph = new Graph('pre');
    const image = graph.input('image', 'float32', [1, 3, 5, 9]);
    graph.output('reference', clipPreprocess(image, 7));
    graph.output('identity', clipPreprocess(image, 7, { remap: IDENTITY_REMAP }));
    const constant = [0.2, 0.5, 0.9];
    const out = await runGraph(graph, { image: Float32Array.from({ length: 3 * 45 }, (_, i) => constant[Math.floor(i / 45)]!) });
    for (let c = 0; c < 3; c++) {
      for (const [name, scale, offset] of [['reference', 0.5, 0.5], ['identity', 1, 0]] as const) {
        const expected = (constant[c]! * scale + offset - OPENAI_CLIP_MEAN[c]!) / OPENAI_CLIP_STD[c]!;
        const values = (out[name] as Float32Array).subarray(c * 49, (c + 1) * 49);
        assert.ok(values.every((v) => Math.abs(v - expected) < 1e-5), `${name} channel ${c}: ${values[0]} vs ${expected}`);
      }
    }
  });

  it('builds other configs (image/patch size, widths, heads, depth, gelu) and a non-square guidance loss', async () => {
    const config = parseClipModelConfig({
      model_type: 'clip',
      projection_dim: 10,
      text_config: { vocab_size: 300, hidden_size: 12, intermediate_size: 24, num_attention_heads: 3, num_hidden_layers: 1, max_position_embeddings: 12, hidden_act: 'gelu' },
      vision_config: { image_size: 32, patch_size: 8, hidden_size: 24, intermediate_size: 40, num_attention_heads: 2, num_hidden_layers: 3, hidden_act: 'gelu_new', layer_norm_eps: 1e-6 },
    });
    await withTempDir(async (dir) => {
      const file = path.join(dir, 'clip.safetensors');
      await writeRandomCheckpoint(file, clipModelSpecs(config), 5);
      const model = { config, weights: await CheckpointWeights.open(file) };
      const graph = new Graph('clip');
      const image = graph.input('image', 'float32', [2, 3, 40, 72]);
      const text = clipTextEmbeds(model, graph.input('input_ids', 'int64', [2, 12]));
      const guidance = clipGuidanceLoss(model, image, text, { coefficient: 100 });
      graph.output('pixel_values', guidance.pixelValues);
      graph.output('image_embeds', guidance.imageEmbeds);
      graph.output('per_image', guidance.perImage);
      graph.output('loss', guidance.loss);
      const grads = clipGuidanceGradients(guidance, image);
      graph.output('grad_image', grads.gradImage);
      model.weights.assertAllBound(graph);
      const ids = BigInt64Array.from([298, 3, 4, 5, 299, 0, 0, 0, 0, 0, 0, 0, 298, 9, 299, 0, 0, 0, 0, 0, 0, 0, 0, 0], BigInt);
      const pixels = randomFloat32(2 * 3 * 40 * 72, 9, 0.3).map((v) => Math.min(1, Math.max(0, v + 0.5)));
      const out = await runGraph(graph, { image: pixels, input_ids: ids });
      assert.deepEqual(guidance.pixelValues.shape, [2, 3, 32, 32]);
      assert.deepEqual(guidance.imageEmbeds.shape, [2, 10]);
      const perImage = out.per_image as Float32Array;
      const loss = (out.loss as Float32Array)[0]!;
      assert.ok(perImage.every((l) => l >= 0 && l <= 200), `100·(1 − cos) lies in [0, 200]: ${perImage}`);
      assert.ok(Math.abs(loss - perImage[0]! - perImage[1]!) < 1e-4);
      const gradImage = out.grad_image as Float32Array;
      assert.equal(gradImage.length, pixels.length);
      assert.ok(gradImage.every(Number.isFinite) && gradImage.some((g) => g !== 0));

      // One image alone gives the same embedding as in the batch.
      const single = new Graph('single');
      single.output('image_embeds', clipImageEmbeds(model, clipPreprocess(single.input('image', 'float32', [1, 3, 40, 72]), 32)));
      const alone = (await runGraph(single, { image: pixels.subarray(3 * 40 * 72) })).image_embeds as Float32Array;
      assert.ok(relativeL2(alone, (out.image_embeds as Float32Array).subarray(10)) < 1e-5);
    });
  });

  it('rejects pixel_values of another size and text embeddings of another width', async () => {
    const model = await tinyClip();
    const graph = new Graph('bad');
    assert.throws(() => clipImageEmbeds(model, graph.input('small', 'float32', [1, 3, 64, 64])), /\[B, 3, 224, 224\]/);
    assert.throws(
      () => clipGuidanceLoss(model, graph.input('image', 'float32', [1, 3, 64, 64]), graph.input('text', 'float32', [1, 8])),
      /text embeddings \[1 or 1, 16\]/,
    );
  });
});
