// The CLIPDrag editor inside a real VS Code: points and mask strokes made with the mouse in the webview (through the
// runner, which drives the browser), VS Code's own undo/redo/save/revert, the spec file written next to the image,
// an edit run in the engine (tiny fixture models) and a cancelled one, two editors of one image, backups, and the
// spec changing on disk.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import { readBackup, writeBackup } from '../../../src/extension/editor/spec-io';
import { decodeMaskRle, parseEditSpec, type EditSpec, type RleMask } from '../../../src/shared/edit-spec';
import type { RunView } from '../../../src/shared/webview-messages';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../../helpers/tiny-bpe';
import { askRunner, delay, reportSidecarPid, runnerCanQueryPage, type EditorPageInfo } from './runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const IMAGE = 'sample.png';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

function activeTab(): vscode.Tab | undefined {
  return vscode.window.tabGroups.activeTabGroup.activeTab;
}

describe('CLIPDrag editor inside VS Code', function () {
  let api: ClipdragApi;
  let imageUri: vscode.Uri;
  let specPath: string;

  const document = () => {
    const open = api.editor.documentFor(imageUri);
    assert.ok(open, 'the CLIPDrag document of the sample is not open');
    return open;
  };
  const pages = () => askRunner({ kind: 'editorPages', image: IMAGE });
  let modelFolder: string | undefined;

  /** The tiny fixture models, as the user's model settings (with a generated tokenizer: the fixtures ship none). */
  async function useTinyModels(): Promise<void> {
    const fixtures = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures');
    modelFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-it-model-'));
    const model = path.join(modelFolder, 'tiny-sd15');
    fs.cpSync(path.join(fixtures, 'tiny-sd15'), model, { recursive: true });
    await writeBpeFiles(path.join(model, 'tokenizer'), buildTinyBpeVocabulary(['a red ball on a meadow', 'the ball rolled to the right']));
    const settings = vscode.workspace.getConfiguration('clipdrag');
    await settings.update('model', model, vscode.ConfigurationTarget.Global);
    await settings.update('clipModel', path.join(fixtures, 'tiny-clip-vit-b16'), vscode.ConfigurationTarget.Global);
  }

  const isOver = (view: RunView) => ['finished', 'failed', 'cancelled', 'unavailable'].includes(view.phase);

  /**
   * Presses Run in the page and collects the run's states until one satisfies `until`. Only states reported after the
   * press count: the run's state from an earlier test is still there when the press arrives.
   */
  async function runFromPage(until: (view: RunView) => boolean, timeoutMs: number): Promise<RunView[]> {
    const run = api.editor.sessionFor(imageUri)!.run;
    const views: RunView[] = [];
    const subscription = run.onDidChange((view) => views.push(view));
    try {
      await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#run' });
      await waitFor('the run', () => views.some(until), timeoutMs);
    } finally {
      subscription.dispose();
    }
    return views;
  }

  /** Rewrites the saved spec with parameters that make a run short, and waits until the editor has reloaded it. */
  async function writeFastParameters(parameters: { dragSteps: number }): Promise<void> {
    assert.equal(activeTab()?.isDirty, false, 'the editor must be clean to reload the spec from disk');
    const spec = JSON.parse(fs.readFileSync(specPath, 'utf8')) as EditSpec;
    spec.prompt = 'a red ball on a meadow';
    // Drag only and no LoRA: CLIP guidance would back-propagate through the VAE decoder at 512 × 512 on every step,
    // and LoRA training compiles graphs of its own (slow on a CPU; the pipeline's own tests cover both).
    spec.mode = 'drag';
    spec.parameters = { inferenceSteps: 4, inversionStrength: 0.5, loraSteps: 0, previewInterval: 1, ...parameters };
    fs.writeFileSync(specPath, JSON.stringify(spec));
    await waitFor('the editor to reload the spec', () => document().model.parameters.dragSteps === parameters.dragSteps, 20_000);
  }

  before(async function () {
    if (!runnerCanQueryPage()) this.skip(); // the webview is driven through the runner (code-server + Playwright)
    api = await vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID)!.activate();
    imageUri = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0]!.uri, IMAGE);
    specPath = `${imageUri.fsPath}.clipdrag-edit.json`;
    fs.rmSync(specPath, { force: true });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  after(async function () {
    await vscode.commands.executeCommand('workbench.action.files.revert').then(undefined, () => undefined);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    const settings = vscode.workspace.getConfiguration('clipdrag');
    await settings.update('model', undefined, vscode.ConfigurationTarget.Global);
    await settings.update('clipModel', undefined, vscode.ConfigurationTarget.Global);
    if (modelFolder) fs.rmSync(modelFolder, { recursive: true, force: true });
    // Leave the workspace as it was for the suites that follow: only the sample image.
    const folder = path.dirname(imageUri.fsPath);
    for (const name of fs.readdirSync(folder)) {
      if (name === IMAGE) continue;
      if (name.startsWith('sample.') || name.startsWith('sample-saved-as.png') || name.startsWith('fresh.png') || name.startsWith('broken.png') || name === 'sample-copy.png' || name === '.backup-test') {
        fs.rmSync(path.join(folder, name), { recursive: true, force: true });
      }
    }
    const pid = api?.sidecar.pid;
    if (pid !== undefined) reportSidecarPid(pid);
  });

  it('opens an image with no spec as an empty edit; Run says what is missing', async function () {
    await vscode.commands.executeCommand('vscode.openWith', imageUri, 'clipdrag.editor');
    assert.deepEqual(await api.editor.whenImageSettled(imageUri), { kind: 'shown', width: 512, height: 512 });
    await waitFor('the page to show the image', async () => (await pages()).find((p) => p.imageSize === '512x512'));
    assert.deepEqual(document().model.points, []);
    assert.equal(activeTab()?.isDirty, false);

    await askRunner({ kind: 'editorClickElement', image: IMAGE, selector: '#run' });
    const [page] = await waitFor('the validation message', async () => ((await pages())[0]?.runStatus.includes('no handle') ? pages() : undefined));
    assert.match(page!.runStatus, /\$\.points: no handle → target pairs; clipdrag mode drags points: place at least one handle and its target, or choose "text" mode/);
  });

  it('places a point pair and paints the mask with the mouse; each is an edit on VS Code’s undo stack', async function () {
    await askRunner({ kind: 'editorClick', image: IMAGE, x: 330, y: 390 });
    await askRunner({ kind: 'editorClick', image: IMAGE, x: 430, y: 380 });
    await waitFor('the pair in the document', () => document().model.points.length === 1);
    assert.deepEqual(document().model.points, [{ handle: [330, 390], target: [430, 380] }]);
    await waitFor('the tab to show unsaved changes', () => activeTab()?.isDirty);

    await askRunner({ kind: 'editorPress', image: IMAGE, key: 'b' });
    // A keybinding VS Code owns: the key reaches the page through VS Code and the extension.
    await waitFor('the brush tool', async () => (await pages())[0]?.tool === 'brush');
    await askRunner({ kind: 'editorDrag', image: IMAGE, points: [[280, 380], [380, 380], [380, 420]] });
    await waitFor('the stroke in the document', () => document().model.mask.strokes.length === 1);
    const stroke = document().model.mask.strokes[0]!;
    assert.equal(stroke.mode, 'paint');
    assert.deepEqual(stroke.points[0], [280, 380]);

    await vscode.commands.executeCommand('undo');
    await waitFor('undo to remove the stroke', () => document().model.mask.strokes.length === 0);
    assert.equal(document().model.points.length, 1, 'one undo step per edit');
    await vscode.commands.executeCommand('redo');
    await waitFor('redo to bring it back', () => document().model.mask.strokes.length === 1);
    const [page] = await pages();
    assert.equal(page!.points, 1);
    assert.match(page!.status, /1 point pair · mask painted/);
  });

  it('saves the spec next to the image: the pair, and the stroke rasterised into an inline RLE mask', async function () {
    await vscode.commands.executeCommand('workbench.action.files.save');
    await waitFor('the spec file', () => fs.existsSync(specPath));
    await waitFor('the tab to be saved', () => activeTab()?.isDirty === false);
    const validation = parseEditSpec(fs.readFileSync(specPath, 'utf8'), { imageSize: { width: 512, height: 512 } });
    assert.ok(validation.ok, JSON.stringify(validation));
    const spec: EditSpec = validation.spec;
    assert.deepEqual(spec.points, [{ handle: [330, 390], target: [430, 380] }]);
    assert.equal(spec.mode, 'clipdrag');
    assert.equal(typeof spec.mask, 'object');
    const mask = decodeMaskRle(spec.mask as RleMask);
    assert.equal(mask.data[380 * 512 + 330], 1, 'a pixel on the stroke is editable');
    assert.equal(mask.data[100 * 512 + 100], 0, 'a pixel far from it is not');
    // No stray temporary files from the atomic write.
    assert.deepEqual(fs.readdirSync(path.dirname(specPath)).filter((name) => name.endsWith('.tmp')), []);
  });

  it('Save As copies the image and writes the spec next to the copy', async function () {
    const destination = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0]!.uri, 'sample-saved-as.png');
    await api.editor.saveCustomDocumentAs(document(), destination);
    assert.deepEqual(fs.readFileSync(destination.fsPath), fs.readFileSync(imageUri.fsPath));
    assert.equal(fs.readFileSync(`${destination.fsPath}.clipdrag-edit.json`, 'utf8'), fs.readFileSync(specPath, 'utf8'), 'the same edit, saved for the copy');
  });

  it('runs the edit in the engine: progress with handles and previews in the page, the result and its recipe next to the image', async function () {
    this.timeout(240_000);
    await useTinyModels();
    await writeFastParameters({ dragSteps: 3 });
    const run = api.editor.sessionFor(imageUri)!.run;
    const views = await runFromPage(isOver, 200_000);
    assert.equal(run.view.phase, 'finished', JSON.stringify(run.view));
    const folder = path.dirname(specPath);
    const recipe = JSON.parse(fs.readFileSync(path.join(folder, 'sample.clipdrag.json'), 'utf8')) as { source: { file: string }; spec: EditSpec; drag: { iterations: number } };
    assert.ok(fs.statSync(path.join(folder, 'sample.clipdrag.png')).size > 0);
    assert.equal(recipe.source.file, IMAGE);
    assert.deepEqual(recipe.spec.points, [{ handle: [330, 390], target: [430, 380] }]);
    assert.equal(recipe.drag.iterations, 3);
    const stages = [...new Set(views.flatMap((v) => (v.phase === 'running' ? [v.stage] : [])))];
    // LoRA is off (loraSteps 0) to keep the run short; every other stage reports, in order.
    assert.deepEqual(stages.filter((stage) => stage !== 'lora'), ['decode', 'load', 'encode', 'inversion', 'drag', 'denoise', 'write']);
    const dragging = views.filter((v): v is Extract<RunView, { phase: 'running' }> => v.phase === 'running' && v.stage === 'drag');
    assert.ok(dragging.some((v) => v.handles?.length === 1), 'the handles travel with the progress');
    assert.ok(dragging.some((v) => v.preview?.startsWith('data:image/png;base64,')), 'previews reach the page');
    // The page says so and lists the result; the Explorer-side history has it too.
    const [page] = await waitFor('the page to show the result', async () => ((await pages())[0]?.results.includes('sample.clipdrag.png') ? pages() : undefined));
    assert.equal(page!.runStatus, 'Done: sample.clipdrag.png');
    assert.deepEqual(api.editor.sessionFor(imageUri)!.results.map((r) => r.name), ['sample.clipdrag.png']);
    const notification = await waitFor('the notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.includes('wrote sample.clipdrag.png')));
    assert.match(notification, /CLIPDrag: wrote sample\.clipdrag\.png/);
  });

  it('cancels a run with Escape (VS Code keybinding while the edit runs), and nothing is written', async function () {
    this.timeout(240_000);
    await writeFastParameters({ dragSteps: 2000 });
    const run = api.editor.sessionFor(imageUri)!.run;
    const views = await runFromPage((view) => (view.phase === 'running' && view.stage === 'drag') || isOver(view), 200_000);
    assert.equal(views.at(-1)!.phase, 'running', JSON.stringify(views.at(-1)));
    const after = views.length;
    const subscription = run.onDidChange((view) => views.push(view));
    try {
      // The page does not cancel on Escape itself; clipdrag.editor.cancelRun, bound while clipdrag.runActive, does.
      await askRunner({ kind: 'editorPress', image: IMAGE, key: 'Escape' });
      await waitFor('the cancellation', () => views.slice(after).some(isOver), 60_000);
    } finally {
      subscription.dispose();
    }
    assert.equal(run.view.phase, 'cancelled', JSON.stringify(run.view));
    const [page] = await pages();
    assert.match(page!.runStatus, /^Cancelled\. Nothing was written\./);
    assert.deepEqual(fs.readdirSync(path.dirname(specPath)).filter((name) => /\.clipdrag(-\d+)?\.png$/.test(name)), ['sample.clipdrag.png'], 'no second result');
  });

  it('reverts to the saved spec', async function () {
    await askRunner({ kind: 'editorPress', image: IMAGE, key: 'p' });
    // A keybinding VS Code owns: the key reaches the page through VS Code and the extension.
    await waitFor('the point tool', async () => (await pages())[0]?.tool === 'point');
    await askRunner({ kind: 'editorClick', image: IMAGE, x: 100, y: 100 });
    await askRunner({ kind: 'editorClick', image: IMAGE, x: 150, y: 120 });
    await waitFor('the second pair', () => document().model.points.length === 2);
    await waitFor('the tab to be dirty', () => activeTab()?.isDirty);
    await vscode.commands.executeCommand('workbench.action.files.revert');
    await waitFor('the revert', () => document().model.points.length === 1);
    assert.equal(activeTab()?.isDirty, false);
    assert.equal(document().model.mask.base.kind, 'rle', 'the saved mask comes back as the inline RLE of the file');
    await waitFor('the page to follow', async () => (await pages())[0]?.points === 1);
  });

  it('keeps two editors of one image in step', async function () {
    await vscode.commands.executeCommand('vscode.openWith', imageUri, 'clipdrag.editor', vscode.ViewColumn.Two);
    let both: EditorPageInfo[] = [];
    await waitFor('two editor pages', async () => {
      both = await pages();
      return both.length === 2 && both.every((p) => p.imageSize === '512x512');
    });
    assert.equal(api.editor.documentFor(imageUri), document(), 'one document for both editors');
    await askRunner({ kind: 'editorPress', image: IMAGE, index: 1, key: 'p' });
    // A keybinding VS Code owns: the key reaches the page through VS Code and the extension.
    await waitFor('the point tool', async () => (await pages())[1]?.tool === 'point');
    await askRunner({ kind: 'editorClick', image: IMAGE, index: 1, x: 60, y: 60 });
    await askRunner({ kind: 'editorClick', image: IMAGE, index: 1, x: 90, y: 70 });
    await waitFor('both pages to show the new pair', async () => {
      both = await pages();
      return both.every((p) => p.points === 2);
    });
    assert.deepEqual(both[0]!.pointList, both[1]!.pointList);
    assert.equal(both[0]!.pointList[1], '2: (60, 60) → (90, 70)');
    await vscode.commands.executeCommand('undo');
    await waitFor('both pages to follow the undo', async () => (await pages()).every((p) => p.points === 1));
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    await waitFor('one editor again', async () => (await pages()).length === 1);
  });

  it('backs up unsaved edits (strokes included) and restores them as a dirty document', async function () {
    await askRunner({ kind: 'editorPress', image: IMAGE, key: 'e' });
    // A keybinding VS Code owns: the key reaches the page through VS Code and the extension.
    await waitFor('the eraser tool', async () => (await pages())[0]?.tool === 'eraser');
    await askRunner({ kind: 'editorDrag', image: IMAGE, points: [[300, 380], [340, 380]] });
    await waitFor('the eraser stroke', () => document().model.mask.strokes.length === 1);
    const destination = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0]!.uri, '.backup-test', 'backup.json');
    const backup = await api.editor.backupCustomDocument(document(), { destination });
    assert.deepEqual(await readBackup(destination), document().model);

    // A second image opened from that backup has the same unsaved edit, and counts as changed.
    const copy = vscode.Uri.joinPath(vscode.workspace.workspaceFolders![0]!.uri, 'sample-copy.png');
    await vscode.workspace.fs.copy(imageUri, copy, { overwrite: true });
    const restored = await api.editor.openCustomDocument(copy, { backupId: backup.id, untitledDocumentData: undefined });
    try {
      assert.deepEqual(restored.model, document().model);
      assert.equal(restored.isDirty, true);
    } finally {
      restored.dispose();
      backup.delete();
    }
    // The format survives a round trip through writeBackup too.
    await writeBackup(destination, document().model);
    assert.deepEqual(await readBackup(destination), document().model);
    await vscode.commands.executeCommand('workbench.action.files.revert');
    await waitFor('the revert', () => document().model.mask.strokes.length === 0);
  });

  it('reloads the spec when it changes on disk and the editor has no unsaved changes', async function () {
    assert.equal(activeTab()?.isDirty, false);
    const changed: EditSpec = { version: 1, mode: 'drag', prompt: 'changed elsewhere', points: [{ handle: [10, 10], target: [20, 20] }, { handle: [30, 30], target: [40, 40] }] };
    fs.writeFileSync(specPath, JSON.stringify(changed));
    await waitFor('the reload', () => document().model.points.length === 2, 20_000);
    assert.equal(document().model.prompt, 'changed elsewhere');
    assert.equal(document().model.mode, 'drag');
    assert.equal(document().model.mask.base.kind, 'none');
    await waitFor('the page to follow', async () => (await pages())[0]?.points === 2);
    assert.equal(activeTab()?.isDirty, false);
  });

  it('starts a new edit from the parameter defaults the user set, and says when a spec on disk cannot be read', async function () {
    const folder = vscode.workspace.workspaceFolders![0]!.uri;
    const settings = vscode.workspace.getConfiguration('clipdrag');
    await settings.update('defaults.dragSteps', 123, vscode.ConfigurationTarget.Global);
    try {
      const fresh = vscode.Uri.joinPath(folder, 'fresh.png');
      await vscode.workspace.fs.copy(imageUri, fresh, { overwrite: true });
      await vscode.commands.executeCommand('vscode.openWith', fresh, 'clipdrag.editor');
      await api.editor.whenImageSettled(fresh);
      assert.deepEqual(api.editor.documentFor(fresh)!.model.parameters, { dragSteps: 123 });
      assert.equal(activeTab()?.isDirty, false, 'defaults are where a new edit starts, not a change');
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    } finally {
      await settings.update('defaults.dragSteps', undefined, vscode.ConfigurationTarget.Global);
    }

    const broken = vscode.Uri.joinPath(folder, 'broken.png');
    await vscode.workspace.fs.copy(imageUri, broken, { overwrite: true });
    fs.writeFileSync(`${broken.fsPath}.clipdrag-edit.json`, JSON.stringify({ version: 1, mode: 'sideways', prompt: '', points: [] }));
    await vscode.commands.executeCommand('vscode.openWith', broken, 'clipdrag.editor');
    await api.editor.whenImageSettled(broken);
    assert.match(api.editor.documentFor(broken)!.loadProblem ?? '', /\$\.mode: expected one of "clipdrag", "drag", "freedrag", "text", got "sideways"/);
    const notification = await waitFor('the notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.includes('broken.png.clipdrag-edit.json is not valid')));
    assert.match(notification, /The editor starts empty; saving replaces the file\./);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    await waitFor('the sample editor to be active again', () => (activeTab()?.input as { uri?: vscode.Uri } | undefined)?.uri?.toString() === imageUri.toString());
  });

  it('asks before replacing unsaved changes with a spec changed on disk', async function () {
    await askRunner({ kind: 'editorPress', image: IMAGE, key: 'Shift+Delete' });
    await waitFor('the clear', () => document().model.points.length === 0);
    fs.writeFileSync(specPath, JSON.stringify({ version: 1, mode: 'clipdrag', prompt: 'third version', points: [] }));
    const question = await waitFor('the question', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.includes('changed on disk')));
    assert.match(question, /sample\.png\.clipdrag-edit\.json changed on disk, and the CLIPDrag editor of sample\.png has unsaved changes/);
    assert.equal(document().model.prompt, 'changed elsewhere', 'nothing is replaced before the user answers');
  });

});
