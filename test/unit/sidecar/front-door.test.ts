// The RPC front door's shared kit: the one device queue (edits, batches and model preparation in arrival order,
// never two at once) and the run-choice checks both request kinds answer with.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseError } from 'vscode-jsonrpc/node';
import { checkRunChoices, DeviceQueue } from '../../../src/sidecar/rpc/front-door';

test('device queue: a batch and an edit never overlap; a failure leaves the queue ready', async () => {
  const queue = new DeviceQueue();
  const log: string[] = [];
  let running = 0;
  const task = (name: string, ms: number, fail = false) => async () => {
    running++;
    assert.equal(running, 1, `${name} started while another task ran`);
    log.push(`start ${name}`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    log.push(`end ${name}`);
    running--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const batch = queue.run(task('batch', 30, true));
  const edit = queue.run(task('edit', 5));
  await assert.rejects(batch, /batch failed/);
  assert.equal(await edit, 'edit');
  assert.deepEqual(log, ['start batch', 'end batch', 'start edit', 'end edit']);
});

test('run choices: one wording for every request, under the name the request uses', () => {
  const refused = (fn: () => void, message: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof ResponseError && e.code === -32602 && message.test(e.message));
  refused(() => checkRunChoices('edit/run', { device: { name: 'settings.device', value: 'gpu' } }), /^edit\/run: settings\.device must be one of auto, cpu, cuda, webgpu, dml, coreml \(got "gpu"\)$/);
  refused(() => checkRunChoices('batch/run', { device: { name: 'device', value: 'gpu' } }), /^batch\/run: device must be one of auto, cpu, cuda, webgpu, dml, coreml \(got "gpu"\)$/);
  refused(() => checkRunChoices('batch/run', { precision: { name: 'precision', value: 'fp8' } }), /precision must be one of auto, fp32, fp16, fp16-weights \(got "fp8"\)/);
  refused(() => checkRunChoices('edit/run', { workingWidth: 500 }), /workingWidth must be a positive multiple of 8 \(got 500\)/);
  checkRunChoices('edit/run', { device: { name: 'settings.device', value: 'cpu' }, precision: { name: 'precision', value: undefined }, workingWidth: 512 });
});
