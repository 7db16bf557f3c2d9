// Runs the real `clipdrag` CLI (the sidecar entry through tsx) as a child process.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { version } from '../../../package.json';

const repo = path.resolve(__dirname, '..', '..', '..');

function clipdrag(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(repo, 'src', 'sidecar', 'main.ts'), ...args], { cwd: repo, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('clipdrag CLI', () => {
  it('--version prints the package version', () => {
    const { code, stdout } = clipdrag('--version');
    assert.equal(code, 0);
    assert.equal(stdout.trim(), version);
  });

  it('doctor lists the execution providers and the one auto would use, exit 0', () => {
    const { code, stdout } = clipdrag('doctor');
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^Execution providers:$/m);
    assert.match(stdout, /^ {2}cpu +bundled +usable$/m);
    assert.match(stdout, /^Device "auto" would use: \S+ \(auto: /m);
  });

  it('doctor reports an unusable WebGPU in its table, never as raw driver output on stderr', () => {
    const { code, stdout, stderr } = clipdrag('doctor');
    assert.equal(code, 0, stdout);
    // Dawn writes adapter diagnostics ("Couldn't load Vulkan", "Warning: Vulkan ...") to the process's stderr.
    assert.equal(stderr, '', 'nothing but the report');
    const webgpu = /^ {2}webgpu +\S+ +(.*)$/m.exec(stdout);
    if (webgpu && webgpu[1] !== 'usable') assert.match(webgpu[1]!, /^not usable: no usable WebGPU adapter \(.+\)\. WebGPU needs a GPU with Vulkan/);
  });

  it('doctor --json gives the same facts in machine-readable form', () => {
    const { code, stdout } = clipdrag('doctor', '--json', '--device', 'cpu');
    assert.equal(code, 0);
    const report = JSON.parse(stdout) as { version: string; providers: { name: string; usable: boolean }[]; choice: { ok: boolean; provider?: string } };
    assert.equal(report.version, version);
    assert.ok(report.providers.some((p) => p.name === 'cpu' && p.usable));
    assert.deepEqual(report.choice, { ok: true, provider: 'cpu', reason: 'requested explicitly' });
  });

  it('doctor with a device this machine cannot use explains why and exits 1', () => {
    // DirectML exists only in Windows builds of onnxruntime-node.
    if (process.platform === 'win32') return;
    const { code, stderr } = clipdrag('doctor', '--device=dml');
    assert.equal(code, 1);
    assert.match(stderr, /Device "dml" cannot be used: .*DirectML is available on Windows only/);
  });

  it('usage mistakes exit 2 with the usage text', () => {
    const unknown = clipdrag('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    assert.match(unknown.stderr, /^Usage: clipdrag <command>/m);
    const badDevice = clipdrag('doctor', '--device', 'tpu');
    assert.equal(badDevice.code, 2);
    assert.match(badDevice.stderr, /--device must be one of/);
  });
});
