/**
 * Op spellings chosen so that onnxruntime fuses them: the optimised model onnxruntime saves shows which
 * kernels it will run.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph, type Value } from '../../../src/sidecar/engine/graph';
import { onnx } from '../../../src/sidecar/engine/onnx/onnx-proto';
import { serializeGraph } from '../../../src/sidecar/engine/onnx/serialize';
import * as op from '../../../src/sidecar/engine/ops';

/** The op types of `build`'s graph after onnxruntime's CPU optimisations up to level `extended`. */
async function optimisedOpTypes(build: (x: Value) => Value): Promise<string[]> {
  const g = new Graph('fusion');
  g.output('y', build(g.input('x', 'float32', [2, 8])));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ops-fusion-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(serializeGraph(g).bytes, { graphOptimizationLevel: 'extended', optimizedModelFilePath: file });
    await session.release();
    return onnx.ModelProto.decode(fs.readFileSync(file)).graph!.node!.map((n) => n.opType!);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('exact gelu becomes one Gelu kernel', async () => {
  assert.deepEqual(await optimisedOpTypes((x) => op.gelu(x)), ['Gelu']);
});

test('gelu of a computed value still fuses (the pattern does not depend on its producer)', async () => {
  const types = await optimisedOpTypes((x) => op.gelu(op.add(x, 1)));
  assert.deepEqual(types.filter((t) => t !== 'Add'), ['Gelu']);
});
