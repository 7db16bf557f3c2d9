// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layering from './eslint-rules/layering.mjs';

const SIDECAR = 'src/sidecar';
const sidecar = (...folders) => folders.map((f) => `${SIDECAR}/${f}`);
/** Native modules: loaded by the sidecar only, never by the extension host or the page. */
const NATIVE = ['onnxruntime-node', 'onnxruntime-common', 'onnxruntime-web', 'sharp'];

/**
 * docs/architecture.md's layering: each folder may not import the folders listed (the sidecar's layers, top to
 * bottom: formats, engine, models, hub, io, pipeline, batch, then the rpc and cli front doors).
 */
const LAYERING_ZONES = [
  { from: sidecar('formats')[0], forbid: sidecar('engine', 'models', 'hub', 'io', 'pipeline', 'batch', 'rpc', 'cli'), reason: 'file formats are read by every layer and use none' },
  { from: sidecar('engine')[0], forbid: sidecar('models', 'hub', 'io', 'pipeline', 'batch', 'rpc', 'cli'), reason: 'the engine knows no model, file or edit' },
  { from: sidecar('models')[0], forbid: sidecar('hub', 'io', 'pipeline', 'batch', 'rpc', 'cli'), reason: 'models are written against the engine only' },
  { from: sidecar('hub')[0], forbid: sidecar('pipeline', 'batch', 'rpc', 'cli'), reason: 'the model store sits below the pipeline' },
  { from: sidecar('io')[0], forbid: sidecar('pipeline', 'batch', 'rpc', 'cli'), reason: 'io sits below the pipeline' },
  { from: sidecar('pipeline')[0], forbid: sidecar('batch', 'rpc', 'cli'), reason: 'the pipeline sits below batch runs and the front doors' },
  { from: sidecar('batch')[0], forbid: sidecar('models', 'rpc', 'cli'), reason: 'batch runs use models through the pipeline' },
  { from: sidecar('rpc')[0], forbid: sidecar('models', 'cli'), reason: 'front doors use models through the pipeline' },
  { from: sidecar('cli')[0], forbid: sidecar('models', 'rpc'), reason: 'front doors use models through the pipeline' },
  { from: SIDECAR, forbid: ['src/extension', 'src/webview'], packages: ['vscode'], reason: 'the sidecar is a plain Node process' },
  { from: 'src/extension', forbid: [SIDECAR, 'src/webview'], packages: NATIVE, reason: 'the extension host talks to the sidecar over JSON-RPC and loads no native module' },
  { from: 'src/webview', forbid: ['src/extension', SIDECAR], packages: ['vscode', ...NATIVE], reason: 'the page talks to the extension by messages only' },
  { from: 'src/shared', forbid: [SIDECAR, 'src/extension', 'src/webview'], packages: ['vscode', ...NATIVE], reason: 'shared types cross every boundary and depend on none' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'out/**', 'node_modules/**', '.cache/**', '.test-run/**', 'src/sidecar/engine/onnx/onnx-proto.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly',
        setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly',
        setImmediate: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable',
        TextEncoder: 'readonly', TextDecoder: 'readonly', performance: 'readonly', AbortController: 'readonly',
        fetch: 'readonly', structuredClone: 'readonly',
      },
    },
    plugins: { layering },
    rules: {
      'layering/imports': ['error', { zones: LAYERING_ZONES }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);
