// `npm run lint` enforces docs/architecture.md's layering: ESLint with the repository's configuration, on code placed
// in the real folders, fails on each "never" of the architecture and passes the imports the layering allows.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';

const REPO = path.resolve(__dirname, '../../..');
const ESLINT = path.join(REPO, 'node_modules', 'eslint', 'bin', 'eslint.js');

const eslint = new ESLint({ cwd: REPO });

/** Lints `code` as if it were the file `file` (relative to the repository): 1 when an error is found, and the messages. */
async function lint(file: string, code: string): Promise<{ status: number; output: string }> {
  const [result] = await eslint.lintText(code, { filePath: path.join(REPO, file) });
  return { status: result!.errorCount > 0 ? 1 : 0, output: result!.messages.map((m) => `${m.line}:${m.column} ${m.message} ${m.ruleId}`).join('\n') };
}

test('the eslint command exits 1 on a layering violation', () => {
  const r = spawnSync(process.execPath, [ESLINT, '--stdin', '--stdin-filename', 'src/sidecar/engine/x.ts'], {
    cwd: REPO,
    input: "export { CONTEXT_LENGTH } from '../models/tokenizer';\n",
    encoding: 'utf8',
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /src\/sidecar\/engine must not import src\/sidecar\/models .*layering\/imports/);
});

const VIOLATIONS: Array<[file: string, code: string, message: RegExp]> = [
  ['src/sidecar/formats/x.ts', "import { Graph } from '../engine/graph';\nexport const G = Graph;\n", /formats must not import src\/sidecar\/engine/],
  ['src/sidecar/engine/x.ts', "import { CONTEXT_LENGTH } from '../models/tokenizer';\nexport const n = CONTEXT_LENGTH;\n", /src\/sidecar\/engine must not import src\/sidecar\/models/],
  ['src/sidecar/engine/runtime/x.ts', "export const load = () => import('../../pipeline/edit/edit');\n", /engine must not import src\/sidecar\/pipeline/],
  ['src/sidecar/engine/x.ts', "export * from '../hub';\n", /engine must not import src\/sidecar\/hub/],
  ['src/sidecar/models/x.ts', "import type { EditStages } from '../pipeline/edit/edit';\nexport type S = EditStages;\n", /models must not import src\/sidecar\/pipeline/],
  ['src/sidecar/hub/x.ts', "import { edit } from '../pipeline/edit/edit';\nexport const e = edit;\n", /hub must not import src\/sidecar\/pipeline/],
  ['src/sidecar/io/x.ts', "import { edit } from '../pipeline/edit/edit';\nexport const e = edit;\n", /io must not import src\/sidecar\/pipeline/],
  ['src/sidecar/rpc/x.ts', "import { ModelLayoutError } from '../models/checkpoint/layout';\nexport const E = ModelLayoutError;\n", /rpc must not import src\/sidecar\/models/],
  ['src/sidecar/cli/x.ts', "import { planUNet } from '../models/unet/plan';\nexport const p = planUNet;\n", /cli must not import src\/sidecar\/models/],
  ['src/sidecar/batch/x.ts', "import { planUNet } from '../models/unet/plan';\nexport const p = planUNet;\n", /batch must not import src\/sidecar\/models/],
  ['src/extension/x.ts', "import { Engine } from '../sidecar/engine/runtime';\nexport const E = Engine;\n", /extension must not import src\/sidecar/],
  ['src/extension/x.ts', "import sharp from 'sharp';\nexport const s = sharp;\n", /extension must not import the package sharp/],
  ['src/extension/x.ts', "import * as ort from 'onnxruntime-node';\nexport const o = ort;\n", /extension must not import the package onnxruntime-node/],
  ['src/webview/x.ts', "import { activate } from '../extension/extension';\nexport const a = activate;\n", /webview must not import src\/extension/],
  ['src/webview/x.ts', "import { Engine } from '../sidecar/engine/runtime';\nexport const E = Engine;\n", /webview must not import src\/sidecar/],
  ['src/shared/x.ts', "import { Engine } from '../sidecar/engine/runtime';\nexport const E = Engine;\n", /shared must not import src\/sidecar/],
];

for (const [file, code, message] of VIOLATIONS) {
  test(`lint fails: ${file} → ${/from '([^']+)'|import\('([^']+)'\)/.exec(code)?.slice(1).find(Boolean)}`, async () => {
    const { status, output } = await lint(file, code);
    assert.equal(status, 1, output);
    assert.match(output, message);
    assert.match(output, /layering\/imports/);
  });
}

test('lint passes what the layering allows', async () => {
  for (const [file, code] of [
    ['src/sidecar/models/x.ts', "import { Graph } from '../engine/graph';\nexport const G = Graph;\n"],
    ['src/sidecar/pipeline/x.ts', "import { ModelStore } from '../hub/model-store';\nimport { planUNet } from '../models/unet/plan';\nexport const a = [ModelStore, planUNet];\n"],
    ['src/sidecar/rpc/x.ts', "import { openPipelineModels } from '../pipeline/models/models';\nexport const o = openPipelineModels;\n"],
    ['src/extension/x.ts', "import { SidecarErrorCodes } from '../shared/protocol';\nexport const c = SidecarErrorCodes;\n"],
  ] as const) {
    const { status, output } = await lint(file, code);
    assert.equal(status, 0, `${file}: ${output}`);
  }
});
