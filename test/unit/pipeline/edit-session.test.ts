// EditSession: edits that share one session open the models once and reuse the previous edit's compiled graphs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EditSpec } from '../../../src/shared/edit-spec';
import { Engine } from '../../../src/sidecar/engine/runtime';
import { encodePng } from '../../../src/sidecar/io/image';
import { edit } from '../../../src/sidecar/pipeline/edit/edit';
import { EditSession } from '../../../src/sidecar/pipeline/edit/edit-session';
import { blobImage, tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

/** A real engine that counts the graphs it is asked to compile and release. */
class CountingEngine extends Engine {
  compiles = 0;
  releases = 0;
  override async compile(...args: Parameters<Engine['compile']>): ReturnType<Engine['compile']> {
    this.compiles++;
    return super.compile(...args);
  }
  override async release(...args: Parameters<Engine['release']>): ReturnType<Engine['release']> {
    this.releases++;
    return super.release(...args);
  }
}

const spec = (handleX: number): EditSpec => ({
  version: 1,
  mode: 'clipdrag',
  prompt: 'a bright blob on a dark background',
  points: [{ handle: [handleX, 16], target: [handleX + 6, 16] }],
  model: TINY_SD,
  clipModel: TINY_CLIP,
  parameters: { loraSteps: 1, loraBatchSize: 1, loraRank: 4, dragSteps: 2, inferenceSteps: 10, previewInterval: 0 },
});

describe('EditSession (tiny models, CPU)', () => {
  let dir: string;
  let tokenizer: string;
  let engine: CountingEngine;

  before(async () => {
    dir = await tempDir('edit-session');
    tokenizer = await writeTinyTokenizer(path.join(dir, 'tokenizer'));
    engine = new CountingEngine({ cacheDir: path.join(dir, 'sessions') });
  });
  after(async () => {
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function image(name: string, width: number): Promise<string> {
    const file = path.join(dir, name);
    await fs.writeFile(file, await encodePng(blobImage(width, 32, 10, 16, 5)));
    return file;
  }

  it('compiles each graph once for images of one size, and releases what a new size no longer needs', async () => {
    const session = new EditSession({ engine });
    const run = (imagePath: string, handleX: number) =>
      edit({ imagePath, spec: spec(handleX), session, tokenizerFolder: tokenizer, workingWidth: 32, cacheDir: path.join(dir, 'cache'), settings: { device: 'cpu' } });
    try {
      const first = await run(await image('a.png', 32), 10);
      const compiledByFirst = engine.compiles;
      assert.ok(compiledByFirst > 0);
      assert.equal(session.graphs.size, compiledByFirst, 'the session keeps every graph the first edit compiled');
      assert.equal(engine.releases, 0);

      // Same size, other points and image: nothing is compiled again (the points are graph inputs).
      const second = await run(await image('b.png', 32), 12);
      assert.equal(engine.compiles, compiledByFirst, 'the second edit of the same size compiled graphs again');
      assert.ok(second.timings.find((t) => t.stage === 'load')!.ms <= first.timings.find((t) => t.stage === 'load')!.ms);
      assert.equal(first.executionProvider, 'cpu');
      assert.equal(second.executionProvider, 'cpu', 'a reused graph still reports its provider');

      // Another working size needs other graphs; the ones only the old size used are released after the edit.
      await edit({ imagePath: await image('c.png', 48), spec: spec(10), session, tokenizerFolder: tokenizer, workingWidth: 48, cacheDir: path.join(dir, 'cache'), settings: { device: 'cpu' } });
      assert.ok(engine.compiles > compiledByFirst);
      assert.ok(engine.releases > 0, 'graphs of the old size were not released');
      assert.equal(session.graphs.size, engine.compiles - engine.releases);
    } finally {
      await session.close();
    }
    assert.equal(session.graphs.size, 0);
    assert.equal(engine.releases, engine.compiles, 'close() releases every graph the session kept');
  });

  it('gives up a failed model opening, so a later edit tries again', async () => {
    const session = new EditSession({ engine });
    try {
      let calls = 0;
      const failing = () => {
        calls++;
        return Promise.reject(new Error('no such model'));
      };
      await assert.rejects(session.reuse('k', failing), /no such model/);
      await assert.rejects(session.reuse('k', failing), /no such model/);
      assert.equal(calls, 2);
      let opened = 0;
      const value = await session.reuse('k', async () => ++opened);
      assert.equal(await session.reuse('k', async () => ++opened), value);
      assert.equal(opened, 1);
    } finally {
      await session.close();
    }
    await assert.rejects(session.reuse('k', async () => 1), /closed/);
  });
});
