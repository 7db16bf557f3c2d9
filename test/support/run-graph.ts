/**
 * Runs an engine graph once on onnxruntime-node's CPU provider, in this thread. For tests: it serialises
 * the graph, hands external weight files over in memory, and returns every graph output by name.
 */
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { TypedArray } from '../../src/sidecar/engine/dtype';
import type { Graph } from '../../src/sidecar/engine/graph';
import { serializeGraph } from '../../src/sidecar/engine/onnx/serialize';

export type Feeds = Record<string, TypedArray>;

export async function runGraph(
  graph: Graph,
  feeds: Feeds,
  options: { optimize?: boolean } = {},
): Promise<Record<string, TypedArray>> {
  const model = serializeGraph(graph);
  const session = await ort.InferenceSession.create(model.bytes, {
    graphOptimizationLevel: options.optimize === false ? 'disabled' : 'all',
    externalData: model.externalFiles.map(({ file, location }) => ({ path: location, data: fs.readFileSync(file) })),
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const value of graph.inputs) {
      const data = feeds[value.name];
      if (!data) throw new Error(`runGraph: no feed for input ${value.name}`);
      inputs[value.name] = new ort.Tensor(value.dtype, data as never, [...value.shape]);
    }
    const results = await session.run(inputs);
    const out: Record<string, TypedArray> = {};
    for (const { name } of graph.outputs) out[name] = results[name]!.data as TypedArray;
    return out;
  } finally {
    await session.release();
  }
}
