import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatModelSource, isModelStoreError, parseModelSource, validateRepoId } from '../../../src/sidecar/hub';

describe('parseModelSource', () => {
  let base: string;
  let home: string;
  before(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'model-source-'));
    home = path.join(base, 'home');
    await mkdir(path.join(base, 'models', 'sd15'), { recursive: true });
    await mkdir(path.join(base, 'owner', 'name'), { recursive: true });
    await mkdir(path.join(home, 'weights', 'clip'), { recursive: true });
  });
  after(() => rm(base, { recursive: true, force: true }));
  const parse = (spec: string) => parseModelSource(spec, { baseDir: base, homeDir: home });

  it('reads repo ids with and without a revision', () => {
    assert.deepEqual(parse('stable-diffusion-v1-5/stable-diffusion-v1-5'), { type: 'hub', repoId: 'stable-diffusion-v1-5/stable-diffusion-v1-5', revision: 'main' });
    assert.deepEqual(parse(' openai/clip-vit-base-patch16@v1.0 '), { type: 'hub', repoId: 'openai/clip-vit-base-patch16', revision: 'v1.0' });
    const commit = 'a'.repeat(40);
    assert.deepEqual(parse(`a_b/c.d@${commit}`), { type: 'hub', repoId: 'a_b/c.d', revision: commit });
    assert.deepEqual(parse('org/model@refs/pr/3'), { type: 'hub', repoId: 'org/model', revision: 'refs/pr/3' });
    assert.equal(formatModelSource(parse('org/model@dev')), 'org/model@dev');
  });

  it('reads absolute, home-relative and relative folders', () => {
    assert.deepEqual(parse(path.join(base, 'models', 'sd15')), { type: 'local', path: path.join(base, 'models', 'sd15') });
    assert.deepEqual(parse('~/weights/clip'), { type: 'local', path: path.join(home, 'weights', 'clip') });
    assert.deepEqual(parse('./models/sd15'), { type: 'local', path: path.join(base, 'models', 'sd15') });
    // A folder shadows a repo id spelled the same way.
    assert.deepEqual(parse('owner/name'), { type: 'local', path: path.join(base, 'owner', 'name') });
  });

  it('says which folder is missing for path-like strings', () => {
    assert.throws(() => parse('./nothing/here'), (error: unknown) => {
      assert.ok(isModelStoreError(error, 'INVALID_SOURCE'));
      assert.equal(error.message, `Model folder not found: ${path.join(base, 'nothing', 'here')} (from "./nothing/here").`);
      return true;
    });
    assert.throws(() => parse('~/missing'), /Model folder not found: .*missing/);
  });

  it('rejects invalid repo ids and revisions with the broken rule', () => {
    const cases: [string, RegExp][] = [
      ['', /No model given/],
      ['just-a-name', /exactly one "\/"/],
      ['a/b/c', /exactly one "\/"/],
      ['nobody/', /the name is empty/],
      ['own er/model', /may only contain letters, digits/],
      ['owner/-model', /must start and end with a letter, digit or "_"/],
      ['owner/model.', /must start and end/],
      ['owner/mo--del', /may not contain "--" or "\.\."/],
      ['owner/mo..del', /may not contain "--" or "\.\."/],
      ['owner/model.git', /may not end with "\.git"/],
      [`owner/${'x'.repeat(97)}`, /longer than 96 characters/],
      ['owner/model@', /Invalid revision "" .* it is empty/],
      ['owner/model@../../etc', /may not contain "\.\." or "\/\/"/],
      ['owner/model@a b', /may only contain letters, digits/],
      ['owner/model@/main', /may not start or end with "\/"/],
    ];
    for (const [spec, message] of cases) {
      assert.throws(
        () => parse(spec),
        (error: unknown) => isModelStoreError(error, 'INVALID_SOURCE') && message.test(error.message),
        `"${spec}" should fail with ${message}`,
      );
    }
    assert.throws(() => validateRepoId('x'), /Invalid hub repo id "x": it must have exactly one "\/"/);
    assert.doesNotThrow(() => validateRepoId('stable-diffusion-v1-5/stable-diffusion-v1-5'));
  });
});
