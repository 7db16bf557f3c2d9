/**
 * One onnxruntime CPU session for an engine graph, run many times with different feeds: for graphs
 * whose small inputs change from run to run (the drag step), the way the pipeline uses them.
 */
import * as ort from 'onnxruntime-node';
import type { TypedArray } from '../../src/sidecar/engine/dtype';
import type { Graph } from '../../src/sidecar/engine/graph';
import { serializeGraph } from '../../src/sidecar/engine/onnx/serialize';

export class GraphSession {
  private constructor(
    private readonly graph: Graph,
    private readonly session: ort.InferenceSession,
  ) {}

  static async create(graph: Graph): Promise<GraphSession> {
    const model = serializeGraph(graph);
    if (model.externalFiles.length > 0) throw new Error(`GraphSession: graph ${graph.name} has external weights; use runGraph`);
    return new GraphSession(graph, await ort.InferenceSession.create(model.bytes));
  }

  /** Runs with `feeds` for every graph input; returns every graph output by name. */
  async run(feeds: Readonly<Record<string, TypedArray>>): Promise<Record<string, TypedArray>> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const value of this.graph.inputs) {
      const data = feeds[value.name];
      if (!data) throw new Error(`GraphSession: no feed for input ${value.name}`);
      inputs[value.name] = new ort.Tensor(value.dtype, data as never, [...value.shape]);
    }
    const results = await this.session.run(inputs);
    return Object.fromEntries(this.graph.outputs.map(({ name }) => [name, results[name]!.data as TypedArray]));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
