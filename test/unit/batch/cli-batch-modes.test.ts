// `clipdrag batch --modes`: every sample in each mode, the report with one table per sample (tiny models, CPU).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BatchReport } from '../../../src/shared/batch';
import { serializeEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import { encodePng } from '../../../src/sidecar/io/image';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');

function clipdrag(args: string[], cacheDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src', 'sidecar', 'main.ts'), ...args], {
      cwd: repo,
      env: { ...process.env, CLIPDRAG_CACHE_DIR: cacheDir },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('clipdrag batch --modes (tiny models, CPU)', () => {
  let dir: string;
  let folder: string;
  let model: string;

  before(async () => {
    dir = await fs.realpath(await tempDir('batch-modes'));
    model = await tinySdWithTokenizer(dir);
    folder = path.join(dir, 'work');
    for (const name of ['left', 'right']) {
      await fs.mkdir(path.join(folder, name), { recursive: true });
      const image = path.join(folder, name, 'blob.png');
      await fs.writeFile(image, await encodePng(blobImage(64, 64, 20, 32, 8)));
      const spec: EditSpec = {
        version: 1,
        mode: 'clipdrag',
        prompt: 'a bright blob',
        editPrompt: 'a blob on the right',
        points: [{ handle: [20, 32], target: name === 'left' ? [12, 32] : [40, 32] }],
        parameters: { loraSteps: 0, dragSteps: 3, previewInterval: 0 },
      };
      await fs.writeFile(`${image}.clipdrag-edit.json`, serializeEditSpec(spec));
    }
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('runs each sample in each mode and reports one table per sample with each mode\'s distance and time', async () => {
    const run = await clipdrag(['batch', folder, '--modes', 'drag,clipdrag,freedrag', '--model', model, '--clip', TINY_CLIP, '--device', 'cpu', '--working-width', '64', '--json'], path.join(dir, 'cache'));
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as BatchReport;
    assert.deepEqual(
      report.items.map((item) => [item.image, item.mode, item.status]),
      ['left', 'right'].flatMap((name) => ['drag', 'clipdrag', 'freedrag'].map((mode) => [`${name}/blob.png`, mode, 'succeeded'])),
    );
    for (const item of report.items) {
      assert.equal(item.distances?.length, 1, `${item.image} ${item.mode}`);
      assert.ok(item.seconds! > 0);
    }
    // Three results per image, each recipe naming its mode.
    for (const name of ['left', 'right']) {
      const recipes = report.items.filter((item) => item.image === `${name}/blob.png`).map((item) => item.recipe!);
      assert.equal(new Set(recipes).size, 3);
      const modes = await Promise.all(recipes.map(async (r) => (JSON.parse(await fs.readFile(path.join(folder, r), 'utf8')) as { spec: { mode: string } }).spec.mode));
      assert.deepEqual(modes, ['drag', 'clipdrag', 'freedrag']);
    }
    const markdown = await fs.readFile(path.join(folder, 'clipdrag-batch-report.md'), 'utf8');
    const section = markdown.slice(markdown.indexOf('## Modes side by side'));
    assert.match(section, /### `left\/blob\.png`\n\n\| mode \| status \| time \| handle → target \(px\) \| iterations \| result \|/);
    const rows = section.split('\n').filter((line) => /^\| (drag|clipdrag|freedrag) \|/.test(line));
    assert.equal(rows.length, 6);
    assert.match(rows[2]!, /^\| freedrag \| done \| [\d.]+ s \| \d+\.\d\d \| [1-3] \| `left\/blob\.clipdrag-3\.png` \|$/);

    const usage = await clipdrag(['batch', folder, '--modes', 'drag,sketch'], path.join(dir, 'cache'));
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--modes: unknown mode "sketch"; expected some of clipdrag, drag, freedrag, text/);
  });
});
