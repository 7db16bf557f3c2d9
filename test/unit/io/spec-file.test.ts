import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EditSpecError, encodeMaskRle, specPathForImage, type EditSpec } from '../../../src/shared/edit-spec';
import { ImageFileError, encodeMaskPng } from '../../../src/sidecar/io/image';
import { PathSafetyError } from '../../../src/sidecar/io/paths';
import { SpecFileError, loadEdit, loadSpecMask, readEditSpecFile, specWithInlineMask, writeEditSpecFile } from '../../../src/sidecar/io/spec-file';

let root: string;
let caseCount = 0;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'clipdrag-spec-file-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const WIDTH = 12;
const HEIGHT = 8;

/** A folder with `cat.png` (12 × 8) and, optionally, its spec. */
async function caseFolder(spec?: unknown): Promise<{ dir: string; image: string; specPath: string }> {
  const dir = path.join(root, `case-${++caseCount}`);
  await mkdir(dir);
  const image = path.join(dir, 'cat.png');
  await sharp(Buffer.alloc(WIDTH * HEIGHT * 3, 128), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).png().toFile(image);
  const specPath = specPathForImage(image);
  if (spec !== undefined) await writeFile(specPath, typeof spec === 'string' ? spec : JSON.stringify(spec));
  return { dir, image, specPath };
}

function spec(overrides: Partial<EditSpec> = {}): EditSpec {
  return { version: 1, mode: 'clipdrag', prompt: 'a cat', points: [{ handle: [1, 1], target: [10, 6] }], ...overrides };
}

function maskBitmap(): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(WIDTH * HEIGHT);
  for (let y = 2; y < 6; y++) for (let x = 3; x < 9; x++) data[y * WIDTH + x] = 1;
  return { width: WIDTH, height: HEIGHT, data };
}

describe('spec files', () => {
  it('saves a spec in canonical form and reads it back', async () => {
    const { specPath, dir } = await caseFolder();
    const original = spec({ parameters: { seed: 7 }, mask: encodeMaskRle(maskBitmap()) });
    await writeEditSpecFile(specPath, original);
    const text = await readFile(specPath, 'utf8');
    assert.match(text, /^\{\n {2}"version": 1,/);
    assert.deepEqual(await readEditSpecFile(specPath), original);
    assert.deepEqual((await readdir(dir)).sort(), ['cat.png', 'cat.png.clipdrag-edit.json']);
  });

  it('refuses to save an invalid spec', async () => {
    const { specPath } = await caseFolder();
    await assert.rejects(writeEditSpecFile(specPath, { ...spec(), parameters: { loraRank: 0 } }), EditSpecError);
    await assert.rejects(readFile(specPath), { code: 'ENOENT' });
  });

  it('reports a missing spec file with what to do', async () => {
    const { specPath } = await caseFolder();
    await assert.rejects(readEditSpecFile(specPath), (error: unknown) => {
      assert.ok(error instanceof SpecFileError);
      assert.equal(error.code, 'ENOENT');
      assert.match(error.message, /cat\.png\.clipdrag-edit\.json does not exist; open the image in the CLIPDrag editor and save an edit first\./);
      return true;
    });
  });

  it('reports invalid JSON and invalid content with the file name and JSON paths', async () => {
    const broken = await caseFolder('{ "version": 1, ');
    await assert.rejects(readEditSpecFile(broken.specPath), (error: unknown) => {
      assert.ok(error instanceof EditSpecError);
      assert.match(error.message, /^Edit spec .*cat\.png\.clipdrag-edit\.json is not valid \(1 problem\):\n {2}\$: not valid JSON/);
      return true;
    });
    const wrong = await caseFolder({ ...spec(), mode: 'paint' });
    await assert.rejects(readEditSpecFile(wrong.specPath), /\$\.mode: expected one of "clipdrag", "drag", "freedrag", "text", got "paint"/);
  });
});

describe('loadEdit', () => {
  it('loads image, spec with defaults and an inline mask', async () => {
    const mask = maskBitmap();
    const { image } = await caseFolder(spec({ mask: encodeMaskRle(mask), parameters: { dragSteps: 40 } }));
    const loaded = await loadEdit(image);
    assert.equal(loaded.image.width, WIDTH);
    assert.equal(loaded.spec.parameters.dragSteps, 40);
    assert.equal(loaded.spec.parameters.loraRank, 16);
    assert.deepEqual(loaded.mask, mask);
    assert.equal(loaded.maskFile, undefined);
  });

  it('loads a PNG mask named relative to the spec', async () => {
    const mask = maskBitmap();
    const { dir, image } = await caseFolder(spec({ mask: 'masks/cat-mask.png' }));
    await mkdir(path.join(dir, 'masks'));
    await writeFile(path.join(dir, 'masks', 'cat-mask.png'), await encodeMaskPng(mask));
    const loaded = await loadEdit(image);
    assert.deepEqual(loaded.mask, mask);
    assert.equal(loaded.maskFile, 'masks/cat-mask.png');
  });

  it('loads a spec without a mask', async () => {
    const { image } = await caseFolder(spec());
    const loaded = await loadEdit(image);
    assert.equal(loaded.mask, undefined);
  });

  it('checks points against the decoded image size', async () => {
    const { image } = await caseFolder(spec({ points: [{ handle: [12, 0], target: [0, 8] }] }));
    await assert.rejects(loadEdit(image), (error: unknown) => {
      assert.ok(error instanceof EditSpecError);
      assert.deepEqual(error.issues.map((issue) => issue.path), ['$.points[0].handle[0]', '$.points[0].target[1]']);
      assert.match(error.message, /x = 12 is outside the image; expected 0 ≤ x ≤ 11 \(the image is 12 × 8 pixels\)/);
      return true;
    });
  });

  it('requires points to run, but can load a draft', async () => {
    const { image } = await caseFolder(spec({ points: [] }));
    await assert.rejects(loadEdit(image), /\$\.points: no handle → target pairs/);
    assert.deepEqual((await loadEdit(image, { forRun: false })).spec.points, []);
  });

  it('reports masks of the wrong size, inline or PNG', async () => {
    const inline = await caseFolder(spec({ mask: { width: 6, height: 4, rle: [24] } }));
    await assert.rejects(loadEdit(inline.image), /\$\.mask: is 6 × 4, but the image is 12 × 8/);
    const png = await caseFolder(spec({ mask: 'small.png' }));
    await writeFile(path.join(png.dir, 'small.png'), await encodeMaskPng({ width: 6, height: 4, data: new Uint8Array(24) }));
    await assert.rejects(loadEdit(png.image), (error: unknown) => error instanceof ImageFileError && /is 6 × 4 pixels, but the image is 12 × 8/.test(error.message));
  });

  it('refuses a mask that leads outside the image folder through a link', async () => {
    const { dir, image } = await caseFolder(spec({ mask: 'mask.png' }));
    const outside = path.join(root, `outside-${caseCount}.png`);
    await writeFile(outside, await encodeMaskPng(maskBitmap()));
    await symlink(outside, path.join(dir, 'mask.png'));
    await assert.rejects(loadEdit(image), (error: unknown) => {
      assert.ok(error instanceof PathSafetyError);
      assert.match(error.message, /^The mask "mask\.png" named by cat\.png\.clipdrag-edit\.json leads through a symbolic link/);
      return true;
    });
  });

  it('reports a mask file that does not exist', async () => {
    const { image } = await caseFolder(spec({ mask: 'gone.png' }));
    await assert.rejects(loadEdit(image), (error: unknown) => error instanceof PathSafetyError && error.problem === 'not-found');
  });

  it('loadSpecMask decodes inline masks of the right size', async () => {
    const mask = maskBitmap();
    const result = await loadSpecMask(spec({ mask: encodeMaskRle(mask) }), path.join(root, 'x.png.clipdrag-edit.json'), { width: WIDTH, height: HEIGHT });
    assert.deepEqual(result, { mask });
  });
});

describe('specWithInlineMask', () => {
  it('replaces a mask path with the RLE of the mask used, without touching the original', async () => {
    const mask = maskBitmap();
    const { image } = await caseFolder(spec({ mask: 'm.png' }));
    await writeFile(path.join(path.dirname(image), 'm.png'), await encodeMaskPng(mask));
    const loaded = await loadEdit(image);
    const inline = specWithInlineMask(loaded.spec, loaded.mask);
    assert.deepEqual(inline.mask, encodeMaskRle(mask));
    assert.equal(loaded.spec.mask, 'm.png');
    assert.notEqual(inline.points, loaded.spec.points);
    assert.equal(specWithInlineMask(loaded.spec, undefined).mask, undefined);
    assert.ok(!('mask' in specWithInlineMask(loaded.spec, undefined)));
  });
});
