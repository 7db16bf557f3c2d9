import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PathSafetyError, isPathInside, resolveInsideFolder } from '../../../src/sidecar/io/paths';

let root: string;
let base: string;
let outside: string;

before(async () => {
  root = await realpath(await mkdtemp(path.join(tmpdir(), 'clipdrag-paths-')));
  base = path.join(root, 'images');
  outside = path.join(root, 'elsewhere');
  await mkdir(path.join(base, 'masks'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(base, 'cat.png'), 'image');
  await writeFile(path.join(base, 'masks', 'cat-mask.png'), 'mask');
  await writeFile(path.join(outside, 'secret.png'), 'secret');
  await writeFile(path.join(root, 'images-sibling.png'), 'sibling');
  await symlink(path.join(outside, 'secret.png'), path.join(base, 'link-out.png'));
  await symlink(path.join(base, 'cat.png'), path.join(base, 'link-in.png'));
  await symlink(outside, path.join(base, 'dir-out'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function expectRefusal(named: string, problem: PathSafetyError['problem'], pattern: RegExp, options = {}): Promise<void> {
  await assert.rejects(resolveInsideFolder(base, named, { what: 'mask', namedBy: 'cat.png.clipdrag-edit.json', ...options }), (error: unknown) => {
    assert.ok(error instanceof PathSafetyError, String(error));
    assert.equal(error.problem, problem);
    assert.equal(error.namedPath, named);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('resolveInsideFolder', () => {
  it('resolves relative paths inside the folder to real paths', async () => {
    assert.equal(await resolveInsideFolder(base, 'cat.png'), path.join(base, 'cat.png'));
    assert.equal(await resolveInsideFolder(base, 'masks/cat-mask.png'), path.join(base, 'masks', 'cat-mask.png'));
    assert.equal(await resolveInsideFolder(base, 'masks/../cat.png'), path.join(base, 'cat.png'));
    assert.equal(await resolveInsideFolder(base, './masks/./cat-mask.png'), path.join(base, 'masks', 'cat-mask.png'));
  });

  it('accepts absolute paths inside the folder', async () => {
    assert.equal(await resolveInsideFolder(base, path.join(base, 'cat.png')), path.join(base, 'cat.png'));
  });

  it('follows links that stay inside', async () => {
    assert.equal(await resolveInsideFolder(base, 'link-in.png'), path.join(base, 'cat.png'));
  });

  it('refuses .. escapes', async () => {
    await expectRefusal('../elsewhere/secret.png', 'outside', /^The mask "\.\.\/elsewhere\/secret\.png" named by cat\.png\.clipdrag-edit\.json points outside the folder\. CLIPDrag only reads files inside .*images: move the mask into that folder/);
    await expectRefusal('masks/../../images-sibling.png', 'outside', /points outside the folder/);
  });

  it('does not mistake a sibling folder with a common prefix for the folder itself', async () => {
    await expectRefusal(path.join(root, 'images-sibling.png'), 'outside', /points outside the folder/);
    assert.equal(isPathInside(base, `${base}-sibling`), false);
    assert.equal(isPathInside(base, path.join(base, '..foo')), true);
  });

  it('refuses absolute paths outside', async () => {
    await expectRefusal(path.join(outside, 'secret.png'), 'outside', /points outside the folder/);
  });

  it('refuses symbolic links that lead outside, to files or through folders', async () => {
    await expectRefusal('link-out.png', 'outside', /leads through a symbolic link to .*elsewhere.secret\.png, outside the folder/);
    await expectRefusal('dir-out/secret.png', 'outside', /leads through a symbolic link/);
  });

  it('reports missing files, or checks their nearest existing folder when they may be created', async () => {
    await expectRefusal('masks/none.png', 'not-found', /"masks\/none\.png" named by cat\.png\.clipdrag-edit\.json does not exist in .*masks; check the name/);
    assert.equal(await resolveInsideFolder(base, 'new/sub/file.png', { mustExist: false }), path.join(base, 'new', 'sub', 'file.png'));
    await expectRefusal('dir-out/new.png', 'outside', /leads through a symbolic link/, { mustExist: false });
  });

  it('refuses empty paths and NUL characters', async () => {
    await expectRefusal('', 'invalid', /is an empty path/);
    await expectRefusal('a\0b.png', 'invalid', /NUL character/);
  });

  it('reports a base folder that does not exist', async () => {
    await assert.rejects(resolveInsideFolder(path.join(root, 'missing-folder'), 'x.png'), (error: unknown) => {
      assert.ok(error instanceof PathSafetyError);
      assert.equal(error.problem, 'not-found');
      assert.match(error.message, /the folder .*missing-folder is not accessible \(ENOENT\)/);
      return true;
    });
  });
});
