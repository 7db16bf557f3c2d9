// "CLIPDrag: Evaluate Batch Results…" inside a real VS Code, with the tiny evaluation models of test/fixtures/eval (the
// `make-bench-model -- eval --tiny` layouts) named in the clipdrag.evaluation.* settings: a two-sample DragBench
// folder is scored for the results next to the samples and a result folder in the reference layout holding copies of
// the sources, the report and its plots are written into the folder, the Markdown report opens in the preview, and a
// copy of the source scores LPIPS 0 (IF 1) and CLIP similarity 1 whatever the weights.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import type { EvalOutcome } from '../../../src/shared/evaluation';
import { blobPng } from './blob-png';
import { askRunner, delay, reportSidecarPid, runnerCanQueryPage } from './runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const REPORT_FILES = ['clipdrag-eval-report.md', 'clipdrag-eval-report.json', 'clipdrag-eval-md-if.svg', 'clipdrag-eval-categories.svg'];

interface SavedEntry {
  sample: string;
  set: string;
  result: string | null;
  score?: { lpips: number; imageFidelity: number; clipSimilarity: number; meanDistance: number };
  error?: string;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

describe('CLIPDrag evaluation inside VS Code', function () {
  let api: ClipdragApi;
  let folder: string;
  let results: string;
  const settings = () => vscode.workspace.getConfiguration('clipdrag');
  const changed = ['evaluation.diftModel', 'evaluation.clipModel', 'evaluation.lpipsModel', 'device'];

  before(async function () {
    api = await vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID)!.activate();
    const fixtures = path.join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'test', 'fixtures');
    await settings().update('evaluation.diftModel', path.join(fixtures, 'eval', 'tiny-sd21'), vscode.ConfigurationTarget.Global);
    await settings().update('evaluation.clipModel', path.join(fixtures, 'eval', 'clip-vit-b32'), vscode.ConfigurationTarget.Global);
    // The published LPIPS layout: alex.pth and an AlexNet .pth, read by the restricted reader and converted once.
    await settings().update('evaluation.lpipsModel', path.join(fixtures, 'eval', 'lpips-alex'), vscode.ConfigurationTarget.Global);
    await settings().update('device', 'cpu', vscode.ConfigurationTarget.Global);

    // Two DragBench samples (a disc at x 20, dragged to x 40 by their pickle); the reference-layout results are copies
    // of the sources, and our result next to sample_1 is the disc moved.
    const workspace = vscode.workspace.workspaceFolders![0].uri.fsPath;
    folder = path.join(workspace, 'eval-bench');
    results = path.join(workspace, 'eval-copies');
    for (const key of ['animals/sample_1', 'art_work/sample_2']) {
      const sample = path.join(folder, ...key.split('/'));
      fs.mkdirSync(sample, { recursive: true });
      fs.writeFileSync(path.join(sample, 'original_image.png'), blobPng(20));
      fs.copyFileSync(path.join(fixtures, 'batch', 'pickles', 'dragbench-sample-64.pkl'), path.join(sample, 'meta_data.pkl'));
      fs.mkdirSync(path.join(results, ...key.split('/')), { recursive: true });
      fs.copyFileSync(path.join(sample, 'original_image.png'), path.join(results, ...key.split('/'), 'dragged_image.png'));
    }
    fs.writeFileSync(path.join(folder, 'animals', 'sample_1', 'original_image.clipdrag.png'), blobPng(40));
  });

  after(async function () {
    const pid = api?.sidecar.pid;
    if (pid !== undefined) reportSidecarPid(pid);
    for (const key of changed) await settings().update(key, undefined, vscode.ConfigurationTarget.Global);
  });

  it('is offered in the command palette and on folders only in trusted workspaces', function () {
    const manifest = vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { menus: Record<string, { command: string; when?: string }[]> } };
    const when = (menu: string) => manifest.contributes.menus[menu]?.find((item) => item.command === 'clipdrag.evaluateResults')?.when;
    assert.equal(when('commandPalette'), 'isWorkspaceTrusted');
    assert.equal(when('explorer/context'), 'explorerResourceIsFolder && isWorkspaceTrusted');
  });

  it('scores the folder with the settings\' models, writes the report and opens it in the Markdown preview', async function () {
    this.timeout(300_000);
    const outcome = await vscode.commands.executeCommand<EvalOutcome | undefined>('clipdrag.evaluateResults', vscode.Uri.file(folder), { resultFolders: [results] });
    if (!outcome && runnerCanQueryPage()) throw new Error(`the command returned nothing; notifications: ${JSON.stringify(await askRunner({ kind: 'notifications' }))}`);
    assert.ok(outcome, 'the command returned nothing');
    reportSidecarPid(api.sidecar.pid!);
    assert.equal(outcome.state, 'completed');
    assert.deepEqual([outcome.entries, outcome.scored], [4, 3]);
    assert.deepEqual(outcome.summary.map((s) => [s.set, s.overall?.samples ?? 0, s.failed]), [['ours', 1, 1], ['eval-copies', 2, 0]]);
    for (const name of REPORT_FILES) assert.ok(fs.existsSync(path.join(folder, name)), `${name} was not written`);
    assert.equal(outcome.reportFiles.markdown, path.join(folder, 'clipdrag-eval-report.md'));

    const saved = JSON.parse(fs.readFileSync(path.join(folder, 'clipdrag-eval-report.json'), 'utf8')) as { models: Record<string, string>; entries: SavedEntry[] };
    assert.equal(path.basename(saved.models.lpips), 'lpips-alex');
    const entry = (sample: string, set: string) => saved.entries.find((e) => e.sample === sample && e.set === set)!;
    // A result identical to its source: LPIPS 0 (IF 1) and CLIP similarity 1, for any weights.
    for (const sample of ['animals/sample_1', 'art_work/sample_2']) {
      const score = entry(sample, 'eval-copies').score!;
      assert.ok(score, `${sample} has no score: ${entry(sample, 'eval-copies').error}`);
      assert.equal(score.lpips, 0);
      assert.equal(score.imageFidelity, 1);
      assert.ok(Math.abs(score.clipSimilarity - 1) < 1e-6, String(score.clipSimilarity));
    }
    const moved = entry('animals/sample_1', 'ours').score!;
    assert.ok(moved.lpips > 0 && moved.clipSimilarity < 1, JSON.stringify(moved));
    assert.match(entry('art_work/sample_2', 'ours').error ?? '', /no result next to the sample/);

    const markdown = fs.readFileSync(outcome.reportFiles.markdown, 'utf8');
    assert.match(markdown, /^# DragBench evaluation/);
    assert.match(markdown, /!\[MD against IF\]\(clipdrag-eval-md-if\.svg\)/);
    const preview = await waitFor('the Markdown preview of the report', () =>
      vscode.window.tabGroups.all.flatMap((group) => group.tabs).find((tab) => tab.input instanceof vscode.TabInputWebview && tab.label.includes('clipdrag-eval-report.md')),
    );
    assert.match(preview.label, /Preview/);
    if (runnerCanQueryPage()) {
      const summary = await waitFor('the summary notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.startsWith('CLIPDrag evaluation finished')));
      assert.match(summary, /eval-copies: MD [\d.]+ px, IF 1\.0000, CLIP 1\.0000 \(2\)/);
    }
  });

  it('says what a folder without DragBench samples lacks', async function () {
    if (!runnerCanQueryPage()) this.skip(); // the message is read from the page
    const empty = path.join(path.dirname(folder), 'eval-empty');
    fs.mkdirSync(empty, { recursive: true });
    const outcome = await vscode.commands.executeCommand<EvalOutcome | undefined>('clipdrag.evaluateResults', vscode.Uri.file(empty), {});
    assert.equal(outcome, undefined);
    const message = await waitFor('the error notification', async () => (await askRunner({ kind: 'notifications' })).find((text) => text.includes('holds no DragBench samples')));
    assert.match(message, /eval-empty holds no DragBench samples \(folders with original_image\.png and meta_data\.pkl/);
  });
});
