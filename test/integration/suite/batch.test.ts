// "CLIPDrag: Run Batch on Folder…" inside a real VS Code, with the tiny fixture models: the plan is shown in a quick
// pick (confirmed by clicking Run, through the runner), the batch runs in the engine, results and the report
// appear in the folder, a broken image is reported without stopping the batch, and "Open Report" opens the report.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import type { BatchReport } from '../../../src/shared/batch';
import { serializeEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../../helpers/tiny-bpe';
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

/** A 64 × 64 RGB PNG: a bright disc at (cx, 32) on a dark ground (no image library in the extension host). */
function blobPng(cx: number): Buffer {
  const size = 64;
  const rows = Buffer.alloc(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    rows[y * (1 + size * 3)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const inside = Math.max(0, Math.min(1, 8.5 - Math.hypot(x - cx, y - 32)));
      rows.set([20 + 225 * inside, 30 + 190 * inside, 60 + 40 * inside].map(Math.round), y * (1 + size * 3) + 1 + x * 3);
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
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

    // The folder: an image with a saved spec, a DragBench sample, and a "PNG" that is not one.
    folder = path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, 'batch-run');
    const spec = (points: EditSpec['points']) => serializeEditSpec({ version: 1, mode: 'clipdrag', prompt: 'a bright blob on a dark background', points, parameters: FAST });
    fs.mkdirSync(path.join(folder, 'animals', 'sample_1'), { recursive: true });
    fs.writeFileSync(path.join(folder, 'blob.png'), blobPng(20));
    fs.writeFileSync(path.join(folder, 'blob.png.clipdrag-edit.json'), spec([{ handle: [20, 32], target: [40, 32] }]));
    fs.writeFileSync(path.join(folder, 'animals', 'sample_1', 'original_image.png'), blobPng(20));
    fs.copyFileSync(path.join(fixtures, 'batch', 'pickles', 'dragbench-sample-64.pkl'), path.join(folder, 'animals', 'sample_1', 'meta_data.pkl'));
    fs.writeFileSync(path.join(folder, 'broken.png'), 'not an image');
    fs.writeFileSync(path.join(folder, 'broken.png.clipdrag-edit.json'), spec([{ handle: [20, 32], target: [40, 32] }]));
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
      await askRunner({ kind: 'clickQuickPickItem', label: 'Run 2 images' }, 60_000);
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
      ],
    );
    assert.match(report.items[2]!.error!, /is not a PNG, JPEG or WebP image/);
    for (const file of ['animals/sample_1/original_image.clipdrag.png', 'animals/sample_1/original_image.clipdrag.json', 'blob.clipdrag.png', 'blob.clipdrag.json']) {
      assert.ok(fs.existsSync(path.join(folder, file)), `${file} is missing`);
    }
    const saved = JSON.parse(fs.readFileSync(path.join(folder, 'clipdrag-batch-report.json'), 'utf8')) as BatchReport;
    assert.deepEqual(saved.items.map((item) => item.status), ['succeeded', 'succeeded', 'failed']);

    const summary = await waitFor('the summary notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag batch finished')));
    assert.match(summary, /^CLIPDrag batch finished: 2 done, 0 skipped, 1 failed/);
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
    assert.match(message, /2 already done, 1 cannot run/);
  });
});
