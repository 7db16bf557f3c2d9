/**
 * The engine client: compiles serialised graphs into onnxruntime sessions and runs them, in a worker
 * thread (onnxruntime-node blocks its thread while it creates a session or runs one).
 *
 *   const engine = new Engine({ cacheDir });
 *   const graph = await engine.compile(serializeGraph(g), { device: 'auto' });
 *   const { y } = await engine.run(graph, { x });
 *   await engine.release(graph);
 *   await engine.close();
 *
 * Requests reach the worker in call order and are handled one at a time there, so runs never overlap.
 * Cancelling between runs is the caller's business. Output buffers are transferred, not copied; inputs
 * are copied unless the caller lets them go (`transferInputs`). If the worker dies, every pending call
 * rejects with the reason, its graphs are gone, and the next compile starts a fresh worker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SerializedModel } from '../onnx/serialize';
import { deserializeError, type WorkerRequest, type WorkerResponse, type WorkerResults, type WorkerStart } from './protocol';
import { defaultCacheDir } from './sessions';
import { transferable } from './tensors';
import type { CompileOptions, CompiledGraphInfo, Feeds, NodePlacement, Outputs, ResidentWeights } from './types';

export interface EngineOptions {
  /**
   * The session cache folder (model files, weight hard links, optimised models). Default: a folder in
   * the OS temp dir. Put it on the filesystem that holds the model files, so weights are hard-linked
   * instead of read into memory.
   */
  readonly cacheDir?: string;
  /** The worker script. Default: `engine-worker.js` next to this bundle, or `worker.ts` from sources. */
  readonly workerScript?: string;
  /** Stop the worker when no graph is compiled (the next compile starts it again). Default true. */
  readonly stopWhenIdle?: boolean;
}

/** A compiled graph: what the compile reported, plus the id the engine knows it by. */
export interface CompiledGraph extends Omit<CompiledGraphInfo, 'nodePlacement'> {
  readonly id: number;
  /** Filled in by the first run when compiled with `reportNodePlacement`. */
  nodePlacement?: NodePlacement;
}

export interface RunOptions {
  /**
   * Hand the feeds' buffers to the worker instead of copying them: the caller's arrays become empty
   * (detached). A feed that is a window on a larger buffer is copied anyway. Default false.
   */
  readonly transferInputs?: boolean;
}

/** The worker stopped while calls were pending (a crash, or an uncaught error inside it). */
export class EngineWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineWorkerError';
  }
}

type RequestBody<T extends WorkerRequest['type']> = Omit<Extract<WorkerRequest, { type: T }>, 'id'>;

interface Pending {
  readonly what: string;
  readonly callerStack: string | undefined;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export class Engine {
  readonly cacheDir: string;
  private readonly workerScript: string;
  private readonly stopWhenIdle: boolean;
  private worker: Worker | undefined;
  private stopping: Promise<void> | undefined;
  private workerFailure: Error | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly live = new Map<number, CompiledGraph>();
  /** Graphs lost with a worker that died, and why. */
  private readonly lost = new Map<number, string>();
  private closed = false;

  constructor(options: EngineOptions = {}) {
    this.cacheDir = options.cacheDir ?? defaultCacheDir();
    this.workerScript = options.workerScript ?? defaultWorkerScript();
    this.stopWhenIdle = options.stopWhenIdle ?? true;
  }

  /** Whether a worker thread is currently started. */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  async compile(model: SerializedModel, options: CompileOptions = {}): Promise<CompiledGraph> {
    const handle = this.nextId++;
    const plainModel: SerializedModel = {
      bytes: model.bytes,
      hash: model.hash,
      externalFiles: model.externalFiles.map(({ file, location }) => ({ file, location })),
      inputNames: [...model.inputNames],
      outputNames: [...model.outputNames],
    };
    const info = await this.request('compile', { type: 'compile', handle, model: plainModel, options: { ...options } }, []);
    const graph: CompiledGraph = { ...info, id: handle };
    this.live.set(handle, graph);
    return graph;
  }

  /** Runs a compiled graph; returns the requested outputs (all by default) by name. */
  async run(graph: CompiledGraph, feeds: Feeds, outputNames?: readonly string[], options: RunOptions = {}): Promise<Outputs> {
    this.assertLive(graph);
    const sent = { ...feeds };
    const transfer = options.transferInputs ? transferable(sent) : [];
    const result = await this.request('run', { type: 'run', handle: graph.id, feeds: sent, ...(outputNames ? { outputNames: [...outputNames] } : {}) }, transfer);
    if (result.nodePlacement) graph.nodePlacement = result.nodePlacement;
    return result.outputs;
  }

  /** Releases a graph (its session goes when no other compile shares it). Releasing twice is harmless. */
  async release(graph: CompiledGraph): Promise<void> {
    this.lost.delete(graph.id);
    if (!this.live.delete(graph.id)) return;
    await this.request('release', { type: 'release', handle: graph.id }, []);
    if (this.stopWhenIdle && this.live.size === 0 && this.pending.size === 0) await this.stopWorker();
  }

  /**
   * The weight bytes the worker's sessions hold, per checkpoint file (`SessionStore.residentWeights()`): a
   * memory-mapped checkpoint counts once however many graphs read it. Empty when no worker runs.
   */
  async residentWeights(): Promise<readonly ResidentWeights[]> {
    if (!this.worker || this.live.size === 0) return [];
    return this.request('weights', { type: 'weights' }, []);
  }

  /** Releases every session and stops the worker. The engine cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return this.stopping;
    if (this.worker && !this.stopping) await this.request('close', { type: 'close' }, []).catch(() => undefined);
    this.closed = true;
    this.live.clear();
    await this.stopWorker();
  }

  private assertLive(graph: CompiledGraph): void {
    if (this.live.get(graph.id) === graph) return;
    const lost = this.lost.get(graph.id);
    if (lost) throw new EngineWorkerError(`${graph.label} is gone: ${lost}. Compile it again.`);
    throw new Error(`${graph.label} was released (or belongs to another engine); compile it again to run it`);
  }

  private async request<T extends WorkerRequest['type']>(type: T, body: RequestBody<T>, transfer: ArrayBuffer[]): Promise<WorkerResults[T]> {
    const callerStack = new Error().stack;
    // A worker being stopped takes no more requests: wait for it to go, then start a fresh one.
    if (this.stopping && type !== 'close') await this.stopping.catch(() => undefined);
    if (this.closed) throw new Error('the engine is closed');
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<WorkerResults[T]>((resolve, reject) => {
      this.pending.set(id, { what: type, callerStack, resolve: resolve as (result: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...body, id }, transfer);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const start: WorkerStart = { cacheDir: this.cacheDir };
    const worker = spawnWorker(this.workerScript, start);
    this.worker = worker;
    this.workerFailure = undefined;
    worker.on('message', (response: WorkerResponse) => this.settle(response));
    worker.on('error', (error) => (this.workerFailure = error));
    worker.on('exit', (code) => this.onExit(worker, code));
    return worker;
  }

  private settle(response: WorkerResponse): void {
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (response.ok) pending.resolve(response.result);
    else pending.reject(deserializeError(response.error, pending.callerStack));
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    const expected = this.stopping !== undefined;
    const reason = this.workerFailure ? `${this.workerFailure.name}: ${this.workerFailure.message}` : `exit code ${code}`;
    const message = expected ? 'the engine was closed' : `the engine worker stopped unexpectedly (${reason})`;
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      pending.reject(new EngineWorkerError(`${message} during a ${pending.what} request`));
    }
    if (!expected) {
      for (const id of this.live.keys()) this.lost.set(id, message);
      this.live.clear();
    }
  }

  private async stopWorker(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.stopping ??= worker.terminate().then(() => undefined);
    try {
      await this.stopping;
    } finally {
      this.stopping = undefined;
    }
  }
}

/** The bundled worker next to this file (dist/), else the TypeScript source (tests, tsx). */
function defaultWorkerScript(): string {
  const bundled = path.join(__dirname, 'engine-worker.js');
  if (fs.existsSync(bundled)) return bundled;
  const source = path.join(__dirname, 'worker.ts');
  if (fs.existsSync(source)) return source;
  throw new Error(`the engine worker script is missing: neither ${bundled} nor ${source} exists (run the build)`);
}

/** A variable, not a literal, so that bundlers leave this development-only lookup alone. */
const TSX_CJS_HOOK = 'tsx/cjs';

function spawnWorker(script: string, start: WorkerStart): Worker {
  const options = { workerData: start };
  if (!script.endsWith('.ts')) return new Worker(script, options);
  // From sources: Node 20 does not apply `--import tsx` to a worker's entry file, so the worker first
  // registers tsx's CommonJS hook, then loads the TypeScript entry through it.
  const tsx = require.resolve(TSX_CJS_HOOK);
  return new Worker(`require(${JSON.stringify(tsx)});\nrequire(${JSON.stringify(script)});`, { ...options, eval: true });
}
