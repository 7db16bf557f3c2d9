#!/usr/bin/env node
// Builds one VSIX per platform into dist/ (`npm run package`, or `npm run package -- --target linux-x64`).
//
// Each package is made from a staging folder (build/vsix/<target>/) holding only what runs: the production
// bundles, the CLI launcher, the manifest, docs, media and a trimmed node_modules with the two native packages
// the bundles leave external (onnxruntime-node with that platform's binaries only, sharp with that platform's
// @img/sharp-* packages). Other platforms' sharp packages are fetched with `npm pack` and checked against the
// lockfile's integrity hash. vsce then packs the folder, taking node_modules from `npm list` there.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import yauzl from 'yauzl';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_BYTES = 30 * 1024 * 1024;

/**
 * onnxruntime-node files a package leaves out. Windows: the DirectX shader compiler (DXC), 9 MB compressed, which
 * WebGPU prefers over the system's FXC only for Shader Model 6 features such as float16 shaders (DirectML, the
 * Windows default, does not use it) — without it the packages stay under 30 MB. macOS: a second, identical copy of
 * libonnxruntime (the binding loads libonnxruntime.1.dylib).
 */
const DXC = ['dxcompiler.dll', 'dxil.dll'];

/** VS Code targets we ship, with onnxruntime-node's binary folder and the sharp packages of that platform. */
export const TARGETS = {
  'linux-x64': { ort: 'linux/x64', ortLeaveOut: [], sharp: ['@img/sharp-linux-x64', '@img/sharp-libvips-linux-x64'] },
  'linux-arm64': { ort: 'linux/arm64', ortLeaveOut: [], sharp: ['@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64'] },
  'win32-x64': { ort: 'win32/x64', ortLeaveOut: DXC, sharp: ['@img/sharp-win32-x64'] },
  'win32-arm64': { ort: 'win32/arm64', ortLeaveOut: DXC, sharp: ['@img/sharp-win32-arm64'] },
  'darwin-arm64': { ort: 'darwin/arm64', ortLeaveOut: ['libonnxruntime.1.30.0.dylib'], sharp: ['@img/sharp-darwin-arm64', '@img/sharp-libvips-darwin-arm64'] },
};

/** Packages the bundles require at run time (esbuild externals and their dependencies), platform-neutral parts. */
const RUNTIME_PACKAGES = ['onnxruntime-node', 'onnxruntime-common', 'sharp', '@img/colour', 'detect-libc', 'semver'];

/** Files no installed copy needs: type declarations, sources, docs, build and install scripts, headers. */
const DROP = [/\.[cm]?ts$/, /\.map$/, /(^|\/)README[^/]*$/i, /(^|\/)CHANGELOG[^/]*$/i, /(^|\/)(src|script|install|include|test|tests)\//, /\.mjs$/];

/** The top-level files and folders of the extension that go into every package. */
const EXTENSION_FILES = ['README.md', 'CHANGELOG.md', 'LICENSE', 'bin/clipdrag.js', 'media/icon.png', 'media/editor.css'];

const say = (message) => console.log(`[package] ${message}`);

function run(command, args, options = {}) {
  return execFileSync(command, args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', shell: process.platform === 'win32', ...options });
}

function copyTree(from, to, keep = () => true, root = from) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const relative = path.relative(root, source).split(path.sep).join('/');
    if (entry.isDirectory()) {
      if (keep(`${relative}/`)) copyTree(source, path.join(to, entry.name), keep, root);
    } else if (keep(relative)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(source, path.join(to, entry.name));
    }
  }
}

const keepRuntimeFile = (relative) => !DROP.some((pattern) => pattern.test(relative));

/** Commands only some platforms can run: Install CUDA Support exists for onnxruntime-node's linux-x64 CUDA provider only. */
const PLATFORM_COMMANDS = { 'clipdrag.installCuda': ['linux-x64'] };

/**
 * The manifest as shipped for `target`: no scripts (nothing to run at install), only the dependencies the bundles
 * leave external, and no commands that cannot run on that platform.
 */
function shippedManifest(target) {
  const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));
  delete manifest.scripts;
  delete manifest.devDependencies;
  manifest.dependencies = Object.fromEntries(['onnxruntime-node', 'sharp'].map((name) => [name, manifest.dependencies[name]]));
  const unavailable = new Set(Object.entries(PLATFORM_COMMANDS).flatMap(([command, targets]) => (targets.includes(target) ? [] : [command])));
  const { contributes } = manifest;
  contributes.commands = contributes.commands.filter((entry) => !unavailable.has(entry.command));
  for (const [menu, entries] of Object.entries(contributes.menus)) contributes.menus[menu] = entries.filter((entry) => !unavailable.has(entry.command));
  return manifest;
}

/** onnxruntime-node's install script is not shipped, and with it go its two dependencies (download and proxy helpers). */
function trimOnnxruntimeManifest(file) {
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  delete manifest.scripts;
  delete manifest.devDependencies;
  for (const name of ['adm-zip', 'global-agent']) delete manifest.dependencies[name];
  fs.writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
}

/** A platform package's tarball from the registry, checked against the lockfile's integrity hash. */
function fetchLockedPackage(name, cacheDir) {
  const lock = JSON.parse(fs.readFileSync(path.join(repo, 'package-lock.json'), 'utf8'));
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry?.integrity || !entry.version) throw new Error(`${name} is not in package-lock.json; run "npm install" so the lockfile lists every sharp platform package`);
  const [algorithm, expected] = entry.integrity.split('-', 2);
  const file = path.join(cacheDir, `${name.replace('@', '').replace('/', '-')}-${entry.version}.tgz`);
  const digest = () => crypto.createHash(algorithm).update(fs.readFileSync(file)).digest('base64');
  if (!fs.existsSync(file) || digest() !== expected) {
    fs.mkdirSync(cacheDir, { recursive: true });
    const packed = JSON.parse(run('npm', ['pack', `${name}@${entry.version}`, '--json', '--pack-destination', cacheDir]));
    fs.renameSync(path.join(cacheDir, packed[0].filename), file);
    const actual = digest();
    if (actual !== expected) throw new Error(`${name}@${entry.version}: tarball hash ${algorithm}-${actual} does not match the lockfile's ${entry.integrity}`);
  }
  return file;
}

function stage(target, bundles, cacheDir) {
  const platform = TARGETS[target];
  const stagingDir = path.join(repo, 'build', 'vsix', target);
  fs.rmSync(stagingDir, { recursive: true, force: true });
  fs.mkdirSync(stagingDir, { recursive: true });

  fs.writeFileSync(path.join(stagingDir, 'package.json'), `${JSON.stringify(shippedManifest(target), null, 2)}\n`);
  fs.writeFileSync(path.join(stagingDir, '.vscodeignore'), '# This folder holds only what ships; node_modules comes from `npm list` here.\n');
  for (const file of EXTENSION_FILES) {
    fs.mkdirSync(path.dirname(path.join(stagingDir, file)), { recursive: true });
    fs.copyFileSync(path.join(repo, file), path.join(stagingDir, file));
  }
  copyTree(bundles, path.join(stagingDir, 'dist'), (relative) => relative.endsWith('.js'));

  const modules = path.join(stagingDir, 'node_modules');
  for (const name of RUNTIME_PACKAGES) {
    const binaries = `bin/napi-v6/${platform.ort}/`;
    const keep = name === 'onnxruntime-node'
      ? (relative) =>
          keepRuntimeFile(relative) &&
          (!relative.startsWith('bin/') || binaries.startsWith(relative) || (relative.startsWith(binaries) && !platform.ortLeaveOut.includes(path.posix.basename(relative))))
      : name === 'onnxruntime-common'
        ? (relative) => keepRuntimeFile(relative) && !/^(lib|dist\/esm)\//.test(relative)
        : keepRuntimeFile;
    copyTree(path.join(repo, 'node_modules', name), path.join(modules, name), keep);
  }
  trimOnnxruntimeManifest(path.join(modules, 'onnxruntime-node', 'package.json'));
  for (const name of platform.sharp) {
    const tarball = fetchLockedPackage(name, cacheDir);
    const unpacked = path.join(stagingDir, '.unpack');
    fs.mkdirSync(unpacked, { recursive: true });
    run('tar', ['-xzf', tarball, '-C', unpacked]);
    copyTree(path.join(unpacked, 'package'), path.join(modules, name), keepRuntimeFile);
    fs.rmSync(unpacked, { recursive: true, force: true });
  }
  const binding = path.join(modules, 'onnxruntime-node', 'bin', 'napi-v6', platform.ort, 'onnxruntime_binding.node');
  if (!fs.existsSync(binding)) throw new Error(`onnxruntime-node has no binding for ${platform.ort} (${binding})`);
  return stagingDir;
}

async function packageTarget(target, bundles, cacheDir, version) {
  const stagingDir = stage(target, bundles, cacheDir);
  const out = path.join(repo, 'dist', `clipdrag-vscode-${version}-${target}.vsix`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const vsce = path.join(repo, 'node_modules', '@vscode', 'vsce', 'vsce');
  // README links are relative in the repository; in the package they point at the repository's main branch.
  const repository = shippedManifest(target).repository.url.replace(/\.git$/, '');
  const links = ['--baseContentUrl', `${repository}/blob/main`, '--baseImagesUrl', `${repository}/raw/main`];
  execFileSync(process.execPath, [vsce, 'package', '--target', target, '--no-yarn', '--no-update-package-json', ...links, '--out', out], {
    cwd: stagingDir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return { target, file: path.relative(repo, out), bytes: fs.statSync(out).size, files: await countEntries(out) };
}

function countEntries(zipFile) {
  return new Promise((resolve, reject) =>
    yauzl.open(zipFile, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      resolve(zip.entryCount);
      zip.close();
    }),
  );
}

async function main() {
  const { values } = parseArgs({ options: { target: { type: 'string', multiple: true } } });
  const targets = values.target ?? Object.keys(TARGETS);
  for (const target of targets) if (!TARGETS[target]) throw new Error(`unknown target "${target}"; choose from ${Object.keys(TARGETS).join(', ')}`);
  const { version } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'));

  const bundles = path.join(repo, 'build', 'bundles');
  fs.rmSync(bundles, { recursive: true, force: true });
  say('type-checking and bundling (production)');
  run('npm', ['run', '--silent', 'check-types'], { stdio: ['ignore', 'inherit', 'inherit'] });
  run(process.execPath, ['esbuild.mjs', '--production', `--outdir=${bundles}`], { stdio: ['ignore', 'inherit', 'inherit'] });

  const results = [];
  for (const target of targets) {
    say(`${target}: staging and packing`);
    results.push(await packageTarget(target, bundles, path.join(repo, 'build', 'npm-packs'), version));
  }
  console.log('\n  target         size       files  package');
  for (const r of results) console.log(`  ${r.target.padEnd(13)}  ${(r.bytes / 2 ** 20).toFixed(1).padStart(5)} MiB  ${String(r.files).padStart(5)}  ${r.file}`);
  const tooLarge = results.filter((r) => r.bytes > MAX_BYTES);
  if (tooLarge.length > 0) throw new Error(`over the ${MAX_BYTES / 2 ** 20} MiB limit: ${tooLarge.map((r) => r.target).join(', ')}`);
}

main().catch((error) => {
  console.error(`[package] ${error.message ?? error}`);
  process.exit(1);
});
