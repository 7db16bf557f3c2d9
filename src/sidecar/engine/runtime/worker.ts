/**
 * The engine worker: owns the onnxruntime sessions, so that their blocking `run()` never stalls the
 * sidecar's main thread. Requests are handled one at a time, in arrival order: runs never overlap
 * (the WebGPU provider crashes on concurrent runs) and a release never races a run.
 *
 * Bundled as dist/engine-worker.js; started by engine.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError, type WorkerRequest, type WorkerResponse, type WorkerStart } from './protocol';
import { SessionStore } from './sessions';
import { transferable } from './tensors';

const port = parentPort;
if (!port) throw new Error('engine-worker must be started as a worker thread (see engine.ts)');

// The sidecar's stdout is its protocol channel: anything logged here goes to stderr. (Capturing the
// worker's stdout in the main thread instead would keep the process alive.)
console.log = console.info = console.debug = console.error;

const start = workerData as WorkerStart;
const store = new SessionStore(start.cacheDir);
let queue: Promise<void> = Promise.resolve();

port.on('message', (request: WorkerRequest) => {
  queue = queue.then(() => handle(request));
});

async function handle(request: WorkerRequest): Promise<void> {
  let response: WorkerResponse;
  let transfer: ArrayBuffer[] = [];
  try {
    switch (request.type) {
      case 'compile':
        response = { id: request.id, ok: true, result: await store.compile(request.handle, request.model, request.options) };
        break;
      case 'run': {
        const result = await store.run(request.handle, request.feeds, request.outputNames);
        transfer = transferable(result.outputs);
        response = { id: request.id, ok: true, result };
        break;
      }
      case 'release':
        await store.release(request.handle);
        response = { id: request.id, ok: true, result: null };
        break;
      case 'weights':
        response = { id: request.id, ok: true, result: store.residentWeights() };
        break;
      case 'close':
        await store.releaseAll();
        response = { id: request.id, ok: true, result: null };
        break;
    }
  } catch (error) {
    response = { id: request.id, ok: false, error: serializeError(error) };
  }
  port!.postMessage(response, transfer);
}
