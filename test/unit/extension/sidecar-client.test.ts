// The extension's sidecar client against a real sidecar process (the TypeScript source through tsx).
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { SidecarClient, SidecarExitedError, SidecarStartError, type SidecarExitEvent, type SidecarLog } from '../../../src/extension/sidecar/sidecar-client';
import { InitializeRequest, type DevicePreference } from '../../../src/shared/protocol';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');

function recordingLog(): SidecarLog & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { lines, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const clients: SidecarClient[] = [];
function client(options: { script?: string; device?: () => DevicePreference; log?: SidecarLog; env?: Record<string, string> } = {}): SidecarClient {
  const created = new SidecarClient({
    script: options.script ?? SIDECAR,
    execArgv: ['--import', 'tsx'],
    initializeParams: () => ({ client: 'sidecar-client unit test', devicePreference: options.device?.() ?? 'auto' }),
    log: options.log ?? recordingLog(),
    ...(options.env ? { env: options.env } : {}),
  });
  clients.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.dispose()));
});

describe('SidecarClient', () => {
  it('starts the sidecar lazily, once, and forwards its stderr log with levels', async () => {
    const log = recordingLog();
    const sidecar = client({ log });
    assert.equal(sidecar.pid, undefined, 'nothing runs before the first request');
    const [a, b] = await Promise.all([sidecar.start(), sidecar.start()]);
    assert.equal(a.pid, b.pid, 'concurrent starts share one process');
    assert.equal(sidecar.pid, a.pid);
    assert.ok(isAlive(a.pid));
    assert.equal(sidecar.initializeResult, a);
    assert.ok(log.lines.some((l) => /^info: \[sidecar\] initialize from sidecar-client unit test; device preference: auto; cache folder: /.test(l)), log.lines.join('\n'));
  });

  it('gives the process the environment it is configured with (the extension\'s cache folder)', async () => {
    const log = recordingLog();
    const folder = path.join(os.tmpdir(), 'clipdrag-storage-test', 'cache');
    await client({ log, env: { CLIPDRAG_CACHE_DIR: folder } }).start();
    assert.ok(log.lines.some((l) => l.endsWith(`; cache folder: ${folder}`)), log.lines.join('\n'));
  });

  it('fails a pending request with a clear error when the process dies, then restarts on the next request', async () => {
    const log = recordingLog();
    const sidecar = client({ log });
    const first = await sidecar.start();
    const exits: SidecarExitEvent[] = [];
    sidecar.onDidExit((event) => exits.push(event));

    const pending = sidecar.sendRequest(InitializeRequest, { client: 'x', devicePreference: 'cpu' });
    process.kill(first.pid, 'SIGKILL');
    await assert.rejects(pending, (error: unknown) => {
      assert.ok(error instanceof SidecarExitedError);
      assert.equal(error.signal, 'SIGKILL');
      assert.equal(error.message, 'The CLIPDrag engine process was killed by SIGKILL during "initialize". It restarts on the next request; see "CLIPDrag: Show Logs" for details.');
      return true;
    });
    assert.deepEqual(exits, [{ pid: first.pid, code: null, signal: 'SIGKILL', unexpected: true }]);
    assert.equal(sidecar.pid, undefined);
    assert.ok(log.lines.some((l) => l === `error: sidecar ${first.pid} was killed by SIGKILL; it restarts on the next request`));

    const again = await sidecar.sendRequest(InitializeRequest, { client: 'x', devicePreference: 'cpu' });
    assert.notEqual(again.pid, first.pid);
    assert.equal(sidecar.pid, again.pid);
    assert.deepEqual(again.executionProvider, { ok: true, preference: 'cpu', provider: 'cpu', reason: 'requested explicitly' });
  });

  it('stop() shuts the process down gracefully; restart() brings up a new one with fresh settings', async () => {
    let device: DevicePreference = 'auto';
    const sidecar = client({ device: () => device });
    const first = await sidecar.start();
    const exits: SidecarExitEvent[] = [];
    sidecar.onDidExit((event) => exits.push(event));

    device = 'cpu';
    const second = await sidecar.restart();
    assert.equal(isAlive(first.pid), false);
    assert.deepEqual(exits, [{ pid: first.pid, code: 0, signal: null, unexpected: false }]);
    assert.equal(second.executionProvider.preference, 'cpu');

    await sidecar.stop();
    assert.equal(sidecar.pid, undefined);
    assert.equal(isAlive(second.pid), false);
    assert.equal(exits[1]?.code, 0, 'a graceful shutdown exits with code 0');
  });

  it('refuses requests after dispose, and leaves no process behind', async () => {
    const sidecar = client();
    const { pid } = await sidecar.start();
    await sidecar.dispose();
    assert.equal(isAlive(pid), false);
    await assert.rejects(sidecar.start(), /disposed/);
  });

  it('reports a sidecar that cannot start, quoting its output', async () => {
    const sidecar = client({ script: path.join(repo, 'no-such-sidecar.js') });
    await assert.rejects(sidecar.start(), (error: unknown) => {
      assert.ok(error instanceof SidecarStartError);
      assert.match(error.message, /^The CLIPDrag engine process failed to start: it exited with code 1 before answering "initialize"\. Its last output:\n/);
      assert.match(error.message, /Cannot find module/);
      return true;
    });
  });
});
