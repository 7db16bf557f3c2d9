// CLIPDrag as installed from its linux-x64 VSIX: the package holds only what runs (no sources or tests, one platform's
// native binaries), and with it an edit runs end to end — the editor opens an image, the engine process started from
// the installed folder loads onnxruntime-node and sharp from the package's own node_modules, and the result lands
// next to the image.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import { EDIT_SPEC_VERSION, serializeEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../../helpers/tiny-bpe';
import { askRunner, CHANNEL_ENV, delay, reportSidecarPid, runnerCanQueryPage } from '../suite/runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const IMAGE = 'sample.png';

interface InstalledInfo {
  extensionsDir: string;
  fixtures: string;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** Every file under `dir`, relative to it, with forward slashes. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
}

describe('CLIPDrag installed from its VSIX', function () {
  let info: InstalledInfo;
  let extension: vscode.Extension<ClipdragApi>;
  let api: ClipdragApi | undefined;
  let modelFolder: string | undefined;

  before(function () {
    if (!runnerCanQueryPage()) this.skip(); // needs the runner's install step (code-server + Playwright)
    info = JSON.parse(fs.readFileSync(path.join(process.env[CHANNEL_ENV]!, 'installed.json'), 'utf8')) as InstalledInfo;
    const found = vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID);
    assert.ok(found, `${EXTENSION_ID} is not installed`);
    extension = found;
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    if (api?.sidecar.pid !== undefined) reportSidecarPid(api.sidecar.pid);
    await vscode.workspace.getConfiguration('clipdrag').update('model', undefined, vscode.ConfigurationTarget.Global);
    await vscode.workspace.getConfiguration('clipdrag').update('clipModel', undefined, vscode.ConfigurationTarget.Global);
    if (modelFolder) fs.rmSync(modelFolder, { recursive: true, force: true });
  });

  it('runs from the extensions folder, and the package holds only what runs on linux-x64', function () {
    const root = extension.extensionPath;
    assert.equal(path.dirname(root), info.extensionsDir, 'the extension must come from the fresh extensions folder');
    assert.match(path.basename(root), /^clipdrag\.clipdrag-vscode-\d+\.\d+\.\d+(-linux-x64)?$/);
    const files = filesUnder(root);
    assert.deepEqual(files.filter((file) => /^(src|test|bench|scripts|docs)\//.test(file) || /\.ts$/.test(file)), [], 'no sources, tests, benches or docs');
    for (const file of ['dist/extension.js', 'dist/sidecar.js', 'dist/engine-worker.js', 'dist/webview.js', 'media/icon.png', 'LICENSE.txt']) {
      assert.ok(files.includes(file), `${file} is missing`);
    }
    const nativeFolders = [...new Set(files.filter((file) => file.startsWith('node_modules/onnxruntime-node/bin/')).map((file) => path.posix.dirname(file)))];
    assert.deepEqual(nativeFolders, ['node_modules/onnxruntime-node/bin/napi-v6/linux/x64'], "onnxruntime-node's linux-x64 binaries only");
    const imagePackages = fs.readdirSync(path.join(root, 'node_modules', '@img')).sort();
    assert.deepEqual(imagePackages, ['colour', 'sharp-libvips-linux-x64', 'sharp-linux-x64']);
  });

  it('opens an image in the CLIPDrag editor, runs an edit with the tiny models and writes the result next to the image', async function () {
    this.timeout(240_000);
    const workspace = vscode.workspace.workspaceFolders![0]!.uri;
    const imageUri = vscode.Uri.joinPath(workspace, IMAGE);
    const model = path.join((modelFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-installed-model-'))), 'tiny-sd15');
    fs.cpSync(path.join(info.fixtures, 'tiny-sd15'), model, { recursive: true });
    await writeBpeFiles(path.join(model, 'tokenizer'), buildTinyBpeVocabulary(['a red ball on a meadow']));
    const settings = vscode.workspace.getConfiguration('clipdrag');
    await settings.update('model', model, vscode.ConfigurationTarget.Global);
    await settings.update('clipModel', path.join(info.fixtures, 'tiny-clip-vit-b16'), vscode.ConfigurationTarget.Global);
    // A saved edit the editor opens with: one pair, a short drag-only run (LoRA and CLIP guidance are slow on a CPU).
    const spec: EditSpec = {
      version: EDIT_SPEC_VERSION,
      mode: 'drag',
      prompt: 'a red ball on a meadow',
      points: [{ handle: [330, 390], target: [430, 380] }],
      parameters: { inferenceSteps: 4, inversionStrength: 0.5, loraSteps: 0, dragSteps: 2, previewInterval: 0 },
    };
    fs.writeFileSync(`${imageUri.fsPath}.clipdrag-edit.json`, serializeEditSpec(spec));

    await vscode.commands.executeCommand('vscode.openWith', imageUri, 'clipdrag.editor');
    api = await extension.activate();
    assert.deepEqual(await api.editor.whenImageSettled(imageUri), { kind: 'shown', width: 512, height: 512 });
    await waitFor('the page to show the image and the pair', async () => (await askRunner({ kind: 'editorPages', image: IMAGE })).find((page) => page.points === 1));

    const run = api.editor.sessionFor(imageUri)!.run;
    // Ctrl+Enter on the page: the contributed keybinding runs the edit (VS Code → command → the page → Run).
    await askRunner({ kind: 'editorPress', image: IMAGE, key: 'Control+Enter' });
    await waitFor('the run to end', () => ['finished', 'failed', 'cancelled', 'unavailable'].includes(run.view.phase), 200_000);
    assert.equal(run.view.phase, 'finished', JSON.stringify(run.view));

    const folder = path.dirname(imageUri.fsPath);
    const result = path.join(folder, 'sample.clipdrag.png');
    assert.ok(fs.statSync(result).size > 0, 'the result image is next to the source');
    const recipe = JSON.parse(fs.readFileSync(path.join(folder, 'sample.clipdrag.json'), 'utf8')) as { source: { file: string }; drag: { iterations: number } };
    assert.equal(recipe.source.file, IMAGE);
    assert.equal(recipe.drag.iterations, 2);
    // The engine process is the installed copy's, so it found onnxruntime-node and sharp in the package.
    const pid = api.sidecar.pid!;
    const commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(commandLine.includes(path.join(extension.extensionPath, 'dist', 'sidecar.js')), commandLine.join(' '));
  });
});
