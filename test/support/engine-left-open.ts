/**
 * Compiles and runs a graph through the engine and returns without releasing or closing anything: an
 * idle engine worker must not keep the process alive. Prints the result for the test to check.
 */
import { Graph } from '../../src/sidecar/engine/graph';
import { add } from '../../src/sidecar/engine/ops';
import { serializeGraph } from '../../src/sidecar/engine/onnx/serialize';
import { Engine } from '../../src/sidecar/engine/runtime/engine';

async function main(): Promise<void> {
  const graph = new Graph('left-open');
  graph.output('y', add(graph.input('x', 'float32', [2]), 1));
  const engine = new Engine({ cacheDir: process.argv[2] });
  const compiled = await engine.compile(serializeGraph(graph), { device: 'cpu', intraOpNumThreads: 1 });
  const { y } = await engine.run(compiled, { x: Float32Array.from([1, 2]) });
  process.stdout.write(JSON.stringify({ y: [...y!], workerRunning: engine.workerRunning }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
