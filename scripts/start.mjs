#!/usr/bin/env node
// `npm start`: installs dependencies if they are missing, builds, and opens a scratch copy of media/samples (in the
// per-user cache, kept between starts, so trying the product never writes into the repository) in a VS Code with
// the extension loaded from this folder:
//   - desktop VS Code (`code --extensionDevelopmentPath=…`) when `code` is on PATH;
//   - otherwise code-server 4.100.3 on 127.0.0.1 (installed by scripts/setup-test-env.mjs into the per-user
//     cache), printing the URL to open in a browser. Ctrl+C stops it.
// CLIPDRAG_START=desktop|code-server forces one; PORT picks code-server's port (default 8080, or a free one).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CODE_SERVER_VERSION, testEnvPaths } from '../test/integration/test-env.mjs';
import { copySamples } from './samples.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where `npm start` opens the samples; a sample already there (perhaps edited) is kept. */
const samples = path.join(testEnvPaths().root, 'start', 'samples');
const say = (message) => console.log(`[start] ${message}`);
const isWindows = process.platform === 'win32';

function run(command, args) {
  const result = spawnSync(command, args, { cwd: repo, stdio: 'inherit', shell: isWindows });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed`);
}

function onPath(command) {
  return spawnSync(isWindows ? 'where' : 'which', [command], { stdio: 'ignore' }).status === 0;
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function choosePort() {
  if (process.env.PORT) return Number(process.env.PORT);
  if (await portIsFree(8080)) return 8080;
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function startDesktop() {
  say(`opening ${samples} in desktop VS Code with the extension from ${repo}`);
  run('code', [`--extensionDevelopmentPath=${repo}`, samples]);
}

async function startCodeServer() {
  const env = testEnvPaths();
  if (!fs.existsSync(env.codeServerBin)) run(process.execPath, [path.join(repo, 'scripts', 'setup-test-env.mjs')]);
  const state = path.join(env.root, 'start');
  const port = await choosePort();
  const authority = `127.0.0.1:${port}`;
  const server = spawn(
    env.codeServerBin,
    ['--bind-addr', authority, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--user-data-dir', path.join(state, 'user-data'), '--extensions-dir', path.join(state, 'extensions')],
    {
      // Keep code-server's config and data files out of the home folder; its own process group for a clean stop.
      env: { ...process.env, XDG_CONFIG_HOME: path.join(state, 'xdg', 'config'), XDG_DATA_HOME: path.join(state, 'xdg', 'data') },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    },
  );
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    stop();
    process.exit(143);
  });
  server.on('exit', (code) => process.exit(code ?? 1));
  const payload = JSON.stringify([['extensionDevelopmentPath', `vscode-remote://${authority}${repo}`]]);
  // Webviews need a secure context: open it as 127.0.0.1 or localhost, not through another host name.
  const url = `http://${authority}/?folder=${encodeURIComponent(samples)}&payload=${encodeURIComponent(payload)}`;
  say(`code-server ${CODE_SERVER_VERSION} is starting; open this URL in a browser (Ctrl+C stops it):\n\n  ${url}\n`);
}

if (!fs.existsSync(path.join(repo, 'node_modules'))) {
  say('installing dependencies (npm ci)');
  // Skip onnxruntime-node's CUDA download (outside the npm registry); CUDA is added later, see docs/gpu.md.
  process.env.ONNXRUNTIME_NODE_INSTALL = 'skip';
  run('npm', ['ci']);
}
say('building');
run('npm', ['run', 'build']);
const copied = copySamples(repo, samples, { keepExisting: true });
say(`samples in ${samples}${copied.length > 0 ? ` (copied ${copied.join(', ')})` : ''}`);
const mode = process.env.CLIPDRAG_START ?? (onPath('code') ? 'desktop' : 'code-server');
if (mode === 'desktop') startDesktop();
else if (mode === 'code-server') await startCodeServer();
else throw new Error(`CLIPDRAG_START must be "desktop" or "code-server" (got ${JSON.stringify(mode)})`);
