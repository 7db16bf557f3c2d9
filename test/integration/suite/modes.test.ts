// The edit modes in the CLIPDrag editor inside a real VS Code (tiny fixture models, CPU): a mode chosen in the page is
// one undoable edit and is saved in the spec; a `text` edit runs with no point pairs and writes its result and a recipe
// that names the mode; a second result in another mode is listed with its mode, and the two results are compared with
// each other (one set as "before") in the page's comparison view, before/after and side by side.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import { parseEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import type { Recipe } from '../../../src/shared/recipe';
import type { RunView } from '../../../src/shared/webview-messages';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../../helpers/tiny-bpe';
import { askRunner, delay, reportSidecarPid, runnerCanQueryPage, type EditorPageInfo } from './runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const IMAGE = 'modes.png';
const PROMPT = 'a red ball on a meadow';
const EDIT_PROMPT = 'a blue ball on a meadow';
/**
 * Short runs: no LoRA, four denoising steps from half-way, two latent steps. The editor edits at 512 pixels wide, where
 * every CLIP-guided step back-propagates through the VAE decoder, so the text run keeps its steps few.
 */
const FAST: EditSpec['parameters'] = { loraSteps: 0, inferenceSteps: 4, inversionStrength: 0.5, dragSteps: 2, previewInterval: 0 };

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

describe('CLIPDrag modes in the editor inside VS Code', function () {
  let api: ClipdragApi;
  let imageUri: vscode.Uri;
  let specPath: string;
  let folder: string;
  let modelFolder: string | undefined;

  const document = () => {
    const open = api.editor.documentFor(imageUri);
    assert.ok(open, `the CLIPDrag document of ${IMAGE} is not open`);
    return open;
  };
  const page = async (): Promise<EditorPageInfo> => {
    const [first] = await askRunner({ kind: 'editorPages', image: IMAGE });
    assert.ok(first, `no CLIPDrag editor page shows ${IMAGE}`);
    return first;
  };
  const isDirty = () => vscode.window.tabGroups.activeTabGroup.activeTab?.isDirty;
  const readRecipe = (name: string) => JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8')) as Recipe;

  /** Rewrites the saved spec (the editor must be clean) and waits until the editor has reloaded it. */
  async function writeSpec(spec: EditSpec): Promise<void> {
    assert.equal(isDirty(), false, 'the editor must be clean to reload the spec from disk');
    fs.writeFileSync(specPath, JSON.stringify(spec));
    await waitFor('the editor to reload the spec', () => {
      const model = document().model;
      return model.mode === spec.mode && model.points.length === spec.points.length && model.parameters.dragSteps === spec.parameters?.dragSteps;
    }, 20_000);
  }

  /** Toasts left by earlier runs and suites (bottom right) would take the clicks meant for the page below them. */
  const clearNotifications = () => vscode.commands.executeCommand('notifications.clearAll');

  /** Presses Run in the page and waits for the run to end (only states after the press count). */
  async function runFromPage(timeoutMs: number): Promise<RunView> {
    const run = api.editor.sessionFor(imageUri)!.run;
    await clearNotifications();
    const views: RunView[] = [];
    const subscription = run.onDidChange((view) => views.push(view));
    try {
      await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#run' });
      return await waitFor('the run to end', () => views.find((view) => ['finished', 'failed', 'cancelled', 'unavailable'].includes(view.phase)), timeoutMs);
    } finally {
      subscription.dispose();
    }
  }

  before(async function () {
    if (!runnerCanQueryPage()) this.skip(); // the webview is driven through the runner (code-server + Playwright)
    api = await vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID)!.activate();
    const workspace = vscode.workspace.workspaceFolders![0]!.uri;
    folder = workspace.fsPath;
    imageUri = vscode.Uri.joinPath(workspace, IMAGE);
    specPath = `${imageUri.fsPath}.clipdrag-edit.json`;
    await vscode.workspace.fs.copy(vscode.Uri.joinPath(workspace, 'sample.png'), imageUri, { overwrite: true });

    // The tiny fixture models as the user's model settings, with a tokenizer for the prompts (the fixtures ship none).
    const extensionPath = vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath;
    const fixtures = path.join(extensionPath, 'test', 'fixtures');
    modelFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-it-modes-model-'));
    const model = path.join(modelFolder, 'tiny-sd15');
    fs.cpSync(path.join(fixtures, 'tiny-sd15'), model, { recursive: true });
    await writeBpeFiles(path.join(model, 'tokenizer'), buildTinyBpeVocabulary([PROMPT, EDIT_PROMPT]));
    const settings = vscode.workspace.getConfiguration('clipdrag');
    await settings.update('model', model, vscode.ConfigurationTarget.Global);
    await settings.update('clipModel', path.join(fixtures, 'tiny-clip-vit-b16'), vscode.ConfigurationTarget.Global);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await clearNotifications();
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const settings = vscode.workspace.getConfiguration('clipdrag');
    for (const key of ['model', 'clipModel']) await settings.update(key, undefined, vscode.ConfigurationTarget.Global);
    if (modelFolder) fs.rmSync(modelFolder, { recursive: true, force: true });
    if (folder) for (const name of fs.readdirSync(folder)) if (name.startsWith('modes.')) fs.rmSync(path.join(folder, name), { force: true });
    const pid = api?.sidecar.pid;
    if (pid !== undefined) reportSidecarPid(pid);
  });

  it('chooses a mode in the page: one undoable edit, saved in the spec', async function () {
    await vscode.commands.executeCommand('vscode.openWith', imageUri, 'clipdrag.editor');
    await api.editor.whenImageSettled(imageUri);
    await waitFor('the page to show the image', async () => (await page()).imageSize === '512x512');
    assert.equal(document().model.mode, 'clipdrag');

    // As a user does: open the Mode list and move down to "Text only" (clipdrag, drag, freedrag, text).
    await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#mode' });
    await askRunner({ kind: 'editorKeys', image: IMAGE, keys: ['ArrowDown', 'ArrowDown', 'ArrowDown', 'Enter'] });
    await waitFor('text mode in the document', () => document().model.mode === 'text');
    await waitFor('the tab to show unsaved changes', () => isDirty());
    await vscode.commands.executeCommand('undo');
    await waitFor('undo to restore clipdrag mode', () => document().model.mode === 'clipdrag');
    await vscode.commands.executeCommand('redo');
    await waitFor('redo to bring text mode back', () => document().model.mode === 'text');

    await vscode.commands.executeCommand('workbench.action.files.save');
    await waitFor('the tab to be saved', () => isDirty() === false);
    const saved = parseEditSpec(fs.readFileSync(specPath, 'utf8'), { imageSize: { width: 512, height: 512 } });
    assert.ok(saved.ok, JSON.stringify(saved));
    assert.equal(saved.spec.mode, 'text');
    assert.deepEqual(saved.spec.points, []);
  });

  it('runs a text edit with no point pairs: the result and its recipe, which names the mode, next to the image', async function () {
    this.timeout(400_000);
    await writeSpec({ version: 1, mode: 'text', prompt: PROMPT, editPrompt: EDIT_PROMPT, points: [], parameters: FAST });
    const end = await runFromPage(380_000);
    assert.equal(end.phase, 'finished', JSON.stringify(end));
    assert.ok(fs.statSync(path.join(folder, 'modes.clipdrag.png')).size > 0);
    const recipe = readRecipe('modes.clipdrag.json');
    assert.equal(recipe.source.file, IMAGE);
    assert.equal(recipe.result.file, 'modes.clipdrag.png');
    assert.equal(recipe.spec.mode, 'text');
    assert.deepEqual(recipe.spec.points, []);
    assert.equal(recipe.spec.editPrompt, EDIT_PROMPT);
    assert.equal(recipe.drag.iterations, 2, 'text mode ran the iterations the spec asked for');
    // The page lists it with the mode its recipe names.
    const shown = await waitFor('the page to list the result', async () => {
      const info = await page();
      return info.results.includes('modes.clipdrag.png') ? info : undefined;
    });
    assert.deepEqual(shown.resultModes, ['text']);
  });

  it('runs a second result in drag mode and compares the two results with each other, not with the source', async function () {
    this.timeout(400_000);
    await writeSpec({ version: 1, mode: 'drag', prompt: PROMPT, points: [{ handle: [330, 390], target: [400, 390] }], parameters: FAST });
    const end = await runFromPage(380_000);
    assert.equal(end.phase, 'finished', JSON.stringify(end));
    assert.equal(readRecipe('modes.clipdrag-2.json').spec.mode, 'drag');
    const listed = await waitFor('the page to list both results', async () => {
      const info = await page();
      return info.results.length === 2 ? info : undefined;
    });
    // Newest first, each with its mode.
    assert.deepEqual(listed.results, ['modes.clipdrag-2.png', 'modes.clipdrag.png']);
    assert.deepEqual(listed.resultModes, ['drag', 'text']);

    // The text result as "before", the drag result as "after".
    await clearNotifications();
    await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#results button[aria-label="Compare other results with modes.clipdrag.png"]' });
    await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#results button[aria-label="Compare modes.clipdrag-2.png with modes.clipdrag.png"]' });
    const slider = await waitFor('the before/after view', async () => {
      const info = await page();
      return info.compare.view === 'slider' ? info.compare : undefined;
    });
    assert.equal(slider.caption, 'modes.clipdrag.png (Text only) vs modes.clipdrag-2.png (DragDiffusion)');
    assert.match(decodeURIComponent(slider.before), /\/modes\.clipdrag\.png\?/);
    assert.match(decodeURIComponent(slider.after), /\/modes\.clipdrag-2\.png\?/);

    await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '.compare-mode[data-compare="side"]' });
    const side = await waitFor('the side-by-side view', async () => {
      const info = await page();
      return info.compare.view === 'side' ? info.compare : undefined;
    });
    assert.equal(side.caption, slider.caption);
  });
});
