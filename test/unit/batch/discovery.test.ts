import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { discoverBatchItems } from '../../../src/sidecar/batch/discovery';
import { tempDir } from '../../support/tiny-pipeline';

let root: string;
let outside: string;

async function touch(relative: string, base = root): Promise<void> {
  const file = path.join(base, relative);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, 'x');
}

before(async () => {
  const dir = await fs.realpath(await tempDir('discovery'));
  root = path.join(dir, 'work');
  outside = path.join(dir, 'outside');
  for (const name of [
    'a.png', 'a.png.clipdrag-edit.json',
    'a.jpg', 'a.jpg.clipdrag-edit.json',
    // our own outputs, and a spec someone saved for one of them
    'a.clipdrag.png', 'a.clipdrag.json', 'a.clipdrag-2.png', 'a.clipdrag-2.json', 'a.png.clipdrag-mask.png',
    'a.clipdrag.png.clipdrag-edit.json',
    // images without a spec, a spec without its image, a spec for something that is not an image
    'plain.png', 'sub/deeper/ghost.webp.clipdrag-edit.json', 'notes.txt.clipdrag-edit.json',
    'sub/b.jpeg', 'sub/b.jpeg.clipdrag-edit.json',
    // DragBench: a sample, a sample whose image has a saved spec (that spec runs), an incomplete sample
    'bench/animals/s1/original_image.png', 'bench/animals/s1/user_drag.png', 'bench/animals/s1/meta_data.pkl',
    'bench/animals/s2/original_image.png', 'bench/animals/s2/meta_data.pkl', 'bench/animals/s2/original_image.png.clipdrag-edit.json',
    'bench/animals/s3/meta_data.pkl',
    // never searched
    '.git/x.png', '.git/x.png.clipdrag-edit.json', 'node_modules/m/y.png', 'node_modules/m/y.png.clipdrag-edit.json',
  ]) {
    await touch(name);
  }
  await touch('secret.png', outside);
  await touch('secret.png.clipdrag-edit.json', outside);
  await touch('elsewhere/original_image.png', outside);
  await touch('elsewhere/meta_data.pkl', outside);
  // A linked folder is not followed; linked files are items (checked when read).
  await fs.symlink(outside, path.join(root, 'linked-folder'));
  await fs.symlink(path.join(outside, 'secret.png'), path.join(root, 'linked.png'));
  await touch('linked.png.clipdrag-edit.json');
});
after(async () => {
  await fs.rm(path.dirname(root), { recursive: true, force: true });
});

describe('discoverBatchItems', () => {
  it('finds images with saved specs and DragBench samples, in image order, and nothing else', async () => {
    const items = await discoverBatchItems(root);
    assert.deepEqual(items, [
      { source: 'spec', image: 'a.jpg', specFile: 'a.jpg.clipdrag-edit.json' },
      { source: 'spec', image: 'a.png', specFile: 'a.png.clipdrag-edit.json' },
      { source: 'dragbench', image: 'bench/animals/s1/original_image.png', specFile: 'bench/animals/s1/meta_data.pkl' },
      { source: 'spec', image: 'bench/animals/s2/original_image.png', specFile: 'bench/animals/s2/original_image.png.clipdrag-edit.json' },
      { source: 'spec', image: 'linked.png', specFile: 'linked.png.clipdrag-edit.json' },
      { source: 'spec', image: 'sub/b.jpeg', specFile: 'sub/b.jpeg.clipdrag-edit.json' },
      { source: 'spec', image: 'sub/deeper/ghost.webp', specFile: 'sub/deeper/ghost.webp.clipdrag-edit.json' },
    ]);
  });

  it('fails clearly when the folder itself cannot be read', async () => {
    await assert.rejects(discoverBatchItems(path.join(root, 'missing')), /ENOENT/);
  });
});
