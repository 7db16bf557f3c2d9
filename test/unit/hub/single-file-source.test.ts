// A single-file checkpoint named as the model: a .safetensors file is resolved in place and hashed for the recipe;
// a pickle checkpoint is refused before anything reads it, saying why and what to use.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureModel, verifyModel } from '../../../src/sidecar/hub';
import { parseModelSource } from '../../../src/sidecar/hub/model-source';

const CHECKPOINT = path.resolve(__dirname, '..', '..', 'fixtures', 'single-file', 'tiny-sd15-ldm.safetensors');

describe('single-file checkpoints as model sources', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-single-file-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('parses a .safetensors path (absolute or relative) as a local single file', () => {
    assert.deepEqual(parseModelSource(CHECKPOINT), { type: 'local', path: CHECKPOINT, file: true });
    assert.deepEqual(parseModelSource(path.basename(CHECKPOINT), { baseDir: path.dirname(CHECKPOINT) }), { type: 'local', path: CHECKPOINT, file: true });
  });

  it('refuses pickles and other files with a reason', async () => {
    for (const name of ['v1-5-pruned-emaonly.ckpt', 'model.pt', 'model.bin']) {
      const file = path.join(dir, name);
      await fs.writeFile(file, 'never read');
      assert.throws(() => parseModelSource(file), /is a PyTorch pickle checkpoint, which CLIPDrag never loads: unpickling can run any code .* Use the \.safetensors version/);
    }
    const text = path.join(dir, 'notes.txt');
    await fs.writeFile(text, 'x');
    assert.throws(() => parseModelSource(text), /is a file, not a model: expected a model folder, a single-file \.safetensors checkpoint or a hub repo id/);
  });

  it('resolves the file in place with its sha256 for the recipe, and verifies it', async () => {
    const resolved = await ensureModel({ kind: 'stable-diffusion', source: CHECKPOINT });
    const sha256 = createHash('sha256').update(await fs.readFile(CHECKPOINT)).digest('hex');
    assert.equal(resolved.singleFile, CHECKPOINT);
    assert.equal(resolved.folder, path.dirname(CHECKPOINT));
    assert.deepEqual(resolved.files.map((f) => [f.path, f.sha256]), [[path.basename(CHECKPOINT), sha256]]);
    assert.equal(resolved.weightsPrecision, 'fp32');
    const report = await verifyModel({ kind: 'stable-diffusion', source: CHECKPOINT });
    // As for any local folder, nothing publishes the expected hash: the file is hashed again and reported.
    assert.deepEqual(report.files.map((f) => [f.path, f.sha256, f.status]), [[path.basename(CHECKPOINT), sha256, 'unverified']]);
    await assert.rejects(ensureModel({ kind: 'clip', source: CHECKPOINT }), /can only be the Stable Diffusion model; the CLIP model must be a transformers CLIPModel folder/);
  });
});
