import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUTO_PRIORITY,
  ExecutionProviderUnavailableError,
  chooseExecutionProvider,
  listExecutionProviders,
  probeExecutionProviders,
  selectExecutionProvider,
  type ExecutionProviderStatus,
} from '../../../src/sidecar/engine/runtime/providers';

const usable = (name: string): ExecutionProviderStatus => ({ name, bundled: true, installed: true, usable: true });
const broken = (name: string, problem: string, installed = true): ExecutionProviderStatus => ({ name, bundled: false, installed, usable: false, problem });

describe('execution providers on this machine (real onnxruntime-node)', () => {
  it('lists what onnxruntime-node offers, with the CPU provider bundled', () => {
    const providers = listExecutionProviders();
    const cpu = providers.find((p) => p.name === 'cpu');
    assert.deepEqual(cpu, { name: 'cpu', bundled: true, installed: true });
    for (const p of providers) {
      assert.equal(typeof p.name, 'string');
      if (p.bundled) assert.equal(p.installed, true, `${p.name} is bundled, so it is installed`);
    }
  });

  it('probes every provider: CPU works, and each unusable one says why', async () => {
    const statuses = await probeExecutionProviders();
    assert.deepEqual(statuses.map((s) => s.name), listExecutionProviders().map((p) => p.name));
    assert.equal(statuses.find((s) => s.name === 'cpu')?.usable, true);
    for (const s of statuses.filter((s) => !s.usable)) assert.ok(s.problem && s.problem.length > 20, `${s.name} lacks an explanation`);
    for (const s of statuses.filter((s) => !s.installed)) assert.equal(s.usable, false, `${s.name} is not installed but probed usable`);
  });

  it('auto picks the highest-priority provider that really works here', async () => {
    const statuses = await probeExecutionProviders();
    const expected = AUTO_PRIORITY.find((name) => statuses.some((s) => s.name === name && s.usable));
    assert.equal((await chooseExecutionProvider('auto')).provider, expected);
  });

  it('cpu resolves to cpu', async () => {
    assert.deepEqual(await chooseExecutionProvider('cpu'), { provider: 'cpu', reason: 'requested explicitly' });
  });

  it('an explicitly requested provider that cannot run here is an error, never a CPU fallback', async () => {
    const statuses = await probeExecutionProviders();
    for (const device of ['cuda', 'webgpu', 'dml', 'coreml'] as const) {
      const status = statuses.find((s) => s.name === device);
      if (status?.usable) {
        assert.equal((await chooseExecutionProvider(device)).provider, device);
        continue;
      }
      await assert.rejects(chooseExecutionProvider(device), (error: unknown) => {
        assert.ok(error instanceof ExecutionProviderUnavailableError);
        assert.equal(error.preference, device);
        assert.match(error.message, new RegExp(`"${device}" device is not available`));
        assert.match(error.message, /Usable here: .*cpu/);
        return true;
      });
    }
  });
});

describe('selectExecutionProvider (the choice rules, for any machine)', () => {
  it('auto prefers cuda > dml > webgpu > coreml > cpu among usable providers', () => {
    assert.equal(selectExecutionProvider('auto', [usable('cpu'), usable('webgpu'), usable('cuda')]).provider, 'cuda');
    assert.equal(selectExecutionProvider('auto', [usable('cpu'), usable('dml'), usable('webgpu')]).provider, 'dml');
    assert.equal(selectExecutionProvider('auto', [usable('cpu'), usable('coreml'), usable('webgpu')]).provider, 'webgpu');
    assert.equal(selectExecutionProvider('auto', [usable('cpu'), usable('coreml')]).provider, 'coreml');
    assert.equal(selectExecutionProvider('auto', [usable('cpu'), usable('tensorrt')]).provider, 'cpu');
  });

  it('auto skips providers that are offered but do not work (webgpu without an adapter, cuda without libraries)', () => {
    const choice = selectExecutionProvider('auto', [usable('cpu'), broken('webgpu', 'no usable WebGPU adapter'), broken('cuda', 'not installed', false)]);
    assert.equal(choice.provider, 'cpu');
    assert.match(choice.reason, /cuda, webgpu not usable/);
  });

  it('auto with nothing usable is an error listing each problem', () => {
    assert.throws(() => selectExecutionProvider('auto', [broken('cpu', 'out of luck')]), (error: unknown) => {
      assert.ok(error instanceof ExecutionProviderUnavailableError);
      assert.match(error.message, /cpu: out of luck/);
      return true;
    });
  });

  it('an explicit provider that is offered but broken reports its problem and the alternatives', () => {
    assert.throws(
      () => selectExecutionProvider('cuda', [usable('cpu'), broken('cuda', 'the CUDA provider libraries are not installed', false)]),
      /The "cuda" device is not available: the CUDA provider libraries are not installed\. Usable here: cpu; choose one of those or "auto"\./,
    );
  });

  it('an explicit provider that this build does not offer says where it exists', () => {
    assert.throws(() => selectExecutionProvider('dml', [usable('cpu')]), /offers no dml execution provider .*\(it offers: cpu\); DirectML is available on Windows only/);
    assert.throws(() => selectExecutionProvider('coreml', [usable('cpu')]), /CoreML is available on macOS only/);
  });

  it('an explicit provider that works is taken as is', () => {
    assert.deepEqual(selectExecutionProvider('webgpu', [usable('cpu'), usable('webgpu')]), { provider: 'webgpu', reason: 'requested explicitly' });
  });
});
