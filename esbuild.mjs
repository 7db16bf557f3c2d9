// Bundles the three programs of the extension:
//   dist/extension.js       VS Code extension host (node, cjs, `vscode` external)
//   dist/webview.js         the editor UI (browser, iife)
//   dist/sidecar.js         the engine process: RPC server and CLI (node, cjs)
//   dist/engine-worker.js   the worker thread that owns the onnxruntime sessions
//   dist/test/integration/index.js  the mocha suite that runs inside VS Code (`vscode` and `mocha` external)
//   dist/test/integration/installed.js  the suite run against the installed VSIX (test/integration/run.mjs --installed)
// Native packages (onnxruntime-node, sharp) stay external: they load their binaries at run time.
// Usage: node esbuild.mjs [--watch] [--production] [--outdir=DIR]
//   --outdir: write the three programs (not the test suite) to DIR instead of dist/ (the packaging script uses it).
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const outdirOption = process.argv.find((arg) => arg.startsWith('--outdir='))?.slice('--outdir='.length);
const outdir = outdirOption ?? 'dist';

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};
const nodeTarget = { ...common, platform: 'node', format: 'cjs', target: 'node20' };

/** @type {esbuild.BuildOptions[]} */
const builds = [
  { ...nodeTarget, entryPoints: { extension: 'src/extension/extension.ts' }, outdir, external: ['vscode'] },
  { ...common, platform: 'browser', format: 'iife', target: 'es2022', entryPoints: { webview: 'src/webview/main.ts' }, outdir },
  {
    ...nodeTarget,
    entryPoints: { sidecar: 'src/sidecar/main.ts', 'engine-worker': 'src/sidecar/engine/runtime/worker.ts' },
    outdir,
    external: ['onnxruntime-node', 'sharp'],
  },
  // A separate output folder is for shipping: it gets no test suite.
  ...(outdirOption
    ? []
    : [{ ...nodeTarget, entryPoints: { 'test/integration/index': 'test/integration/suite/index.ts', 'test/integration/installed': 'test/integration/installed/index.ts' }, outdir, external: ['vscode', 'mocha'] }]),
];

// Skip entry points whose source does not exist yet (modules still being written), so the build works before and after they land.
for (const options of builds) options.entryPoints = Object.fromEntries(Object.entries(options.entryPoints).filter(([, source]) => existsSync(source)));

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
  console.log('[esbuild] watching for changes');
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
