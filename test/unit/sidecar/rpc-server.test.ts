// The sidecar as the extension sees it: a real process speaking JSON-RPC on stdio.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { version } from '../../../package.json';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');

function frame(message: object): string {
  const body = JSON.stringify({ jsonrpc: '2.0', ...message });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Splits stdout into protocol frames; throws if any byte is not part of a well-formed frame.
 * A trailing frame that has not fully arrived yet is left out, not treated as an error.
 */
function parseFrames(stdout: Buffer): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [];
  let offset = 0;
  while (offset < stdout.length) {
    const headerEnd = stdout.indexOf('\r\n\r\n', offset);
    if (headerEnd < 0 && isHeaderPrefix(stdout.subarray(offset).toString('ascii'))) break;
    assert.ok(headerEnd > 0, `stray bytes on stdout: ${JSON.stringify(stdout.subarray(offset).toString())}`);
    const header = stdout.subarray(offset, headerEnd).toString('ascii');
    const length = /^Content-Length: (\d+)$/im.exec(header);
    assert.ok(length, `not a protocol header on stdout: ${JSON.stringify(header)}`);
    const start = headerEnd + 4;
    if (start + Number(length[1]) > stdout.length) break;
    messages.push(JSON.parse(stdout.subarray(start, start + Number(length[1])).toString('utf8')) as Record<string, unknown>);
    offset = start + Number(length[1]);
  }
  return messages;
}

/** True for the start of a header whose remaining bytes are still on their way. */
function isHeaderPrefix(text: string): boolean {
  const full = 'Content-Length: ';
  return full.startsWith(text) || /^Content-Length: \d*(\r(\n\r?)?)?$/.test(text);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}

describe('sidecar RPC server (real process)', () => {
  it('answers initialize and shutdown, keeps stdout protocol-only, and exits 0 when its input ends', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', SIDECAR, '--stdio'], { cwd: repo, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    child.stdin.write(frame({ id: 1, method: 'initialize', params: { client: 'unit test', devicePreference: 'auto' } }));
    child.stdin.write(frame({ id: 2, method: 'initialize', params: { client: 'unit test', devicePreference: 'dml' } }));
    child.stdin.write(frame({ id: 3, method: 'initialize', params: { client: 'unit test', devicePreference: 'tpu' } }));
    child.stdin.write(frame({ id: 4, method: 'shutdown' }));
    await waitUntil('four responses', () => parseFrames(Buffer.concat(stdout)).length >= 4, 30_000);
    child.stdin.end();
    assert.equal(await exited, 0, stderr);

    const responses = new Map(parseFrames(Buffer.concat(stdout)).map((m) => [m.id, m]));
    const auto = responses.get(1)?.result as { version: string; pid: number; executionProviders: { name: string; usable: boolean }[]; executionProvider: { ok: boolean; provider: string } };
    assert.equal(auto.version, version);
    assert.equal(auto.pid, child.pid);
    assert.ok(auto.executionProviders.some((p) => p.name === 'cpu' && p.usable));
    assert.equal(auto.executionProvider.ok, true);

    // An unusable explicit device is reported in the answer (the engine keeps serving), not a silent fallback.
    const dml = responses.get(2)?.result as { executionProvider: { ok: boolean; error?: string } };
    if (process.platform !== 'win32') {
      assert.equal(dml.executionProvider.ok, false);
      assert.match(dml.executionProvider.error ?? '', /"dml" device is not available/);
    }
    const invalid = responses.get(3)?.error as { code: number; message: string };
    assert.equal(invalid.code, -32602);
    assert.match(invalid.message, /devicePreference must be one of/);
    assert.deepEqual(responses.get(4), { jsonrpc: '2.0', id: 4, result: null });

    assert.match(stderr, /^\[info\] clipdrag sidecar .* serving JSON-RPC on stdio$/m);
    assert.match(stderr, /^\[info\] shutdown requested$/m);
  });

  it('exits when the process that spawned it is gone, even though its stdin stays open', { skip: process.platform === 'win32' && 'needs mkfifo' }, async () => {
    // The sidecar's stdin is a FIFO this test holds open for writing, so only the parent watch can end it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-parent-watch-'));
    const fifo = path.join(dir, 'stdin');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo failed');
    const fifoFd = fs.openSync(fifo, 'r+'); // read-write: opening does not block, and a writer stays
    // A short-lived parent starts the sidecar on that FIFO and exits at once.
    const launcher = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['--import', 'tsx', ${JSON.stringify(SIDECAR)}, '--stdio'],
        { stdio: ['inherit', 'ignore', 'ignore'], env: { ...process.env, CLIPDRAG_PARENT_PID: String(process.pid) }, detached: true });
      process.stdout.write(String(child.pid));
      child.unref();`;
    const parent = spawnSync(process.execPath, ['-e', launcher], { cwd: repo, stdio: [fifoFd, 'pipe', 'inherit'], encoding: 'utf8' });
    const sidecarPid = Number(parent.stdout);
    try {
      assert.ok(sidecarPid > 0, `launcher printed no pid: ${parent.stdout}`);
      assert.ok(isAlive(sidecarPid), 'the sidecar should outlive its parent for a moment');
      await waitUntil(`sidecar ${sidecarPid} to exit after its parent died`, () => !isAlive(sidecarPid), 10_000);
    } finally {
      if (sidecarPid > 0 && isAlive(sidecarPid)) process.kill(sidecarPid, 'SIGKILL');
      fs.closeSync(fifoFd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends console output of the sidecar to stderr, never stdout', () => {
    const script = `require(${JSON.stringify(path.join(repo, 'src', 'sidecar', 'log.ts'))}).redirectConsoleToStderr(); console.log('hello', { a: 1 }); console.info('two');`;
    const result = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: repo, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr, '[info] hello {"a":1}\n[info] two\n');
  });
});
