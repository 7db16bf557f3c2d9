// The session store in this thread: external weights shared by the engine, by hard link and in memory, the
// session folder, the optimised-model cache and session sharing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Graph } from '../../../src/sidecar/engine/graph';
import { add, cast, conv2d, mul, reduceSum } from '../../../src/sidecar/engine/ops';
import { float32ToFloat16Bits } from '../../../src/sidecar/engine/float16';
import { serializeGraph, type SerializedModel } from '../../../src/sidecar/engine/onnx/serialize';
import { ExternalWeightsError, prepareModelFolder } from '../../../src/sidecar/engine/runtime/model-folder';
import { countNodePlacement } from '../../../src/sidecar/engine/runtime/placement';
import { SessionCreationError, SessionStore } from '../../../src/sidecar/engine/runtime/sessions';
import { runGraph } from '../../support/run-graph';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-runtime-sessions-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const HEADER = 7; // bytes before the tensor, as in a safetensors file: offsets need not be aligned

/** A checkpoint file holding one float32 vector after a short header. */
function writeCheckpoint(file: string, values: readonly number[]): void {
  const bytes = Buffer.alloc(HEADER + 4 * values.length, 0xab);
  values.forEach((v, i) => bytes.writeFloatLE(v, HEADER + 4 * i));
  fs.writeFileSync(file, bytes);
}

/** y = (a + 1) * w, s = sum(y) with w read from `file`. */
function weightedGraph(file: string): { graph: Graph; model: SerializedModel } {
  const graph = new Graph('weighted');
  const a = graph.input('a', 'float32', [2, 3]);
  const w = graph.weight('w', 'float32', [3], { kind: 'external', file, offset: HEADER, length: 12 });
  const y = mul(add(a, 1), w);
  graph.output('y', y);
  graph.output('s', reduceSum(y, [0, 1], false));
  return { graph, model: serializeGraph(graph) };
}

const a = () => Float32Array.from([1, 2, 3, 4, 5, 6]);
const options = { device: 'cpu', intraOpNumThreads: 1 } as const;
let nextHandle = 1;

test('weights reach onnxruntime through a hard link: no copy, same results as in memory', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'link-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { graph, model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));

  const info = await store.compile(nextHandle, model, { ...options, externalWeights: 'link' });
  const [weights] = info.externalWeights;
  assert.equal(weights?.mode, 'link');
  assert.equal(weights?.bytes, HEADER + 12);
  const linked = fs.statSync(path.join(info.folder, weights!.location));
  const original = fs.statSync(file);
  assert.equal(linked.ino, original.ino, 'the location in the session folder is the checkpoint itself (a hard link)');
  assert.equal(original.nlink, 2);
  assert.ok(!fs.lstatSync(path.join(info.folder, weights!.location)).isSymbolicLink());

  const { outputs } = await store.run(nextHandle, { a: a() });
  const expected = await runGraph(graph, { a: a() });
  assert.deepEqual([...outputs.y!], [...expected.y!]);
  assert.deepEqual([...outputs.y!], [20, 60, 120, 50, 120, 210]);
  assert.deepEqual([...outputs.s!], [580]);
  await store.release(nextHandle++);
  assert.equal(store.sessionCount, 0);
});

test('a checkpoint reached through a symlink (as in the Hugging Face cache) is linked by its real file', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'symlink-'));
  fs.mkdirSync(path.join(dir, 'blobs'));
  fs.mkdirSync(path.join(dir, 'snapshots'));
  const blob = path.join(dir, 'blobs', 'abc123');
  writeCheckpoint(blob, [1, 2, 3]);
  const file = path.join(dir, 'snapshots', 'model.safetensors');
  fs.symlinkSync(path.join('..', 'blobs', 'abc123'), file);
  const store = new SessionStore(path.join(dir, 'cache'));
  const info = await store.compile(nextHandle, weightedGraph(file).model, { ...options, externalWeights: 'link' });
  const location = path.join(info.folder, info.externalWeights[0]!.location);
  assert.ok(!fs.lstatSync(location).isSymbolicLink());
  assert.equal(fs.statSync(location).ino, fs.statSync(blob).ino);
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [2, 6, 12, 5, 12, 21]);
  await store.release(nextHandle++);
});

test('weights handed over in memory give the same results and leave no link behind', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'memory-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const store = new SessionStore(path.join(dir, 'cache'));
  const info = await store.compile(nextHandle, weightedGraph(file).model, { ...options, externalWeights: 'memory' });
  assert.equal(info.externalWeights[0]?.mode, 'memory');
  assert.equal(info.externalWeights[0]?.linkProblem, undefined);
  assert.ok(!fs.existsSync(path.join(info.folder, info.externalWeights[0]!.location)));
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [20, 60, 120, 50, 120, 210]);
  await store.release(nextHandle++);
});

test('across filesystems, shared weights are read in place; a session folder falls back to memory and says why; link mode refuses', async (t) => {
  const shm = '/dev/shm';
  if (!fs.existsSync(shm) || fs.statSync(shm).dev === fs.statSync(root).dev) {
    t.skip('needs a second filesystem (a tmpfs at /dev/shm) to try a hard link across devices');
    return;
  }
  const dir = fs.mkdtempSync(path.join(shm, 'engine-runtime-'));
  try {
    const file = path.join(dir, 'model.safetensors');
    writeCheckpoint(file, [10, 20, 30]);
    const { model } = weightedGraph(file);
    const store = new SessionStore(path.join(root, 'cross-device-cache'));
    const shared = await store.compile(nextHandle, model, options);
    assert.equal(shared.externalWeights[0]?.mode, 'shared');
    assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [20, 60, 120, 50, 120, 210]);
    await store.release(nextHandle++);
    // `auto` on a provider that takes the weights as initializers (the GPU providers): a link where possible.
    const prepared = prepareModelFolder(path.join(root, 'cross-device-cache'), model, 'auto');
    assert.equal(prepared.weights[0]?.mode, 'memory');
    assert.match(prepared.weights[0]?.linkProblem ?? '', /another filesystem/);
    const inMemory = await store.compile(nextHandle, model, { ...options, externalWeights: 'memory' });
    assert.equal(inMemory.externalWeights[0]?.mode, 'memory');
    assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [20, 60, 120, 50, 120, 210]);
    await store.release(nextHandle++);
    await assert.rejects(
      store.compile(nextHandle++, model, { ...options, externalWeights: 'link' }),
      (e: unknown) => e instanceof ExternalWeightsError && /another filesystem/.test(e.message) && /same filesystem/.test(e.message),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a checkpoint replaced under the same path is re-linked, and its old optimised model is not used', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'replaced-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));
  const linked = { ...options, externalWeights: 'link' } as const;
  const first = await store.compile(nextHandle, model, linked);
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.s!], [580]);
  await store.release(nextHandle++);

  // A download replaces the file (a new inode) rather than rewriting it.
  writeCheckpoint(`${file}.new`, [1, 1, 1]);
  fs.renameSync(`${file}.new`, file);
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const second = await store.compile(nextHandle, model, linked);
  assert.equal(second.folder, first.folder, 'the model is the same: same session folder');
  assert.equal(second.optimizedModelCache, 'written', 'the optimised model of the old weights is not reused');
  assert.equal(fs.statSync(path.join(second.folder, second.externalWeights[0]!.location)).ino, fs.statSync(file).ino);
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.s!], [27]);
  assert.equal(fs.readdirSync(second.folder).filter((f) => f.startsWith('optimized-')).length, 1, 'the stale optimised model is removed');
  await store.release(nextHandle++);
});

test('the optimised model is cached on disk and reloaded; a corrupt cache entry is rebuilt', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'optimized-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));

  const cold = await store.compile(nextHandle, model, options);
  assert.equal(cold.optimizedModelCache, 'written');
  await store.release(nextHandle++);
  const [cachedFile] = fs.readdirSync(cold.folder).filter((f) => f.startsWith('optimized-cpu-all-'));
  assert.ok(cachedFile, 'an optimised model file was written');

  const warm = await store.compile(nextHandle, model, options);
  assert.equal(warm.optimizedModelCache, 'hit');
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [20, 60, 120, 50, 120, 210]);
  await store.release(nextHandle++);

  fs.writeFileSync(path.join(cold.folder, cachedFile), 'not an onnx model');
  const rebuilt = await store.compile(nextHandle, model, options);
  assert.equal(rebuilt.optimizedModelCache, 'written');
  assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.s!], [580]);
  await store.release(nextHandle++);

  const off = await store.compile(nextHandle, model, { ...options, cacheOptimizedModel: false });
  assert.equal(off.optimizedModelCache, 'off');
  await store.release(nextHandle++);
});

test('when level all would copy weights into the cached model, level extended is cached instead', async (t) => {
  if (process.arch !== 'x64') {
    t.skip("onnxruntime's NCHWc layout pass, which copies convolution kernels, exists on x64 only");
    return;
  }
  const dir = fs.mkdtempSync(path.join(root, 'layout-'));
  const file = path.join(dir, 'conv.safetensors');
  const kernel = Array.from({ length: 16 * 16 * 9 }, (_, i) => ((i * 37) % 11) / 10 - 0.5);
  writeCheckpoint(file, kernel);
  const graph = new Graph('conv');
  const x = graph.input('x', 'float32', [1, 16, 6, 6]);
  const w = graph.weight('w', 'float32', [16, 16, 3, 3], { kind: 'external', file, offset: HEADER, length: 4 * kernel.length });
  graph.output('y', conv2d(x, w, undefined, { padding: 1 }));
  const model = serializeGraph(graph);
  const feed = { x: Float32Array.from({ length: 16 * 36 }, (_, i) => Math.sin(i)) };
  const expected = (await runGraph(graph, feed)).y as Float32Array;
  const optimizedFiles = (folder: string) => fs.readdirSync(folder).filter((f) => f.startsWith('optimized-'));
  const close = (actual: Float32Array) => actual.every((v, i) => Math.abs(v - expected[i]!) <= 1e-5 * (1 + Math.abs(expected[i]!)));

  // Any copy is too much here: the 16×16×3×3 kernel that the CPU layout pass reorders is.
  const linked = { ...options, externalWeights: 'link' } as const;
  const strict = new SessionStore(path.join(dir, 'strict'), { maxCopiedWeightBytes: 0 });
  const first = await strict.compile(nextHandle, model, linked);
  assert.equal(first.optimizedModelCache, 'written');
  assert.match(optimizedFiles(first.folder).join(), /^optimized-cpu-extended-[0-9a-f]{16}\.onnx$/);
  assert.ok(close((await strict.run(nextHandle, feed)).outputs.y as Float32Array));
  await strict.release(nextHandle++);
  const again = await strict.compile(nextHandle, model, linked);
  assert.equal(again.optimizedModelCache, 'hit');
  assert.ok(close((await strict.run(nextHandle, feed)).outputs.y as Float32Array));
  await strict.release(nextHandle++);

  // Within the default allowance, the level-all model is kept: it loads with no optimisation at all.
  const lenient = new SessionStore(path.join(dir, 'lenient'));
  const kept = await lenient.compile(nextHandle, model, linked);
  const [allFile] = optimizedFiles(kept.folder);
  assert.match(allFile ?? '', /^optimized-cpu-all-/);
  assert.ok(fs.statSync(path.join(kept.folder, allFile!)).size > 4 * kernel.length, 'the reordered kernel is inside the level-all model');
  await lenient.release(nextHandle++);

  // Shared weights are inputs: nothing to reorder at load, so the level-all model holds no weights at all.
  const shared = await lenient.compile(nextHandle, model, options);
  assert.equal(shared.externalWeights[0]?.mode, 'shared');
  const [sharedFile] = optimizedFiles(shared.folder);
  assert.match(sharedFile ?? '', /^optimized-cpu-all-/);
  assert.ok(fs.statSync(path.join(shared.folder, sharedFile!)).size < 4 * kernel.length, 'no kernel inside the cached model');
  assert.ok(close((await lenient.run(nextHandle, feed)).outputs.y as Float32Array));
  await lenient.release(nextHandle++);
});

test('identical compiles share one session until the last release; other options get their own', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'share-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));
  const [h1, h2, h3] = [nextHandle++, nextHandle++, nextHandle++];
  const first = await store.compile(h1, model, options);
  const second = await store.compile(h2, model, { ...options, label: 'second' });
  const third = await store.compile(h3, model, { ...options, intraOpNumThreads: 2 });
  assert.equal(first.reused, false);
  assert.equal(second.reused, true);
  assert.equal(second.label, 'second');
  assert.equal(second.createMs, 0);
  assert.equal(third.reused, false);
  assert.equal(store.sessionCount, 2);
  await store.release(h1);
  assert.equal(store.sessionCount, 2, 'the shared session stays while a handle uses it');
  assert.deepEqual([...(await store.run(h2, { a: a() })).outputs.s!], [580]);
  await store.release(h2);
  await store.release(h3);
  assert.equal(store.sessionCount, 0);
  await assert.rejects(store.run(h2, { a: a() }), /not compiled here/);
});

test('the memory pattern and the CPU arena can be turned off per compile, each in its own session', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'memory-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));
  const [h1, h2, h3, h4] = [nextHandle++, nextHandle++, nextHandle++, nextHandle++];
  const plain = await store.compile(h1, model, options);
  assert.equal(plain.options.enableMemPattern, true, 'onnxruntime\'s default');
  assert.equal(plain.options.enableCpuMemArena, true, 'onnxruntime\'s default');
  const noPattern = await store.compile(h2, model, { ...options, enableMemPattern: false });
  const noArena = await store.compile(h3, model, { ...options, enableCpuMemArena: false });
  const again = await store.compile(h4, model, { ...options, enableMemPattern: false });
  assert.deepEqual([noPattern.reused, noArena.reused, again.reused], [false, false, true]);
  assert.equal(noPattern.options.enableMemPattern, false);
  assert.equal(noArena.options.enableCpuMemArena, false);
  assert.equal(store.sessionCount, 3);
  // The optimised model does not depend on either option: the later compiles load the first one's.
  assert.deepEqual([noPattern.optimizedModelCache, noArena.optimizedModelCache], ['hit', 'hit']);
  for (const handle of [h1, h2, h3]) {
    // Twice: the memory pattern is planned on the first run and used from the second.
    for (let run = 0; run < 2; run++) assert.deepEqual([...(await store.run(handle, { a: a() })).outputs.y!], [20, 60, 120, 50, 120, 210]);
  }
  await store.releaseAll();
});

test('a session onnxruntime cannot create is an error naming the graph, the provider and the reason', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'invalid-'));
  const store = new SessionStore(path.join(dir, 'cache'));
  const broken: SerializedModel = { bytes: Buffer.from('not a model'), hash: 'f'.repeat(64), externalFiles: [], inputNames: [], outputNames: [] };
  await assert.rejects(
    store.compile(nextHandle++, broken, { ...options, label: 'broken graph' }),
    (e: unknown) =>
      e instanceof SessionCreationError &&
      e.provider === 'cpu' &&
      /Could not create an onnxruntime session for broken graph on the cpu execution provider: .*protobuf/i.test(e.message) &&
      /bug to report/.test(e.message),
  );
  const folder = path.join(dir, 'cache', broken.hash);
  assert.deepEqual(fs.readdirSync(folder), ['model.onnx'], 'no optimised model or temporary file is left behind');
  assert.equal(store.sessionCount, 0);
});

test('node placement is counted per provider from an onnxruntime profile', () => {
  const kernel = (name: string, provider: string) => ({ cat: 'Node', name: `${name}_kernel_time`, args: { provider } });
  const placement = countNodePlacement([
    { cat: 'Session', name: 'model_run' },
    kernel('conv', 'CUDAExecutionProvider'),
    kernel('conv', 'CUDAExecutionProvider'), // a second run of the same node counts once
    kernel('matmul', 'CUDAExecutionProvider'),
    kernel('nonzero', 'CPUExecutionProvider'),
    { cat: 'Node', name: 'conv_fence_before', args: { provider: 'CUDAExecutionProvider' } },
  ]);
  assert.deepEqual(placement, { CUDAExecutionProvider: 2, CPUExecutionProvider: 1 });
});

/** z = sum((a · w)²) over the same weight as `weightedGraph`: another graph (another hash) over the same checkpoint. */
function secondGraph(file: string): SerializedModel {
  const graph = new Graph('second');
  const input = graph.input('a', 'float32', [2, 3]);
  const w = graph.weight('w', 'float32', [3], { kind: 'external', file, offset: HEADER, length: 12 });
  const y = mul(input, w);
  graph.output('z', reduceSum(mul(y, y), [0, 1], false));
  return serializeGraph(graph);
}

test('a second graph over a loaded checkpoint adds no copy of its weights when they are linked; in memory it does', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'resident-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [1, 2, 3]);
  const bytes = HEADER + 12;
  for (const mode of ['link', 'memory'] as const) {
    const store = new SessionStore(path.join(dir, `cache-${mode}`));
    assert.equal(store.residentWeightBytes(), 0);
    const first = nextHandle++;
    const second = nextHandle++;
    await store.compile(first, weightedGraph(file).model, { ...options, externalWeights: mode });
    assert.equal(store.residentWeightBytes(), bytes, `${mode}: one graph holds the checkpoint once`);
    await store.compile(second, secondGraph(file), { ...options, externalWeights: mode });
    assert.equal(store.sessionCount, 2, 'two graphs, two sessions');
    const [entry] = store.residentWeights();
    assert.deepEqual(
      { ...entry, file: path.basename(entry!.file) },
      { file: 'model.safetensors', mode, bytes, sessions: 2, residentBytes: mode === 'link' ? bytes : 2 * bytes },
    );
    await store.release(first);
    assert.equal(store.residentWeightBytes(), bytes, `${mode}: the remaining graph still holds it`);
    await store.release(second);
    assert.equal(store.residentWeightBytes(), 0);
  }
});

test('shared weights: the default on the CPU; fed by the engine, not the caller; held once for every graph over them', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'shared-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [1, 2, 3]);
  const store = new SessionStore(path.join(dir, 'cache'));
  const first = nextHandle++;
  const second = nextHandle++;
  const info = await store.compile(first, weightedGraph(file).model, options);
  assert.deepEqual(info.externalWeights.map((w) => [path.basename(w.file), w.mode]), [['model.safetensors', 'shared']]);
  assert.deepEqual(info.inputs.map((i) => i.name), ['a'], 'the weight is not one of the caller\'s inputs');
  assert.equal(fs.readdirSync(info.folder).filter((f) => f.startsWith('weights')).length, 0, 'no checkpoint in the session folder');
  assert.deepEqual([...(await store.run(first, { a: a() })).outputs.y!], [2, 6, 12, 5, 12, 21]);
  await assert.rejects(store.run(first, { a: a(), w: Float32Array.of(0, 0, 0) }), /unknown feed\(s\) w/);

  await store.compile(second, secondGraph(file), options);
  assert.equal(store.sessionCount, 2);
  const [entry] = store.residentWeights();
  assert.deepEqual({ ...entry, file: path.basename(entry!.file) }, { file: 'model.safetensors', mode: 'shared', bytes: HEADER + 12, sessions: 2, residentBytes: 12 });
  assert.deepEqual([...(await store.run(second, { a: a() })).outputs.z!], [1 + 16 + 81 + 16 + 100 + 324]);
  await store.release(first);
  assert.equal(store.residentWeightBytes(), 12, 'the remaining graph still holds the tensor');
  await store.release(second);
  assert.equal(store.residentWeightBytes(), 0, 'the last release drops it');
});

test('shared weights: a checkpoint replaced under the same path is read anew; a truncated one is a clear error', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'shared-replaced-'));
  const file = path.join(dir, 'model.safetensors');
  writeCheckpoint(file, [10, 20, 30]);
  const { model } = weightedGraph(file);
  const store = new SessionStore(path.join(dir, 'cache'));
  const old = nextHandle++;
  const holder = nextHandle++;
  await store.compile(old, model, options);
  assert.deepEqual([...(await store.run(old, { a: a() })).outputs.s!], [580]);
  await store.release(old);
  // Another live graph still holds the old tensor while the file is replaced.
  await store.compile(holder, secondGraph(file), options);
  writeCheckpoint(`${file}.new`, [1, 1, 1]);
  fs.renameSync(`${file}.new`, file);
  const renewed = nextHandle++;
  await store.compile(renewed, model, options);
  assert.deepEqual([...(await store.run(renewed, { a: a() })).outputs.s!], [27], 'the new file\'s weights');
  await store.release(renewed);
  await store.release(holder);

  fs.writeFileSync(file, Buffer.alloc(HEADER + 4));
  await assert.rejects(store.compile(nextHandle++, model, options), (e: unknown) => e instanceof ExternalWeightsError && /truncated/.test(e.message));
  assert.equal(store.sessionCount, 0);
});

test('shared float16 weights are optimised at every compile, not loaded from the optimised-model cache (so fp16 replays stay exact)', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'shared-f16-'));
  const file = path.join(dir, 'half.safetensors');
  const half = float32ToFloat16Bits(Float32Array.of(0.5, 1.5, -2));
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(HEADER, 0xab), Buffer.from(half.buffer)]));
  const graph = new Graph('half');
  const input = graph.input('a', 'float32', [2, 3]);
  const w = graph.weight('w', 'float16', [3], { kind: 'external', file, offset: HEADER, length: 6 });
  graph.output('y', mul(input, cast(w, 'float32')));
  const store = new SessionStore(path.join(dir, 'cache'));
  for (let i = 0; i < 2; i++) {
    const info = await store.compile(nextHandle, serializeGraph(graph), options);
    assert.equal(info.externalWeights[0]?.mode, 'shared');
    assert.equal(info.optimizedModelCache, 'off');
    assert.deepEqual([...(await store.run(nextHandle, { a: a() })).outputs.y!], [0.5, 3, -6, 2, 7.5, -12]);
    await store.release(nextHandle++);
  }
  // The same graph linked keeps its cache: float16 initializers are cast once, at load.
  const linked = await store.compile(nextHandle, serializeGraph(graph), { ...options, externalWeights: 'link' });
  assert.equal(linked.optimizedModelCache, 'written');
  await store.release(nextHandle++);
});
