/**
 * An engine worker that fails the way a broken one would: the first request it receives raises an
 * uncaught error inside the worker thread, which ends the thread. Lets tests check that the client turns
 * a dying worker into rejected calls with the worker's own message.
 */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', (request: { type: string }) => {
  setImmediate(() => {
    throw new Error(`simulated fault while handling a ${request.type} request`);
  });
});
