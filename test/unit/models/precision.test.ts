/**
 * fp16 models against fp32 on the tiny fixtures (CPU provider).
 *
 * To separate the two sources of error, the reference is the fp32 computation *with the weights rounded
 * to float16* (the same converted checkpoint, bound as float32): what remains is the rounding of the
 * activations, held to the tolerance derived in `test/support/fp16-tolerance.ts`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TypedArray } from '../../../src/sidecar/engine/dtype';
import { Graph } from '../../../src/sidecar/engine/graph';
import { halfPrecisionCopy } from '../../../src/sidecar/models/checkpoint/half-precision-copy';
import { SafetensorsFile } from '../../../src/sidecar/models/checkpoint/safetensors';
import { clipImageEmbeds } from '../../../src/sidecar/models/clip';
import { buildUNetGraph } from '../../../src/sidecar/models/unet/unet';
import { IO, textEncoderGraph, vaeDecodeGraph, vaeEncodeGraph } from '../../../src/sidecar/pipeline/models/graphs';
import type { PipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { FLOAT16_UNIT_ROUNDOFF, float16Nodes, float16Tolerance, openFp16AndReference, type Fp16AndReference } from '../../support/fp16';
import { FIXTURES, relativeL2 } from '../../support/golden-case';
import { randomFloat32, withTempDir } from '../../support/random-checkpoint';
import { runGraph } from '../../support/run-graph';

const CLIP = path.join(FIXTURES, 'tiny-clip-vit-b16');

/** Runs the graph built twice (fp16 and reference) and checks every named output. */
async function compare(build: (models: PipelineModels) => Graph, models: Fp16AndReference, feeds: Record<string, TypedArray>, outputs: readonly string[]) {
  const halfGraph = build(models.half);
  const referenceGraph = build(models.reference);
  assert.ok(halfGraph.weights.length > 0 && halfGraph.weights.every((w) => w.dtype === 'float16'), 'fp16 weights stay float16 in the graph');
  assert.equal(float16Nodes(referenceGraph), 0, 'the reference has no float16 computation');
  // The heavy ops (convolutions and matrix products, where the memory and time go) all run in float16.
  const heavy = halfGraph.nodes.filter((n) => ['Conv', 'ConvTranspose', 'MatMul', 'Gemm'].includes(n.op));
  const wide = heavy.filter((n) => n.outputs[0]!.dtype !== 'float16').map((n) => `${n.op} ${n.scope}`);
  assert.ok(heavy.length > 0 && wide.length === 0, `float32 convolutions / products in the fp16 graph: ${wide.join(', ')}`);
  const [half, reference] = [await runGraph(halfGraph, feeds), await runGraph(referenceGraph, feeds)];
  const tol = float16Tolerance(halfGraph);
  const errors: Record<string, number> = {};
  for (const name of outputs) {
    assert.ok(half[name] instanceof Float32Array, `${name} leaves the fp16 graph as float32`);
    const h = half[name] as Float32Array;
    assert.ok(h.every(Number.isFinite), `${name}: fp16 output is finite`);
    const error = relativeL2(h, reference[name] as Float32Array);
    errors[name] = error;
    if (process.env.CLIPDRAG_PRINT_ERRORS) console.log(`${name}: relative error ${error.toExponential(2)}, tolerance ${tol.toExponential(2)}`);
    assert.ok(error < tol, `${name}: fp16 relative error ${error} ≥ tolerance ${tol}`);
    // The comparison must be able to fail: fp16 activations do change the result.
    assert.ok(error > FLOAT16_UNIT_ROUNDOFF / 100, `${name}: fp16 run identical to fp32 (${error}): is it computing in float16?`);
  }
  return { errors, tol };
}

describe('fp16 models against fp32 (tiny fixtures, CPU)', () => {
  it('UNet eps and the drag feature tap', async () => {
    await withTempDir(async (dir) => {
      const models = await openFp16AndReference(dir);
      const build = (m: PipelineModels) =>
        buildUNetGraph(m.unet, { batch: 2, height: 16, width: 16, timestep: 'batch', tokens: 77, outputs: ['eps', 'feat_3_up2'], lora: { rank: 2 } }).graph;
      const feeds: Record<string, TypedArray> = {
        sample: randomFloat32(2 * 4 * 16 * 16, 1),
        timestep: Float32Array.from([981, 261]),
        encoder_hidden_states: randomFloat32(2 * 77 * 16, 2),
      };
      for (const input of build(models.half).inputs) if (input.name.includes('lora')) feeds[input.name] = randomFloat32(input.size, input.size, 0.1);
      await compare(build, models, feeds, ['eps', 'feat_3_up2']);
    });
  });

  it('VAE encode (posterior mean) and decode (image)', async () => {
    await withTempDir(async (dir) => {
      const models = await openFp16AndReference(dir);
      const image = randomFloat32(3 * 64 * 64, 3, 1).map((v) => Math.max(-1, Math.min(1, v)));
      await compare((m) => vaeEncodeGraph(m.vae, 1, 64, 64), models, { [IO.image]: image }, [IO.mean, IO.logvar]);
      await compare((m) => vaeDecodeGraph(m.vae, 1, 8, 8), models, { [IO.latents]: randomFloat32(4 * 8 * 8, 4) }, [IO.image]);
    });
  });

  it('CLIP text encoder (SD conditioning) and image embeddings', async () => {
    await withTempDir(async (dir) => {
      const models = await openFp16AndReference(dir);
      const ids = BigInt64Array.from([49406, 320, 1125, 539, 320, 2368, 49407, 49407], BigInt);
      await compare((m) => textEncoderGraph(m.textEncoder, ids.length), models, { [IO.ids]: ids }, [IO.hidden]);
      const imageEmbeds = (m: PipelineModels) => {
        const graph = new Graph('clip image');
        const pixels = graph.input('pixel_values', 'float32', [1, 3, 224, 224]);
        graph.output('image_embeds', clipImageEmbeds(m.clip!, pixels));
        return graph;
      };
      await compare(imageEmbeds, models, { pixel_values: randomFloat32(3 * 224 * 224, 5) }, ['image_embeds']);
    });
  });
});

describe('half-precision copies of fp32 checkpoints', () => {
  it('are written once per source version, F32 rounded to F16, and replaced when the source changes', async () => {
    await withTempDir(async (dir) => {
      const source = path.join(dir, 'model.safetensors');
      await fs.copyFile(path.join(CLIP, 'model.safetensors'), source);
      const cache = path.join(dir, 'cache');
      const converted: string[] = [];
      const first = await halfPrecisionCopy(source, cache, (file) => converted.push(file));
      assert.deepEqual(converted, [source]);
      assert.equal(path.dirname(first), cache);
      const [original, copy] = [await SafetensorsFile.open(source), await SafetensorsFile.open(first)];
      try {
        assert.deepEqual(copy.names().sort(), original.names().sort());
        for (const info of original.tensors()) {
          const half = copy.info(info.name);
          assert.deepEqual(half.shape, info.shape);
          assert.equal(half.dtype, info.dtype === 'F32' ? 'F16' : info.dtype, info.name);
          if (info.dtype === 'F32') {
            const error = relativeL2(await copy.readFloat32(info.name), await original.readFloat32(info.name));
            assert.ok(error <= FLOAT16_UNIT_ROUNDOFF, `${info.name}: rounding error ${error}`);
          }
        }
        assert.ok(copy.fileSize < 0.6 * original.fileSize, 'about half the size');
      } finally {
        await original.close();
        await copy.close();
      }

      assert.equal(await halfPrecisionCopy(source, cache, (file) => converted.push(file)), first, 'the copy is reused');
      assert.equal(converted.length, 1);

      // A changed source (new modification time) gets a new copy; the stale one is removed.
      const later = new Date(Date.now() + 5000);
      await fs.utimes(source, later, later);
      const second = await halfPrecisionCopy(source, cache, (file) => converted.push(file));
      assert.notEqual(second, first);
      assert.equal(converted.length, 2);
      assert.deepEqual(await fs.readdir(cache), [path.basename(second)]);

      // An F16-only file is used in place.
      assert.equal(await halfPrecisionCopy(second, path.join(dir, 'other')), second);
    });
  });
});
