// The samples copied for test runs and `npm start`: only the shipped files, whatever a user left beside them.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SAMPLE_FILES, copySamples } from '../../../scripts/samples.mjs';
import { tempDir } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');

describe('copySamples', () => {
  let dir: string;
  let checkout: string;

  before(async () => {
    dir = await tempDir('samples');
    // A checkout in which the user tried the editor in media/samples: a saved spec, a result, a batch report.
    checkout = path.join(dir, 'checkout');
    const samples = path.join(checkout, 'media', 'samples');
    await fs.mkdir(samples, { recursive: true });
    for (const name of SAMPLE_FILES) await fs.copyFile(path.join(repo, 'media', 'samples', name), path.join(samples, name));
    for (const name of ['sample.png.clipdrag-edit.json', 'sample.clipdrag.png', 'sample.clipdrag.json', 'clipdrag-batch-report.md']) {
      await fs.writeFile(path.join(samples, name), 'left by a user');
    }
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('ships every sample it names', async () => {
    assert.ok(SAMPLE_FILES.length > 0);
    for (const name of SAMPLE_FILES) await fs.access(path.join(repo, 'media', 'samples', name));
  });

  it('copies the pristine samples only, not what a user left in media/samples', async () => {
    const workspace = path.join(dir, 'workspace');
    assert.deepEqual(copySamples(checkout, workspace), SAMPLE_FILES);
    assert.deepEqual((await fs.readdir(workspace)).sort(), [...SAMPLE_FILES].sort());
    for (const name of SAMPLE_FILES) {
      assert.deepEqual(await fs.readFile(path.join(workspace, name)), await fs.readFile(path.join(repo, 'media', 'samples', name)));
    }
  });

  it('keeps what the user changed in a scratch copy (npm start), and restores a sample that is gone', async () => {
    const scratch = path.join(dir, 'scratch');
    copySamples(checkout, scratch, { keepExisting: true });
    const [first] = SAMPLE_FILES;
    await fs.writeFile(path.join(scratch, first!), 'edited by the user');
    assert.deepEqual(copySamples(checkout, scratch, { keepExisting: true }), []);
    assert.equal(await fs.readFile(path.join(scratch, first!), 'utf8'), 'edited by the user');
    await fs.rm(path.join(scratch, first!));
    assert.deepEqual(copySamples(checkout, scratch, { keepExisting: true }), [first]);
  });
});
