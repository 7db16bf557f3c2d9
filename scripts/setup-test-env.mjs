#!/usr/bin/env node
// Installs what the integration tests need to run the extension inside a real VS Code, offline-safe:
//   - code-server 4.100.3 (VS Code 1.100.3; the newest code-server whose engines allow Node 20), from npm;
//   - Debian's chromium, extracted from its .debs (not installed system-wide), for headless Playwright;
//   - as root only: Debian's Slurm (slurmctld, slurmd, slurm-client) and munge, installed system-wide, for the
//     cluster test (test/cluster/), which configures and starts its own single-node Slurm and stops it after.
// Both land in a per-user cache folder (see test/integration/test-env.mjs) and are reused when present.
// Only needs the npm registry and Debian's apt repositories: the steps that would reach other hosts
// (ripgrep from GitHub, Node headers from nodejs.org) are satisfied locally first.
// Linux x64, Debian/Ubuntu-like (apt-get, dpkg), Node 20, gcc/g++/make/python3 for node-gyp.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CODE_SERVER_VERSION, RIPGREP_ASSET, VSCODE_RIPGREP_VERSION, testEnvPaths } from '../test/integration/test-env.mjs';

const paths = testEnvPaths();
const started = Date.now();
const log = (message) => console.log(`[setup-test-env] ${message}`);

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw result.error;
  return result.status === 0;
}

function mustRun(command, args, options = {}) {
  if (!run(command, args, options)) throw new Error(`command failed: ${command} ${args.join(' ')}`);
}

/** apt downloads fail on a machine whose package lists were never fetched: refresh them once, then retry. */
let aptUpdated = false;
function withAptRetry(what, attempt) {
  if (attempt()) return;
  if (!aptUpdated) {
    log(`${what} failed; running apt-get update and retrying`);
    aptUpdated = true;
    if (run('apt-get', ['update']) && attempt()) return;
  }
  throw new Error(`${what} failed. It needs apt-get with access to the Debian package repositories and current package lists (apt-get update, as root).`);
}

function extractDebs(debDir, destination) {
  fs.mkdirSync(destination, { recursive: true });
  for (const file of fs.readdirSync(debDir).filter((name) => name.endsWith('.deb'))) {
    mustRun('dpkg', ['-x', path.join(debDir, file), destination]);
  }
}

function checkPlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the integration-test environment is set up for Linux x64 only (this is ${process.platform}/${process.arch}); use "npm run test:desktop" elsewhere`);
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 20) throw new Error(`code-server ${CODE_SERVER_VERSION} installs only on Node 20 (this is ${process.version})`);
}

/** kerberos (a code-server dependency) compiles against krb5 headers; @vscode/ripgrep wants a binary from GitHub. */
function prepareBuildInputs() {
  if (fs.existsSync(path.join(paths.debRoot, 'usr', 'include', 'krb5.h')) && fs.existsSync(path.join(paths.debRoot, 'usr', 'bin', 'rg'))) return;
  fs.rmSync(paths.debsDir, { recursive: true, force: true });
  fs.mkdirSync(paths.debsDir, { recursive: true });
  withAptRetry('apt-get download of krb5 headers and ripgrep', () =>
    run('apt-get', ['download', 'libkrb5-dev', 'krb5-multidev', 'comerr-dev', 'ripgrep'], { cwd: paths.debsDir }));
  extractDebs(paths.debsDir, paths.debRoot);
  fs.rmSync(paths.debsDir, { recursive: true, force: true });
}

/** @vscode/ripgrep's postinstall first looks for its asset in <tmpdir>/vscode-ripgrep-cache-<version>/. */
function seedRipgrepCache() {
  const cacheDir = path.join(os.tmpdir(), `vscode-ripgrep-cache-${VSCODE_RIPGREP_VERSION}`);
  const asset = path.join(cacheDir, RIPGREP_ASSET);
  if (fs.existsSync(asset)) return;
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-rg-'));
  try {
    fs.copyFileSync(path.join(paths.debRoot, 'usr', 'bin', 'rg'), path.join(staging, 'rg'));
    fs.mkdirSync(cacheDir, { recursive: true });
    mustRun('tar', ['-C', staging, '-czf', asset, 'rg']);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function installCodeServer() {
  if (fs.existsSync(paths.codeServerStamp) && fs.existsSync(paths.codeServerBin)) {
    log(`code-server ${CODE_SERVER_VERSION}: reusing ${paths.codeServerDir}`);
    return;
  }
  log(`code-server ${CODE_SERVER_VERSION}: installing into ${paths.codeServerDir}`);
  prepareBuildInputs();
  seedRipgrepCache();
  fs.rmSync(paths.codeServerDir, { recursive: true, force: true });
  fs.mkdirSync(paths.codeServerDir, { recursive: true });
  fs.writeFileSync(path.join(paths.codeServerDir, 'package.json'), '{"name":"clipdrag-code-server-host","private":true}\n');
  const env = {
    ...process.env,
    CPATH: [path.join(paths.debRoot, 'usr', 'include'), process.env.CPATH].filter(Boolean).join(':'),
    // node-gyp builds against the running Node's own headers instead of downloading them.
    npm_config_nodedir: path.resolve(process.execPath, '..', '..'),
    // node-pty's postinstall runs `npx node-gyp`, which must not stop to ask.
    npm_config_yes: 'true',
    // code-server's postinstall refuses to run as root without this.
    npm_config_unsafe_perm: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };
  mustRun('npm', ['install', '--no-save', `code-server@${CODE_SERVER_VERSION}`, '--foreground-scripts'], { cwd: paths.codeServerDir, env });
  // `--version` writes config files into the XDG folders: keep them out of the home folder.
  const xdg = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-cs-xdg-'));
  let version;
  try {
    version = execFileSync(paths.codeServerBin, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, XDG_CONFIG_HOME: xdg, XDG_DATA_HOME: xdg, XDG_CACHE_HOME: xdg },
    });
  } finally {
    fs.rmSync(xdg, { recursive: true, force: true });
  }
  if (!new RegExp(`^${CODE_SERVER_VERSION.replaceAll('.', '\\.')} `, 'm').test(version)) {
    throw new Error(`code-server reports version "${version.trim()}", expected ${CODE_SERVER_VERSION}`);
  }
  fs.writeFileSync(paths.codeServerStamp, `${CODE_SERVER_VERSION}\n`);
}

function installChromium() {
  if (fs.existsSync(paths.chromiumStamp) && fs.existsSync(paths.chromiumBin)) {
    log(`chromium: reusing ${paths.chromiumRoot} (${fs.readFileSync(paths.chromiumStamp, 'utf8').trim()})`);
    return;
  }
  log(`chromium: downloading Debian packages into ${paths.chromiumDebs}`);
  fs.rmSync(path.dirname(paths.chromiumRoot), { recursive: true, force: true });
  // apt may refuse a custom archives folder without its partial/ subfolder.
  fs.mkdirSync(path.join(paths.chromiumDebs, 'partial'), { recursive: true });
  // Download only, into our own folder: no dpkg lock is needed, so this also works without root.
  withAptRetry('apt-get download of chromium', () =>
    run('apt-get', ['install', '-y', '--download-only', '--no-install-recommends', '-o', `Dir::Cache::archives=${paths.chromiumDebs}`, '-o', 'Debug::NoLocking=1', 'chromium']));
  extractDebs(paths.chromiumDebs, paths.chromiumRoot);
  if (!fs.existsSync(paths.chromiumBin)) throw new Error(`chromium binary missing after extraction: ${paths.chromiumBin}`);
  const version = execFileSync(paths.chromiumBin, ['--version'], {
    encoding: 'utf8',
    env: { ...process.env, LD_LIBRARY_PATH: paths.chromiumLibraryPath },
  }).trim();
  fs.rmSync(paths.chromiumDebs, { recursive: true, force: true });
  fs.writeFileSync(paths.chromiumStamp, `${version}\n`);
  log(`chromium: ${version}`);
}

/** The cluster test's Slurm: system packages, so only as root (CI); elsewhere that test says it is skipped. */
function installSlurm() {
  const present = ['sbatch', 'slurmctld', 'slurmd', 'munged'].every((binary) => spawnSync('sh', ['-c', `command -v ${binary} || test -x /usr/sbin/${binary}`]).status === 0);
  if (present) {
    log('slurm: installed');
    return;
  }
  if (process.getuid?.() !== 0) {
    log('slurm: not installed and not root; the Slurm test will be skipped (as root: apt-get install slurmctld slurmd slurm-client munge)');
    return;
  }
  log('slurm: installing slurmctld, slurmd, slurm-client and munge with apt-get');
  withAptRetry('apt-get install of Slurm and munge', () =>
    run('apt-get', ['install', '-y', '--no-install-recommends', 'slurmctld', 'slurmd', 'slurm-client', 'munge'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }));
}

checkPlatform();
fs.mkdirSync(paths.root, { recursive: true });
installCodeServer();
installChromium();
installSlurm();
log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${paths.root}`);
