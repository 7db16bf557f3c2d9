// The engine client and its worker thread: compile + run through the worker, errors that come back
// from it, provider errors, session sharing, and a worker that is gone when nothing needs it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { Graph } from '../../../src/sidecar/engine/graph';
import { add, div, mul, reduceSum, reshape } from '../../../src/sidecar/engine/ops';
import { serializeGraph } from '../../../src/sidecar/engine/onnx/serialize';
import { Engine, EngineWorkerError } from '../../../src/sidecar/engine/runtime/engine';
import { probeExecutionProviders } from '../../../src/sidecar/engine/runtime/providers';
import { runGraph } from '../../support/run-graph';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-runtime-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
const cacheDir = path.join(root, 'cache');
const cpu = { device: 'cpu', intraOpNumThreads: 1 } as const;

/** A small graph with an external weight, an int32 input and two outputs. */
function testGraph() {
  const weights = path.join(root, 'weights.bin');
  if (!fs.existsSync(weights)) fs.writeFileSync(weights, Buffer.from(Float32Array.from([0.5, -2, 4, 8]).buffer));
  const graph = new Graph('runtime-test');
  const x = graph.input('x', 'float32', [2, 4]);
  const k = graph.input('k', 'int32', [4]);
  const w = graph.weight('w', 'float32', [4], { kind: 'external', file: weights, offset: 0, length: 16 });
  const y = div(mul(add(x, w), 3), 7);
  graph.output('y', reshape(y, [4, 2]));
  graph.output('total', reduceSum(y, [0, 1], false));
  graph.output('k2', add(k, k));
  return graph;
}

const feeds = () => ({ x: Float32Array.from([1, -2, 3.5, 0.25, 1e-3, 7, -8, 2]), k: Int32Array.from([1, 2, -3, 4]) });

test('a graph compiled and run in the worker gives the in-thread results and reports its provider', async () => {
  const engine = new Engine({ cacheDir });
  try {
    const graph = testGraph();
    const compiled = await engine.compile(serializeGraph(graph), { ...cpu, reportNodePlacement: true, enableMemPattern: false, label: 'test graph' });
    assert.equal(compiled.options.enableMemPattern, false, 'the option reached the worker\'s session store');
    assert.equal(compiled.provider, 'cpu');
    assert.equal(compiled.providerReason, 'requested explicitly');
    assert.equal(compiled.label, 'test graph');
    assert.deepEqual(compiled.inputs, [
      { name: 'x', dtype: 'float32', shape: [2, 4] },
      { name: 'k', dtype: 'int32', shape: [4] },
    ]);
    assert.equal(compiled.externalWeights.length, 1);
    assert.equal(compiled.nodePlacement, undefined, 'placement is known after the first run');

    const outputs = await engine.run(compiled, feeds());
    const expected = await runGraph(graph, feeds());
    assert.deepEqual(Object.keys(outputs).sort(), ['k2', 'total', 'y']);
    for (const name of ['y', 'total', 'k2']) {
      assert.equal(outputs[name]!.constructor, expected[name]!.constructor, name);
      assert.deepEqual([...outputs[name]!], [...expected[name]!], name);
    }
    assert.deepEqual([...outputs.k2!], [2, 4, -6, 8]);
    const placement = compiled.nodePlacement as Record<string, number> | undefined;
    assert.ok(placement && placement.CPUExecutionProvider! > 0 && Object.keys(placement).length === 1, JSON.stringify(placement));

    // Calls made at once are answered one by one, each with its own result.
    const scaled = [1, 2, 3, 4, 5].map((factor) => ({ ...feeds(), x: feeds().x.map((v) => v * factor) }));
    const concurrent = await Promise.all(scaled.map((f) => engine.run(compiled, f, ['y'])));
    for (const [i, f] of scaled.entries()) assert.deepEqual([...concurrent[i]!.y!], [...(await runGraph(graph, f)).y!]);

    const some = await engine.run(compiled, feeds(), ['total']);
    assert.deepEqual(Object.keys(some), ['total']);
    assert.deepEqual([...some.total!], [...expected.total!]);
  } finally {
    await engine.close();
  }
});

test('inputs are copied unless the caller transfers them; outputs arrive as whole buffers', async () => {
  const engine = new Engine({ cacheDir });
  try {
    const compiled = await engine.compile(serializeGraph(testGraph()), cpu);
    const kept = feeds();
    const first = await engine.run(compiled, kept);
    assert.equal(kept.x.length, 8, 'a copied feed stays usable');
    const given = feeds();
    const second = await engine.run(compiled, given, undefined, { transferInputs: true });
    assert.equal(given.x.length, 0, 'a transferred feed is detached from the caller');
    assert.deepEqual([...second.y!], [...first.y!]);
    assert.equal(second.y!.byteOffset, 0);
    assert.equal(second.y!.buffer.byteLength, second.y!.byteLength);
    // A feed that is a window on a larger buffer is copied, so the rest of that buffer stays intact.
    const backing = new Float32Array(16);
    backing.set(feeds().x, 4);
    const window = backing.subarray(4, 12);
    const third = await engine.run(compiled, { ...feeds(), x: window }, ['y'], { transferInputs: true });
    assert.equal(backing.length, 16);
    assert.deepEqual([...third.y!], [...first.y!]);
  } finally {
    await engine.close();
  }
});

test('bad feeds and output names come back as clear errors, and the worker keeps working', async () => {
  const engine = new Engine({ cacheDir });
  try {
    const compiled = await engine.compile(serializeGraph(testGraph()), { ...cpu, label: 'feeds test' });
    const { x, k } = feeds();
    const rejects = (promise: Promise<unknown>, pattern: RegExp) =>
      assert.rejects(promise, (e: unknown) => e instanceof Error && e.name === 'FeedError' && pattern.test(e.message) && /feeds test/.test(e.message));
    await rejects(engine.run(compiled, { x }), /missing feed\(s\) k\. The graph's inputs are x: float32\[2, 4\], k: int32\[4\]/);
    await rejects(engine.run(compiled, { x, k, z: x }), /unknown feed\(s\) z/);
    await rejects(engine.run(compiled, { x: x.subarray(0, 6), k }), /input x is float32\[2, 4\] \(8 elements\), got 6 elements/);
    await rejects(engine.run(compiled, { x: Float64Array.from(x), k }), /input x is float32\[2, 4\] and needs a Float32Array, got a Float64Array/);
    await rejects(engine.run(compiled, { x, k }, ['nope']), /no output named nope\. Its outputs are y, total, k2/);
    // The error keeps the worker's stack and where the caller called from.
    const error = await engine.run(compiled, { x }).catch((e: Error) => e);
    assert.match(String((error as Error).stack), /in the engine worker:[\s\S]*tensors\.ts[\s\S]*called from:[\s\S]*runtime\.test\.ts/);
    assert.deepEqual([...(await engine.run(compiled, { x, k })).k2!], [2, 4, -6, 8]);
  } finally {
    await engine.close();
  }
});

test('a requested provider that is not usable here is a clear error, not a CPU fallback', async (t) => {
  const cuda = (await probeExecutionProviders()).find((p) => p.name === 'cuda');
  if (cuda?.usable) {
    t.skip('CUDA is usable on this machine');
    return;
  }
  const engine = new Engine({ cacheDir });
  try {
    await assert.rejects(engine.compile(serializeGraph(testGraph()), { device: 'cuda' }), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.equal(e.name, 'ExecutionProviderUnavailableError');
      assert.match(e.message, /The "cuda" device is not available/);
      assert.match(e.message, /Usable here: cpu/);
      return true;
    });
    assert.equal(engine.workerRunning, true, 'the failed compile leaves the worker usable');
    const compiled = await engine.compile(serializeGraph(testGraph()), cpu);
    assert.equal(compiled.provider, 'cpu');
  } finally {
    await engine.close();
  }
  assert.equal(engine.workerRunning, false);
});

test('identical compiles share a session; the worker stops after the last release and restarts on demand', async () => {
  const engine = new Engine({ cacheDir });
  const model = serializeGraph(testGraph());
  const first = await engine.compile(model, cpu);
  const second = await engine.compile(model, cpu);
  assert.equal(first.reused, false);
  assert.equal(second.reused, true);
  assert.notEqual(first.id, second.id);
  await engine.release(first);
  await engine.release(first); // harmless
  await assert.rejects(engine.run(first, feeds()), /was released/);
  assert.equal(engine.workerRunning, true, 'the second handle still uses the session');
  assert.ok((await engine.run(second, feeds())).total);
  await engine.release(second);
  assert.equal(engine.workerRunning, false);

  const third = await engine.compile(model, cpu);
  assert.equal(third.reused, false, 'a fresh worker compiles anew');
  assert.equal(third.optimizedModelCache, 'hit', 'from the optimised model cached on disk');
  assert.equal(engine.workerRunning, true);
  await engine.close();
  assert.equal(engine.workerRunning, false);
  await assert.rejects(engine.compile(model, cpu), /the engine is closed/);
});

test('a worker that dies rejects pending calls with the error it died of', async () => {
  const engine = new Engine({ cacheDir, workerScript: path.join(__dirname, '..', '..', 'support', 'faulty-engine-worker.ts') });
  await assert.rejects(
    engine.compile(serializeGraph(testGraph()), cpu),
    (e: unknown) =>
      e instanceof EngineWorkerError &&
      /the engine worker stopped unexpectedly \(Error: simulated fault while handling a compile request\) during a compile request/.test(e.message),
  );
  assert.equal(engine.workerRunning, false);
  await engine.close();
});

test('an engine left open does not keep the process alive', async () => {
  const script = path.join(__dirname, '..', '..', 'support', 'engine-left-open.ts');
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, cacheDir], { timeout: 60_000 });
  assert.deepEqual(JSON.parse(stdout), { y: [2, 3], workerRunning: true });
});
