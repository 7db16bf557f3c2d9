// "CLIPDrag: Run Batch on Folder…" inside a real VS Code, with the tiny fixture models: the plan is shown in a quick
// pick (confirmed by clicking Run, through the runner), the batch runs in the engine, results and the report
// appear in the folder, a broken image and specs naming paths outside the folder are reported without stopping the
// batch, "Open Report" opens the report, modes chosen from the plan run every image once in each (the report compares
// them), and a batch cancelled from its progress notification completes when run again.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import type { BatchItemResult, BatchReport } from '../../../src/shared/batch';
import { serializeEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../../helpers/tiny-bpe';
import { blobPng, crc32 } from './blob-png';
import { askRunner, delay, reportSidecarPid, runnerCanQueryPage } from './runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const FAST: EditSpec['parameters'] = { loraSteps: 1, loraBatchSize: 1, loraRank: 4, dragSteps: 3, inferenceSteps: 10, previewInterval: 0 };

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

function specText(points: EditSpec['points'], extra: Partial<EditSpec> = {}, parameters: EditSpec['parameters'] = FAST): string {
  return serializeEditSpec({ version: 1, mode: 'clipdrag', prompt: 'a bright blob on a dark background', points, parameters, ...extra });
}

/** Width and height of a PNG whose chunks are all there, each with a correct checksum, ending with IEND. */
function completePngSize(file: string): [number, number] {
  const png = fs.readFileSync(file);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${file} is not a PNG`);
  let offset = 8;
  let last = '';
  while (offset < png.length) {
    assert.ok(offset + 12 <= png.length, `${file} is cut off inside a chunk header`);
    const length = png.readUInt32BE(offset);
    assert.ok(offset + 12 + length <= png.length, `${file} is cut off inside a chunk`);
    const body = png.subarray(offset + 4, offset + 8 + length);
    assert.equal(png.readUInt32BE(offset + 8 + length), crc32(body), `${file}: chunk ${body.subarray(0, 4).toString('latin1')} has a wrong checksum`);
    last = body.subarray(0, 4).toString('latin1');
    offset += 12 + length;
  }
  assert.equal(last, 'IEND', `${file} does not end with IEND`);
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

/** A report item's result is whole: the image, and its recipe, which names its source (whose bytes match) and it. */
function assertCompleteResult(folder: string, item: BatchItemResult): void {
  assert.ok(item.result && item.recipe, `${item.image} has no result or recipe in the report`);
  assert.deepEqual(completePngSize(path.join(folder, item.result)), [64, 64]);
  const recipe = JSON.parse(fs.readFileSync(path.join(folder, item.recipe), 'utf8')) as { source: { file: string; sha256: string }; result: { file: string } };
  assert.equal(recipe.source.file, path.posix.basename(item.image));
  assert.equal(recipe.source.sha256, createHash('sha256').update(fs.readFileSync(path.join(folder, item.image))).digest('hex'));
  assert.equal(recipe.result.file, path.posix.basename(item.result));
}

describe('CLIPDrag batch inside VS Code', function () {
  let api: ClipdragApi;
  let folder: string;
  let modelFolder: string;
  const settings = () => vscode.workspace.getConfiguration('clipdrag');
  const changed = ['model', 'clipModel', 'device', ...Object.keys(FAST!).map((name) => `defaults.${name}`)];

  before(async function () {
    api = await vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID)!.activate();
    const extensionPath = vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath;
    const fixtures = path.join(extensionPath, 'test', 'fixtures');
    modelFolder = fs.mkdtempSync(path.join(os.tmpdir(), 'clipdrag-it-batch-model-'));
    const model = path.join(modelFolder, 'tiny-sd15');
    fs.cpSync(path.join(fixtures, 'tiny-sd15'), model, { recursive: true });
    await writeBpeFiles(path.join(model, 'tokenizer'), buildTinyBpeVocabulary(['a bright blob on a dark background']));
    await settings().update('model', model, vscode.ConfigurationTarget.Global);
    await settings().update('clipModel', path.join(fixtures, 'tiny-clip-vit-b16'), vscode.ConfigurationTarget.Global);
    await settings().update('device', 'cpu', vscode.ConfigurationTarget.Global);
    // DragBench samples carry no parameters: they take the user's defaults.
    for (const [name, value] of Object.entries(FAST!)) await settings().update(`defaults.${name}`, value, vscode.ConfigurationTarget.Global);

    // The folder, in the order the batch runs it: a DragBench sample, an image with a saved spec, a "PNG" that is not
    // one, two specs naming files outside the folder (a `../` mask, a model folder by absolute path), and another image
    // with a spec after them all (the batch goes on past what cannot run).
    const workspace = vscode.workspace.workspaceFolders![0].uri.fsPath;
    folder = path.join(workspace, 'batch-run');
    const outside = path.join(workspace, 'batch-outside');
    fs.mkdirSync(path.join(folder, 'animals', 'sample_1'), { recursive: true });
    fs.mkdirSync(path.join(folder, 'shapes'), { recursive: true });
    fs.mkdirSync(outside, { recursive: true });
    fs.writeFileSync(path.join(outside, 'mask.png'), blobPng(32));
    fs.writeFileSync(path.join(folder, 'blob.png'), blobPng(20));
    fs.writeFileSync(path.join(folder, 'blob.png.clipdrag-edit.json'), specText([{ handle: [20, 32], target: [40, 32] }]));
    fs.writeFileSync(path.join(folder, 'animals', 'sample_1', 'original_image.png'), blobPng(20));
    fs.copyFileSync(path.join(fixtures, 'batch', 'pickles', 'dragbench-sample-64.pkl'), path.join(folder, 'animals', 'sample_1', 'meta_data.pkl'));
    fs.writeFileSync(path.join(folder, 'broken.png'), 'not an image');
    fs.writeFileSync(path.join(folder, 'broken.png.clipdrag-edit.json'), specText([{ handle: [20, 32], target: [40, 32] }]));
    fs.writeFileSync(path.join(folder, 'escape-model.png'), blobPng(20));
    fs.writeFileSync(path.join(folder, 'escape-model.png.clipdrag-edit.json'), specText([{ handle: [20, 32], target: [40, 32] }], { model }));
    fs.writeFileSync(path.join(folder, 'escape-up.png'), blobPng(20));
    fs.writeFileSync(path.join(folder, 'escape-up.png.clipdrag-edit.json'), specText([{ handle: [20, 32], target: [40, 32] }], { mask: '../batch-outside/mask.png' }));
    fs.writeFileSync(path.join(folder, 'shapes', 'blob-right.png'), blobPng(44));
    fs.writeFileSync(path.join(folder, 'shapes', 'blob-right.png.clipdrag-edit.json'), specText([{ handle: [44, 32], target: [24, 32] }]));
  });

  after(async function () {
    const pid = api?.sidecar.pid;
    if (pid !== undefined) reportSidecarPid(pid);
    for (const key of changed) await settings().update(key, undefined, vscode.ConfigurationTarget.Global);
    if (modelFolder) fs.rmSync(modelFolder, { recursive: true, force: true });
  });

  it('is offered on folders in the Explorer context menu', function () {
    const manifest = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { menus: Record<string, { command: string; when?: string }[]> } };
    const entry = manifest.contributes.menus['explorer/context']?.find((item) => item.command === 'clipdrag.runBatch');
    assert.equal(entry?.when, 'explorerResourceIsFolder');
  });

  it('shows the plan, runs the folder once confirmed, writes results and the report, and opens the report', async function () {
    if (!runnerCanQueryPage()) this.skip(); // the runner clicks Run in the plan's quick pick
    this.timeout(180_000);
    const folderUri = vscode.Uri.file(folder);
    const running = vscode.commands.executeCommand<BatchReport | undefined>('clipdrag.runBatch', folderUri, { workingWidth: 64 });
    try {
      await askRunner({ kind: 'clickQuickPickItem', label: 'Run 3 images' }, 60_000);
    } catch (error) {
      // Whatever the page shows instead (an error notification) says more than a missing button.
      throw new Error(`${String(error)}; notifications: ${JSON.stringify(await askRunner({ kind: 'notifications' }))}`);
    }
    const report = await running;
    assert.ok(report, 'the command returned no report');
    reportSidecarPid(api.sidecar.pid!);

    assert.equal(report.state, 'completed');
    assert.equal(report.device, 'cpu');
    assert.deepEqual(
      report.items.map((item) => [item.image, item.status, item.result ?? null]),
      [
        ['animals/sample_1/original_image.png', 'succeeded', 'animals/sample_1/original_image.clipdrag.png'],
        ['blob.png', 'succeeded', 'blob.clipdrag.png'],
        ['broken.png', 'failed', null],
        ['escape-model.png', 'failed', null],
        ['escape-up.png', 'failed', null],
        ['shapes/blob-right.png', 'succeeded', 'shapes/blob-right.clipdrag.png'],
      ],
    );
    assert.match(report.items[2]!.error!, /is not a PNG, JPEG or WebP image/);
    // Each refusal names the file that named the path, and where it leads.
    assert.match(report.items[3]!.error!, /^The Stable Diffusion model folder ".*clipdrag-it-batch-model-[^"]*" named by escape-model\.png\.clipdrag-edit\.json points outside the folder/);
    assert.match(report.items[4]!.error!, /escape-up\.png\.clipdrag-edit\.json.*\$\.mask: "\.\.\/batch-outside\/mask\.png" leaves the image's folder/s);
    for (const item of report.items.filter((i) => i.status === 'succeeded')) assertCompleteResult(folder, item);
    const saved = JSON.parse(fs.readFileSync(path.join(folder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
    assert.deepEqual(saved.items.map((item) => item.status), ['succeeded', 'succeeded', 'failed', 'failed', 'failed', 'succeeded']);

    const summary = await waitFor('the summary notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag batch finished')));
    assert.match(summary, /^CLIPDrag batch finished: 3 done, 0 skipped, 3 failed/);
    await askRunner({ kind: 'clickNotificationButton', message: 'CLIPDrag batch finished', label: 'Open Report' });
    const reportPath = path.join(folder, 'clipdrag-batch-report.md');
    await waitFor('the report to open', () => (vscode.window.activeTextEditor?.document.uri.fsPath === reportPath ? true : undefined));
    assert.match(vscode.window.activeTextEditor!.document.getText(), /^# CLIPDrag batch report/);
  });

  it('runs nothing again: a second batch finds everything done and says so', async function () {
    if (!runnerCanQueryPage()) this.skip();
    const result = await vscode.commands.executeCommand<BatchReport | undefined>('clipdrag.runBatch', vscode.Uri.file(folder), { workingWidth: 64 });
    assert.equal(result, undefined, 'nothing was run');
    const message = await waitFor('the "nothing to run" notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('Nothing to run in batch-run')));
    assert.match(message, /3 already done, 3 cannot run/);
  });

  it('runs every image in each of the modes chosen from the plan (a multi-select pick), and the report compares them', async function () {
    if (!runnerCanQueryPage()) this.skip(); // the runner picks the modes and clicks Run
    this.timeout(180_000);
    const modesFolder = path.join(path.dirname(folder), 'batch-modes');
    fs.mkdirSync(modesFolder, { recursive: true });
    fs.writeFileSync(path.join(modesFolder, 'blob.png'), blobPng(20));
    fs.writeFileSync(path.join(modesFolder, 'blob.png.clipdrag-edit.json'), specText([{ handle: [20, 32], target: [40, 32] }]));
    const running = vscode.commands.executeCommand<BatchReport | undefined>('clipdrag.runBatch', vscode.Uri.file(modesFolder), { workingWidth: 64 });
    // The plan starts with each image in its spec's own mode; "Modes" opens the pick, where checking a mode unchecks
    // "own mode", and the plan comes back with one run per image and mode.
    await askRunner({ kind: 'clickQuickPickItem', label: "Modes: each image in its spec's own mode" }, 60_000);
    await askRunner({ kind: 'clickQuickPickItem', label: 'DragDiffusion' });
    await askRunner({ kind: 'clickQuickPickItem', label: 'FreeDrag' });
    await askRunner({ kind: 'acceptQuickPick' });
    await askRunner({ kind: 'clickQuickPickItem', label: 'Run 2 edits in 2 modes' }, 60_000);
    const report = await running;
    assert.ok(report, 'the command returned no report');
    reportSidecarPid(api.sidecar.pid!);

    assert.equal(report.state, 'completed');
    assert.deepEqual(
      report.items.map((item) => [item.image, item.mode, item.status]),
      [
        ['blob.png', 'drag', 'succeeded'],
        ['blob.png', 'freedrag', 'succeeded'],
      ],
    );
    for (const item of report.items) {
      assertCompleteResult(modesFolder, item);
      const recipe = JSON.parse(fs.readFileSync(path.join(modesFolder, item.recipe!), 'utf8')) as { spec: EditSpec };
      assert.equal(recipe.spec.mode, item.mode, `${item.result} was made in ${item.mode} mode`);
    }
    assert.notEqual(report.items[0]!.result, report.items[1]!.result);
    // The same report as `clipdrag batch --modes` writes: a table per image with a row per mode.
    const markdown = fs.readFileSync(path.join(modesFolder, 'clipdrag-batch-report.md'), 'utf8');
    assert.match(markdown, /## Modes side by side\n\n### `blob\.png`\n\n\| mode \| status \| time \| handle → target \(px\) \| iterations \| result \|/);
    assert.match(markdown, /\n\| drag \| done \| [^|]+ \| [\d.]+ \| \d+ \| `blob\.clipdrag(-2)?\.png` \|\n\| freedrag \| done \| /);
    const summary = await waitFor('the summary notification', async () =>
      (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag batch finished: 2 done') && text.includes('Modes:')),
    );
    assert.match(summary, /Modes: drag, freedrag; the report compares them side by side\.$/);
  });

  it('is cancelled from its progress notification without a partial result, and completes when run again', async function () {
    if (!runnerCanQueryPage()) this.skip(); // the runner clicks Run, and Cancel on the progress notification
    this.timeout(180_000);
    const cancelFolder = path.join(path.dirname(folder), 'batch-cancel');
    fs.mkdirSync(cancelFolder, { recursive: true });
    // Three images, run in this order. The second trains its LoRA for 60 steps (over 10 s with the tiny models, against
    // about 2 s from seeing it start to the batch answering Cancel), so Cancel, pressed as soon as the progress shows it,
    // lands inside it: the first is done by then, the third not started.
    const images: [string, number, EditSpec['parameters']][] = [
      ['first.png', 20, FAST],
      ['second.png', 24, { ...FAST, loraSteps: 60 }],
      ['third.png', 28, FAST],
    ];
    for (const [name, cx, parameters] of images) {
      fs.writeFileSync(path.join(cancelFolder, name), blobPng(cx));
      fs.writeFileSync(path.join(cancelFolder, `${name}.clipdrag-edit.json`), specText([{ handle: [cx, 32], target: [cx + 20, 32] }], {}, parameters));
    }
    const inputs = fs.readdirSync(cancelFolder).sort();
    const title = 'CLIPDrag batch: batch-cancel';
    const runBatch = async (runLabel: string) => {
      const running = vscode.commands.executeCommand<BatchReport | undefined>('clipdrag.runBatch', vscode.Uri.file(cancelFolder), { workingWidth: 64 });
      await askRunner({ kind: 'clickQuickPickItem', label: runLabel }, 60_000);
      return running;
    };

    // The first run: Cancel on the progress notification once it shows that the second image has started.
    const cancelledRun = runBatch('Run 3 images');
    const progress = await waitFor(
      'the progress notification to reach the second image',
      async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith(`${title}: 2/3 second.png`)),
      120_000,
    );
    assert.ok(fs.existsSync(path.join(cancelFolder, 'first.clipdrag.png')), `the first image is published before the second starts (${progress})`);
    await askRunner({ kind: 'clickNotificationButton', message: title, label: 'Cancel' });
    const cancelled = await cancelledRun;
    assert.ok(cancelled, 'the cancelled batch returned no report');
    reportSidecarPid(api.sidecar.pid!);
    assert.equal(cancelled.state, 'cancelled', `Cancel did not stop the batch: ${JSON.stringify(cancelled.items.map((item) => [item.image, item.status, item.seconds]))}`);
    assert.deepEqual(
      cancelled.items.map((item) => [item.image, item.status, item.result ?? null, item.recipe ?? null]),
      [
        ['first.png', 'succeeded', 'first.clipdrag.png', 'first.clipdrag.json'],
        ['second.png', 'cancelled', null, null],
        ['third.png', 'not-run', null, null],
      ],
    );
    assert.match(cancelled.items[1]!.error!, /cancel/i);
    assertCompleteResult(cancelFolder, cancelled.items[0]!);
    // Nothing of the cancelled image (no result, recipe or temporary file), nothing of the third.
    assert.deepEqual(fs.readdirSync(cancelFolder).sort(), [...inputs, 'clipdrag-batch-report.json', 'clipdrag-batch-report.md', 'first.clipdrag.json', 'first.clipdrag.png'].sort());
    const saved = JSON.parse(fs.readFileSync(path.join(cancelFolder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
    assert.equal(saved.state, 'cancelled');
    assert.ok(saved.finishedAt, 'the cancelled batch finished its report');
    assert.deepEqual(saved.items.map((item) => item.status), ['succeeded', 'cancelled', 'not-run']);
    const cancelSummary = await waitFor('the cancelled summary', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag batch cancelled')));
    assert.match(cancelSummary, /^CLIPDrag batch cancelled: 1 done, 0 skipped, 0 failed, 2 not run/);
    const firstFiles = ['first.clipdrag.png', 'first.clipdrag.json'].map((name) => {
      const file = path.join(cancelFolder, name);
      return { file, mtimeMs: fs.statSync(file).mtimeMs, bytes: fs.readFileSync(file) };
    });

    // Run again: the first image is skipped (its files untouched), the other two run, the batch completes.
    const completed = await runBatch('Run 2 images');
    assert.ok(completed, 'the second batch returned no report');
    assert.equal(completed.state, 'completed');
    assert.deepEqual(
      completed.items.map((item) => [item.image, item.status, item.result ?? null, item.recipe ?? null]),
      [
        ['first.png', 'skipped', 'first.clipdrag.png', 'first.clipdrag.json'],
        ['second.png', 'succeeded', 'second.clipdrag.png', 'second.clipdrag.json'],
        ['third.png', 'succeeded', 'third.clipdrag.png', 'third.clipdrag.json'],
      ],
    );
    assert.deepEqual(completed.totals, { ...completed.totals, items: 3, succeeded: 2, skipped: 1, failed: 0, cancelled: 0, notRun: 0 });
    for (const item of completed.items) assertCompleteResult(cancelFolder, item);
    for (const { file, mtimeMs, bytes } of firstFiles) {
      assert.equal(fs.statSync(file).mtimeMs, mtimeMs, `${path.basename(file)} was written again`);
      assert.ok(fs.readFileSync(file).equals(bytes), `${path.basename(file)} changed`);
    }
    const outputs = ['first', 'second', 'third'].flatMap((stem) => [`${stem}.clipdrag.json`, `${stem}.clipdrag.png`]);
    assert.deepEqual(fs.readdirSync(cancelFolder).sort(), [...inputs, 'clipdrag-batch-report.json', 'clipdrag-batch-report.md', ...outputs].sort());
    const finalReport = JSON.parse(fs.readFileSync(path.join(cancelFolder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
    assert.equal(finalReport.state, 'completed');
    // This run's summary, not one an earlier test left on screen (the modes batch also finished with 2 done).
    const summary = await waitFor('the finished summary', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag batch finished: 2 done, 1 skipped')));
    assert.match(summary, /^CLIPDrag batch finished: 2 done, 1 skipped, 0 failed/);
  });
});
