import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Graph } from '../../../../src/sidecar/engine/graph';
import { float32ToFloat16Bits } from '../../../../src/sidecar/engine/float16';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../../../src/sidecar/models/checkpoint/safetensors';
import { clipTextTransformer, isClipPositionIdsBuffer } from '../../../../src/sidecar/models/clip/text-model';
import { parseClipTextConfig, type ClipTextConfig } from '../../../../src/sidecar/models/config';
import { CheckpointWeights } from '../../../../src/sidecar/models/weights';
import { FIXTURES, GoldenCase, relativeL2 } from '../../../support/golden-case';
import { withTempDir, writeRandomCheckpoint } from '../../../support/random-checkpoint';
import { runGraph } from '../../../support/run-graph';
import { clipTextSpecs } from './random-clip';

const TEXT_DIR = path.join(FIXTURES, 'tiny-sd15', 'text_encoder');
const TEXT_WEIGHTS = path.join(TEXT_DIR, 'model.safetensors');
const tinyConfig = (): ClipTextConfig => parseClipTextConfig(JSON.parse(readFileSync(path.join(TEXT_DIR, 'config.json'), 'utf8')));

async function lastHiddenState(config: ClipTextConfig, weights: CheckpointWeights, ids: BigInt64Array, shape: [number, number]) {
  const graph = new Graph('text_encoder');
  graph.output('last_hidden_state', clipTextTransformer(weights, config, graph.input('input_ids', 'int64', shape)));
  weights.assertAllBound(graph, isClipPositionIdsBuffer);
  return (await runGraph(graph, { input_ids: ids })).last_hidden_state as Float32Array;
}

describe('CLIP text encoder (CLIPTextModel)', () => {
  it('reproduces the golden last_hidden_state of the tiny SD text encoder', async () => {
    const golden = await GoldenCase.open('text_encoder');
    try {
      const hidden = await lastHiddenState(tinyConfig(), await CheckpointWeights.open(TEXT_WEIGHTS), await golden.int64('input_ids'), [2, 77]);
      await golden.assertOutput('last_hidden_state', hidden);
    } finally {
      await golden.close();
    }
  });

  it('runs a float16 checkpoint in float32 close to the float32 result', async () => {
    const golden = await GoldenCase.open('text_encoder');
    try {
      await withTempDir(async (dir) => {
        const half = path.join(dir, 'model.fp16.safetensors');
        const source = await SafetensorsFile.open(TEXT_WEIGHTS);
        const tensors: TensorToWrite[] = [];
        for (const info of source.tensors()) {
          if (info.dtype === 'I64') tensors.push({ name: info.name, dtype: 'I64', shape: info.shape, data: await source.readInt64(info.name) });
          else tensors.push({ name: info.name, dtype: 'F16', shape: info.shape, data: float32ToFloat16Bits(await source.readFloat32(info.name)) });
        }
        await source.close();
        await writeSafetensors(half, tensors);
        const weights = await CheckpointWeights.open(half);
        const hidden = await lastHiddenState(tinyConfig(), weights, await golden.int64('input_ids'), [2, 77]);
        const error = relativeL2(hidden, await golden.float32('last_hidden_state'));
        assert.ok(error < 5e-3, `float16 weights: relative error ${error}`);
      });
    } finally {
      await golden.close();
    }
  });

  it('builds other configs (width, heads, depth, gelu, short sequences) and masks causally', async () => {
    const config = parseClipTextConfig({
      model_type: 'clip_text_model',
      vocab_size: 300,
      hidden_size: 12,
      intermediate_size: 20,
      num_attention_heads: 3,
      num_hidden_layers: 3,
      max_position_embeddings: 16,
      hidden_act: 'gelu',
      layer_norm_eps: 1e-5,
    });
    await withTempDir(async (dir) => {
      const file = path.join(dir, 'text.safetensors');
      await writeRandomCheckpoint(file, clipTextSpecs(config), 3);
      const weights = await CheckpointWeights.open(file);
      const length = 10;
      const first = [298, 5, 17, 42, 8, 120, 77, 299, 299, 299];
      const changed = [...first];
      changed[6] = 200;
      const hidden = await lastHiddenState(config, weights, BigInt64Array.from([...first, ...changed], BigInt), [2, length]);
      assert.equal(hidden.length, 2 * length * 12);
      assert.ok(hidden.every(Number.isFinite));
      // Positions before the changed token cannot see it; it and every later position do.
      const row = (b: number, t: number) => hidden.subarray((b * length + t) * 12, (b * length + t + 1) * 12);
      for (let t = 0; t < length; t++) {
        const diff = relativeL2(row(1, t), row(0, t));
        if (t < 6) assert.ok(diff < 1e-6, `position ${t} changed by ${diff}`);
        else assert.ok(diff > 1e-3, `position ${t} did not see token 6 (${diff})`);
      }
    });
  });

  it('rejects ids longer than max_position_embeddings or of the wrong dtype', async () => {
    const weights = await CheckpointWeights.open(TEXT_WEIGHTS);
    const graph = new Graph('bad');
    assert.throws(() => clipTextTransformer(weights, tinyConfig(), graph.input('long', 'int64', [1, 78])), /L ≤ 77/);
    assert.throws(() => clipTextTransformer(weights, tinyConfig(), graph.input('float', 'float32', [1, 77])), /int64/);
  });
});
