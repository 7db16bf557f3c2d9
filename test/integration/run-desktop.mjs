#!/usr/bin/env node
// Runs the same integration suite in desktop VS Code through @vscode/test-electron, for machines that can
// download VS Code (it fetches the build into .vscode-test/; on Linux it needs a display, e.g. `xvfb-run -a`).
// The checks that need to look at the page (webview DOM, notifications) are skipped here: only the
// code-server runner (run.mjs) drives the page. After VS Code exits, no sidecar process may remain.
// Env: CLIPDRAG_VSCODE_VERSION (default 1.100.3, the lowest version engines.vscode allows), CLIPDRAG_VSCODE_EXECUTABLE (use a local build).
import { runTests } from '@vscode/test-electron';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copySamples } from '../../scripts/samples.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const testsIndex = path.join(repo, 'dist', 'test', 'integration', 'index.js');
if (!fs.existsSync(testsIndex)) {
  console.error(`${testsIndex} is missing: run "npm run build" first`);
  process.exit(1);
}

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-desktop-'));
const workspace = path.join(runDir, 'workspace');
const channel = path.join(runDir, 'channel');
copySamples(repo, workspace);
fs.mkdirSync(channel);
fs.writeFileSync(path.join(channel, 'runner.json'), JSON.stringify({ pageQueries: false }));

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

let code = 0;
try {
  const executable = process.env.CLIPDRAG_VSCODE_EXECUTABLE;
  await runTests({
    ...(executable ? { vscodeExecutablePath: executable } : { version: process.env.CLIPDRAG_VSCODE_VERSION ?? '1.100.3' }),
    extensionDevelopmentPath: repo,
    extensionTestsPath: testsIndex,
    extensionTestsEnv: { CLIPDRAG_TEST_CHANNEL: channel },
    launchArgs: [
      workspace,
      '--disable-extensions',
      '--user-data-dir', path.join(runDir, 'user-data'),
    ],
  });
  const pidFile = path.join(channel, 'sidecar-pids.txt');
  const pids = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number) : [];
  for (const end = Date.now() + 10_000; pids.some(isAlive) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  const survivors = pids.filter(isAlive);
  if (pids.length === 0) throw new Error('the suite reported no sidecar process, so the no-orphan check could not run');
  if (survivors.length > 0) throw new Error(`sidecar process(es) ${survivors.join(', ')} still running after VS Code exited`);
  console.log(`[desktop] no sidecar process left after VS Code exited (checked pids ${pids.join(', ')})`);
} catch (error) {
  console.error(`[desktop] FAILED: ${error instanceof Error ? error.message : String(error)}`);
  code = 1;
} finally {
  fs.rmSync(runDir, { recursive: true, force: true });
}
process.exit(code);
