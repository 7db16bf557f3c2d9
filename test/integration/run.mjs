#!/usr/bin/env node
// Runs the integration suite (dist/test/integration/index.js) inside a real VS Code, headless:
//   1. a fresh code-server on a free 127.0.0.1 port, with throw-away user-data, extensions and XDG folders;
//   2. headless Chromium through playwright-core loads the workbench with the extension under development
//      and the suite (`extensionDevelopmentPath` / `extensionTestsPath` in the `payload` URL parameter);
//   3. the workbench reports the suite's result through window.codeAutomationExit, and its extension-host
//      output through window.codeAutomationLog (mocha's report arrives that way);
//   4. meanwhile the runner answers the suite's page queries (webview DOM, notifications) over a file channel;
//   5. after the window closes, no sidecar process may remain; finally the whole code-server process group is killed.
// With `--installed <vsix>` the extension under test is that package, installed into the fresh extensions folder with
// code-server's --install-extension, and the suite is dist/test/integration/installed.js: the workbench then gets
// only an empty stand-in as `extensionDevelopmentPath` (VS Code runs tests in a development host), so the CLIPDrag
// that runs is the installed copy (`npm run test:installed`).
// Needs `npm run build` and `node scripts/setup-test-env.mjs` first (`npm run test:integration` does both).
// `--grep <pattern>` (or CLIPDRAG_IT_GREP) runs only the tests whose full title (suite and test) matches, e.g. `--grep "batch"`.
// Env: CLIPDRAG_TEST_ENV_DIR (where code-server/chromium live), CLIPDRAG_IT_TIMEOUT_S (default 480), CLIPDRAG_IT_KEEP=1 keeps the run folder.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import util, { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { testEnvPaths } from './test-env.mjs';
import { copySamples } from '../../scripts/samples.mjs';

/* global document, HTMLImageElement -- used only inside page.evaluate callbacks, which run in the browser */

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = testEnvPaths();
const timeoutMs = Number(process.env.CLIPDRAG_IT_TIMEOUT_S ?? 480) * 1000;
const { values: parsed } = parseArgs({ options: { installed: { type: 'string' }, grep: { type: 'string' } } });
const options = { ...parsed, grep: parsed.grep ?? process.env.CLIPDRAG_IT_GREP };
const installedVsix = options.installed ? path.resolve(options.installed) : undefined;
const say = (message) => console.log(`[integration] ${message}`);
const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function requireFile(file, hint) {
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${hint}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function healthy(port) {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** A child environment without the variables of a VS Code this runner may itself be started from. */
function cleanEnv(extra) {
  const result = { ...process.env };
  for (const key of Object.keys(result)) if (key.startsWith('VSCODE_') || key === 'ELECTRON_RUN_AS_NODE') delete result[key];
  return { ...result, ...extra };
}

function prepareRunFolder() {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-it-'));
  const dirs = {
    runDir,
    userData: path.join(runDir, 'user-data'),
    extensions: path.join(runDir, 'extensions'),
    workspace: path.join(runDir, 'workspace'),
    channel: path.join(runDir, 'channel'),
    xdg: path.join(runDir, 'xdg'),
  };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'files.autoSave': 'off',
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'security.workspace.trust.enabled': false,
        'git.enabled': false,
      },
      null,
      2,
    ),
  );
  // A pristine copy of the samples: the tests may open and change files without touching the repository, and
  // nothing a user left in media/samples (a saved spec, results) changes what they read.
  copySamples(repo, dirs.workspace);
  fs.writeFileSync(path.join(dirs.channel, 'runner.json'), JSON.stringify({ pageQueries: true }));
  return dirs;
}

/**
 * Installs `vsix` into the run's fresh extensions folder as a user would (code-server --install-extension), tells the
 * suite where it went and what to use from the repository (the tiny fixture models), and returns the stand-in
 * development extension the workbench needs to run a suite at all.
 */
function installExtension(vsix, dirs) {
  requireFile(vsix, 'run "npm run package -- --target linux-x64" first');
  const result = spawnSync(env.codeServerBin, ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix], {
    env: cleanEnv({ XDG_CONFIG_HOME: path.join(dirs.xdg, 'config'), XDG_DATA_HOME: path.join(dirs.xdg, 'data'), XDG_CACHE_HOME: path.join(dirs.xdg, 'cache') }),
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (${result.status}):\n${result.stdout}${result.stderr}`);
  say(`installed ${path.basename(vsix)}: ${result.stdout.trim().split('\n').pop()}`);
  const standIn = path.join(dirs.runDir, 'test-host');
  fs.mkdirSync(standIn, { recursive: true });
  fs.writeFileSync(
    path.join(standIn, 'package.json'),
    JSON.stringify({ name: 'clipdrag-installed-test-host', publisher: 'clipdrag-tests', version: '0.0.0', engines: { vscode: '*' } }),
  );
  fs.writeFileSync(path.join(dirs.channel, 'installed.json'), JSON.stringify({ extensionsDir: dirs.extensions, fixtures: path.join(repo, 'test', 'fixtures') }));
  return standIn;
}

/** The page queries the suite may ask for (see test/integration/suite/runner-channel.ts). */
const pageQueries = {
  async webviewImages(page) {
    const images = [];
    for (const frame of page.frames()) {
      if (!frame.url().includes('fake.html')) continue;
      const info = await frame
        .evaluate(() => {
          const image = document.getElementById('clipdrag-image');
          if (!(image instanceof HTMLImageElement)) return null;
          return {
            src: image.currentSrc || image.src,
            complete: image.complete,
            naturalWidth: image.naturalWidth,
            naturalHeight: image.naturalHeight,
            status: document.getElementById('clipdrag-status')?.textContent ?? '',
            contentSecurityPolicy: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? '',
          };
        })
        .catch(() => null); // a frame that navigates away mid-query
      if (info) images.push({ frameUrl: frame.url(), ...info });
    }
    return images;
  },
  async notifications(page) {
    return page.$$eval('.notification-toast .notification-list-item-message', (elements) => elements.map((e) => e.textContent ?? ''));
  },
  /** The labels of the action buttons in the active editor group's title bar. */
  async editorActions(page) {
    return page.$$eval('.editor-group-container.active .editor-actions .action-label', (elements) =>
      elements.map((e) => e.getAttribute('aria-label') ?? '').filter(Boolean),
    );
  },
  /** What a CLIPDrag editor page shows (data the page publishes on its canvas, texts), one entry per editor of `image`. */
  async editorPages(page, { image }) {
    const pages = [];
    for (const frame of await editorFrames(page, image)) {
      pages.push(
        await frame.evaluate(() => {
          const stack = document.getElementById('canvas-stack');
          return {
            points: Number(stack?.dataset.points ?? 0),
            tool: stack?.dataset.tool ?? '',
            revision: Number(stack?.dataset.revision ?? -1),
            imageSize: stack?.dataset.imageSize ?? '',
            status: document.getElementById('clipdrag-status')?.textContent ?? '',
            runStatus: document.getElementById('run-status')?.textContent ?? '',
            pointList: Array.from(document.querySelectorAll('#points-list .pair')).map((e) => e.textContent ?? ''),
            results: Array.from(document.querySelectorAll('#results .result-name')).map((e) => e.textContent ?? ''),
            resultModes: Array.from(document.querySelectorAll('#results .result-mode')).map((e) => e.dataset.mode ?? ''),
            compare: {
              view: document.getElementById('compare')?.hidden !== false ? 'hidden' : document.getElementById('compare-side')?.hidden === false ? 'side' : document.getElementById('compare-slider')?.hidden === false ? 'slider' : 'empty',
              caption: document.getElementById('compare-caption')?.textContent ?? '',
              before: document.getElementById('compare-before-overlay')?.getAttribute('src') ?? '',
              after: document.getElementById('compare-after-overlay')?.getAttribute('src') ?? '',
            },
          };
        }),
      );
    }
    return pages;
  },
  /** Clicks image pixel (x, y) on the editor's canvas with the mouse. */
  async editorClick(page, { image, index, x, y }) {
    const frame = await editorFrame(page, { image, index });
    const at = await imagePointOnPage(frame, x, y);
    await page.mouse.click(at.x, at.y);
    return true;
  },
  /** Presses at the first image point, moves through the others, releases at the last. */
  async editorDrag(page, { image, index, points }) {
    const frame = await editorFrame(page, { image, index });
    const first = await imagePointOnPage(frame, ...points[0]);
    await page.mouse.move(first.x, first.y);
    await page.mouse.down();
    for (const point of points.slice(1)) {
      const at = await imagePointOnPage(frame, ...point);
      await page.mouse.move(at.x, at.y, { steps: 5 });
    }
    await page.mouse.up();
    return true;
  },
  /** Focuses the editor's canvas and presses a key there (a shortcut of the page). */
  async editorPress(page, { image, index, key }) {
    const frame = await editorFrame(page, { image, index });
    await frame.locator('#canvas-stack').press(key);
    return true;
  },
  /** Clicks an element of the editor page (a button), as a user would. */
  async editorClickElement(page, { image, index, selector }) {
    const frame = await editorFrame(page, { image, index });
    await frame.locator(selector).first().click({ timeout: 5000 });
    return true;
  },
  /** Clicks the title-bar action whose label starts with `label`, as a user would. */
  async clickEditorAction(page, { label }) {
    const action = page.locator(`.editor-group-container.active .editor-actions .action-label[aria-label^="${label.replaceAll('"', '\\"')}"]`);
    await action.first().click({ timeout: 5000 });
    return true;
  },
  /** Clicks the item whose label contains `label` in the open quick pick, once it shows. */
  async clickQuickPickItem(page, { label }) {
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first().click({ timeout: 10000 });
    return true;
  },
  /** Accepts the open quick pick as Enter does (a multi-select one: with the items checked now). */
  async acceptQuickPick(page) {
    await page.locator('.quick-input-widget .quick-input-box input').first().press('Enter', { timeout: 10000 });
    return true;
  },
  /** Presses keys, one after another, where the editor page has the focus (an open dropdown, a focused field). */
  async editorKeys(page, { image, index, keys }) {
    await editorFrame(page, { image, index }); // the editor must be there
    for (const key of keys) await page.keyboard.press(key);
    return true;
  },
  /** Clicks the button labelled `label` on the notification whose message contains `message`. */
  async clickNotificationButton(page, { message, label }) {
    const toast = page.locator('.notification-toast', { hasText: message });
    await toast.locator('.monaco-button', { hasText: label }).first().click({ timeout: 10000 });
    return true;
  },
};

/** The CLIPDrag editor frames showing `image` (a file name), in document order. */
async function editorFrames(page, image) {
  const frames = [];
  for (const frame of page.frames()) {
    if (!frame.url().includes('fake.html')) continue;
    const name = await frame.evaluate(() => document.getElementById('clipdrag-editor')?.dataset.imageName ?? null).catch(() => null);
    if (name === image) frames.push(frame);
  }
  return frames;
}

/** The `index`-th editor frame of `image` (0 when there is one editor). */
async function editorFrame(page, { image, index = 0 }) {
  const frames = await editorFrames(page, image);
  if (!frames[index]) throw new Error(`no CLIPDrag editor #${index} for ${image} (found ${frames.length})`);
  return frames[index];
}

/** Page coordinates of image pixel (x, y) in an editor frame, from the view transform the page publishes. */
async function imagePointOnPage(frame, x, y) {
  const stack = frame.locator('#canvas-stack');
  const view = JSON.parse((await stack.getAttribute('data-view')) ?? 'null');
  const box = await stack.boundingBox();
  if (!view || !box) throw new Error('the editor canvas is not shown');
  return { x: box.x + view.offsetX + (x + 0.5) * view.scale, y: box.y + view.offsetY + (y + 0.5) * view.scale };
}

async function answerChannelRequests(channel, page, answered) {
  for (const name of fs.readdirSync(channel)) {
    const match = /^request-(\d+)\.json$/.exec(name);
    if (!match || answered.has(match[1])) continue;
    answered.add(match[1]);
    let response;
    try {
      const query = JSON.parse(fs.readFileSync(path.join(channel, name), 'utf8'));
      const handler = pageQueries[query.kind];
      if (!handler) throw new Error(`unknown query kind ${JSON.stringify(query.kind)}`);
      response = { ok: true, value: await handler(page, query) };
    } catch (error) {
      response = { ok: false, error: String(error?.message ?? error) };
    }
    const file = path.join(channel, `response-${match[1]}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(response));
    fs.renameSync(`${file}.tmp`, file);
  }
}

function readSidecarPids(channel) {
  const file = path.join(channel, 'sidecar-pids.txt');
  if (!fs.existsSync(file)) return [];
  return [...new Set(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number))];
}

async function killProcessGroup(pgid) {
  const groupAlive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!groupAlive()) return;
  process.kill(-pgid, 'SIGTERM');
  for (let i = 0; i < 30 && groupAlive(); i++) await delay(100);
  if (groupAlive()) process.kill(-pgid, 'SIGKILL');
}

async function main() {
  const started = Date.now();
  requireFile(env.codeServerBin, 'run "node scripts/setup-test-env.mjs" first');
  requireFile(env.chromiumBin, 'run "node scripts/setup-test-env.mjs" first');
  const testsIndex = path.join(repo, 'dist', 'test', 'integration', installedVsix ? 'installed.js' : 'index.js');
  requireFile(path.join(repo, 'dist', 'extension.js'), 'run "npm run build" first');
  requireFile(testsIndex, 'run "npm run build" first');

  const dirs = prepareRunFolder();
  const developmentPath = installedVsix ? installExtension(installedVsix, dirs) : repo;
  const port = await freePort();
  const childEnv = cleanEnv({
    // code-server and Chromium write config, data and caches under XDG folders: keep them in the run folder.
    XDG_CONFIG_HOME: path.join(dirs.xdg, 'config'),
    XDG_DATA_HOME: path.join(dirs.xdg, 'data'),
    XDG_CACHE_HOME: path.join(dirs.xdg, 'cache'),
    CLIPDRAG_TEST_CHANNEL: dirs.channel,
    // --grep: only the tests whose full title matches (mocha's grep, applied by the suite's index).
    ...(options.grep ? { CLIPDRAG_IT_GREP: options.grep } : {}),
  });
  const serverLog = path.join(dirs.runDir, 'code-server.log');
  const logFd = fs.openSync(serverLog, 'a');
  const server = spawn(
    env.codeServerBin,
    [
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', dirs.userData,
      '--extensions-dir', dirs.extensions,
      dirs.workspace,
    ],
    // Its own process group, so the server, its extension hosts and everything they spawn die together.
    { detached: true, env: childEnv, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  let serverExit;
  server.on('exit', (code, signal) => (serverExit = { code, signal }));

  let browser;
  let exitCode;
  let failure;
  try {
    for (const end = Date.now() + 30_000; !(await healthy(port)); await delay(100)) {
      if (serverExit) throw new Error(`code-server exited during start-up (${JSON.stringify(serverExit)})`);
      if (Date.now() > end) throw new Error('code-server did not become healthy within 30 s');
    }
    say(`code-server ${port} up after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    browser = await chromium.launch({
      executablePath: env.chromiumBin,
      headless: true,
      env: { ...childEnv, LD_LIBRARY_PATH: [env.chromiumLibraryPath, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.exposeFunction('codeAutomationExit', (code) => (exitCode = code));
    await page.exposeFunction('codeAutomationLog', (_type, args) => console.log(util.format(...args)));
    page.on('crash', () => (failure = new Error('the browser page crashed')));

    const authority = `127.0.0.1:${port}`;
    const payload = JSON.stringify([
      ['extensionDevelopmentPath', `vscode-remote://${authority}${developmentPath}`],
      ['extensionTestsPath', `vscode-remote://${authority}${testsIndex}`],
    ]);
    await page.goto(`http://${authority}/?folder=${encodeURIComponent(dirs.workspace)}&payload=${encodeURIComponent(payload)}`);
    say('workbench loading; running the suite inside VS Code');

    const answered = new Set();
    for (const end = Date.now() + timeoutMs; exitCode === undefined && !failure; await delay(100)) {
      await answerChannelRequests(dirs.channel, page, answered);
      if (serverExit) failure = new Error(`code-server exited while the suite was running (${JSON.stringify(serverExit)})`);
      else if (Date.now() > end) failure = new Error(`the suite did not finish within ${timeoutMs / 1000} s (no codeAutomationExit)`);
    }

    // Close the window the way a user does, then check that the extension stopped its sidecar processes.
    await page.close({ runBeforeUnload: true }).catch(() => undefined);
    await browser.close();
    browser = undefined;
    if (exitCode !== undefined) {
      const pids = readSidecarPids(dirs.channel);
      if (pids.length === 0) {
        // A failing suite may never have started one; a passing suite always does (all of it: --grep may pick tests that do not).
        if (exitCode === 0 && !options.grep) failure ??= new Error('the suite reported no sidecar process, so the no-orphan check could not run');
      } else {
        for (const end = Date.now() + 10_000; pids.some(isAlive) && Date.now() < end; ) await delay(100);
        const survivors = pids.filter(isAlive);
        if (survivors.length > 0) failure ??= new Error(`sidecar process(es) ${survivors.join(', ')} still running 10 s after the window closed`);
        else say(`no sidecar process left after the window closed (checked pids ${pids.join(', ')})`);
      }
    }
  } catch (error) {
    failure ??= error;
  } finally {
    await browser?.close().catch(() => undefined);
    await killProcessGroup(server.pid);
  }

  const ok = exitCode === 0 && !failure;
  if (!ok) {
    if (exitCode !== undefined && exitCode !== 0) console.error(`[integration] FAILED: the suite exited with code ${exitCode}`);
    if (failure) console.error(`[integration] FAILED: ${failure.message}`);
    const log = fs.existsSync(serverLog) ? fs.readFileSync(serverLog, 'utf8').split('\n').slice(-40).join('\n') : '';
    if (log) console.error(`[integration] last lines of code-server's log:\n${log}`);
  }
  if (process.env.CLIPDRAG_IT_KEEP === '1') say(`run folder kept: ${dirs.runDir}`);
  else fs.rmSync(dirs.runDir, { recursive: true, force: true });
  say(`${ok ? 'passed' : 'failed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return ok ? 0 : exitCode || 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`[integration] ${error.stack ?? error}`);
    process.exit(1);
  },
);
