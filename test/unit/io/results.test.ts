import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, readdir, rm, stat, statfs, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { withDefaults } from '../../../src/shared/edit-spec';
import type { Recipe } from '../../../src/shared/recipe';
import { FileWriteError, nodeFileOps, writeFileAtomic, type FileOps, type WritableFileHandle } from '../../../src/sidecar/io/atomic-write';
import { encodePng, readImageFile, type RgbImage } from '../../../src/sidecar/io/image';
import { describeSourceFile, resultPaths, writeEditResult, type RecipeDraft } from '../../../src/sidecar/io/results';

let root: string;
let folderCount = 0;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'clipdrag-results-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function noiseImage(width: number, height: number, seed = 1): RgbImage {
  const data = new Uint8Array(width * height * 3);
  // xorshift32: incompressible enough that a PNG of it is about as large as the raw pixels.
  let state = seed | 1;
  for (let i = 0; i < data.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    data[i] = state & 0xff;
  }
  return { width, height, channels: 3, data };
}

/** A fresh folder holding a source image `cat.png`. */
async function folderWithSource(name = 'cat.png'): Promise<{ dir: string; source: string }> {
  const dir = path.join(root, `case-${++folderCount}`);
  await mkdir(dir);
  const source = path.join(dir, name);
  await writeFile(source, await encodePng(noiseImage(8, 8, 99)));
  return { dir, source };
}

function recipeDraft(sourceName = 'cat.png'): RecipeDraft {
  const spec = withDefaults({ version: 1, mode: 'clipdrag', prompt: 'a cat', editPrompt: 'a smiling cat', points: [{ handle: [1, 2], target: [5, 6] }] });
  return {
    software: { name: 'CLIPDrag', version: '0.1.0', node: process.version, onnxruntime: '1.30.0', sharp: '0.35.5', platform: `${process.platform}-${process.arch}` },
    source: { file: sourceName, width: 8, height: 8, sha256: '0'.repeat(64) },
    spec,
    seed: spec.parameters.seed,
    models: [{ role: 'stable-diffusion', id: 'tiny-sd15', repoId: null, revision: null, commit: null, files: [{ path: 'unet/diffusion_pytorch_model.safetensors', size: 10, sha256: 'a'.repeat(64) }] }],
    device: { preference: 'cpu', executionProvider: 'cpu' },
    timings: [
      { stage: 'drag', ms: 12.5 },
      { stage: 'denoise', ms: 3 },
    ],
    drag: { iterations: 7, reachedTargets: true, finalHandles: [[4.5, 6]], finalHandlesSupervision: [[3, 2]] },
  };
}

async function snapshot(file: string): Promise<{ bytes: Buffer; mtimeMs: number }> {
  return { bytes: await readFile(file), mtimeMs: (await stat(file)).mtimeMs };
}

async function assertSourceUnchanged(file: string, before: { bytes: Buffer; mtimeMs: number }): Promise<void> {
  const now = await snapshot(file);
  assert.ok(now.bytes.equals(before.bytes), 'source bytes changed');
  assert.equal(now.mtimeMs, before.mtimeMs, 'source mtime changed');
}

async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

interface Faults {
  /** Fail writes to files whose name matches, after this many bytes went through. */
  write?: { match: RegExp; afterBytes: number; code: string };
  sync?: { match: RegExp; code: string };
  /** `link` fails with this code (EPERM: a file system without hard links). */
  link?: string;
  rename?: string;
  /** `exists` answers false for these names even when they exist (simulates a writer racing in after the check). */
  hide?: RegExp;
}

function errnoError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code });
}

/** Real file operations with injected failures. */
function faultyOps(faults: Faults): FileOps {
  return {
    ...nodeFileOps,
    async open(file, flags, mode) {
      const handle = await nodeFileOps.open(file, flags, mode);
      const name = path.basename(file);
      let written = 0;
      const wrapped: WritableFileHandle = {
        async write(buffer, offset, length, position) {
          const fault = faults.write;
          if (fault && fault.match.test(name) && written + length > fault.afterBytes) {
            const allowed = Math.max(0, fault.afterBytes - written);
            if (allowed > 0) await handle.write(buffer, offset, allowed, position);
            written += allowed;
            throw errnoError(fault.code);
          }
          const result = await handle.write(buffer, offset, length, position);
          written += result.bytesWritten;
          return result;
        },
        async sync() {
          if (faults.sync && faults.sync.match.test(name)) throw errnoError(faults.sync.code);
          return handle.sync();
        },
        close: () => handle.close(),
      };
      return wrapped;
    },
    async link(existing, newPath) {
      if (faults.link) throw errnoError(faults.link);
      return nodeFileOps.link(existing, newPath);
    },
    async rename(from, to) {
      if (faults.rename) throw errnoError(faults.rename);
      return nodeFileOps.rename(from, to);
    },
    async exists(file) {
      if (faults.hide && faults.hide.test(path.basename(file))) return false;
      return nodeFileOps.exists(file);
    },
  };
}

async function expectWriteError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<FileWriteError> {
  let caught: FileWriteError | undefined;
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FileWriteError, `expected a FileWriteError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    caught = error;
    return true;
  });
  return caught!;
}

describe('result naming', () => {
  it('numbers names after the first', () => {
    assert.deepEqual(resultPaths(path.join('photos', 'cat.png'), 1), { imagePath: path.join('photos', 'cat.clipdrag.png'), recipePath: path.join('photos', 'cat.clipdrag.json') });
    assert.deepEqual(resultPaths(path.join('photos', 'my.cat.webp'), 3), { imagePath: path.join('photos', 'my.cat.clipdrag-3.png'), recipePath: path.join('photos', 'my.cat.clipdrag-3.json') });
    assert.throws(() => resultPaths('cat.png', 0), /positive integer/);
  });

  it('describes the source with its sha256', async () => {
    const { source } = await folderWithSource();
    const described = await describeSourceFile(source, { width: 8, height: 8 });
    const { createHash } = await import('node:crypto');
    assert.deepEqual(described, { file: 'cat.png', width: 8, height: 8, sha256: createHash('sha256').update(await readFile(source)).digest('hex') });
  });
});

describe('writeEditResult', () => {
  it('writes the image and its recipe next to the source, and leaves nothing else', async () => {
    const { dir, source } = await folderWithSource();
    const before = await snapshot(source);
    const image = noiseImage(24, 16);
    const written = await writeEditResult({ sourcePath: source, image, recipe: recipeDraft(), now: new Date('2025-01-02T03:04:05Z') });

    assert.equal(written.index, 1);
    assert.equal(written.imagePath, path.join(dir, 'cat.clipdrag.png'));
    assert.equal(written.recipePath, path.join(dir, 'cat.clipdrag.json'));
    assert.deepEqual(await listing(dir), ['cat.clipdrag.json', 'cat.clipdrag.png', 'cat.png']);
    const decoded = await readImageFile(written.imagePath);
    assert.deepEqual(decoded.data, image.data);

    const recipe = JSON.parse(await readFile(written.recipePath, 'utf8')) as Recipe;
    assert.deepEqual(recipe, written.recipe);
    assert.equal(recipe.recipeVersion, 1);
    assert.equal(recipe.createdAt, '2025-01-02T03:04:05.000Z');
    assert.deepEqual(recipe.result, { file: 'cat.clipdrag.png', width: 24, height: 16 });
    assert.equal(recipe.spec.parameters.dragSteps, 800);
    assert.deepEqual(recipe.drag.finalHandles, [[4.5, 6]]);
    assert.deepEqual(recipe.timings.map((t) => t.stage), ['drag', 'denoise']);
    await assertSourceUnchanged(source, before);
  });

  it('numbers results when names are taken, keeping image and recipe numbers together', async () => {
    const { dir, source } = await folderWithSource();
    const first = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4), recipe: recipeDraft() });
    const second = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4, 2), recipe: recipeDraft() });
    // A leftover recipe without its image makes number 3 unusable.
    await writeFile(path.join(dir, 'cat.clipdrag-3.json'), 'orphan');
    const fourth = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4, 3), recipe: recipeDraft() });
    assert.deepEqual([first.index, second.index, fourth.index], [1, 2, 4]);
    assert.equal(second.recipe.result.file, 'cat.clipdrag-2.png');
    assert.equal(fourth.recipe.result.file, 'cat.clipdrag-4.png');
    assert.equal(await readFile(path.join(dir, 'cat.clipdrag-3.json'), 'utf8'), 'orphan');
    assert.deepEqual(await listing(dir), ['cat.clipdrag-2.json', 'cat.clipdrag-2.png', 'cat.clipdrag-3.json', 'cat.clipdrag-4.json', 'cat.clipdrag-4.png', 'cat.clipdrag.json', 'cat.clipdrag.png', 'cat.png']);
    // Earlier results are never overwritten.
    assert.deepEqual((await readImageFile(first.imagePath)).data, noiseImage(4, 4).data);
  });

  it('shares the numbering between sources with the same stem (cat.png, cat.jpg)', async () => {
    const { dir, source } = await folderWithSource();
    const jpg = path.join(dir, 'cat.jpg');
    await writeFile(jpg, await readFile(source));
    const fromPng = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4), recipe: recipeDraft() });
    const fromJpg = await writeEditResult({ sourcePath: jpg, image: noiseImage(4, 4), recipe: recipeDraft('cat.jpg') });
    assert.equal(path.basename(fromPng.imagePath), 'cat.clipdrag.png');
    assert.equal(path.basename(fromJpg.imagePath), 'cat.clipdrag-2.png');
    assert.equal(fromJpg.recipe.source.file, 'cat.jpg');
  });

  it('gives concurrent writers distinct, complete pairs', async () => {
    const { dir, source } = await folderWithSource();
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => writeEditResult({ sourcePath: source, image: noiseImage(6, 5, i + 10), recipe: recipeDraft() })));
    assert.deepEqual(results.map((r) => r.index).sort(), [1, 2, 3, 4, 5, 6]);
    for (const [i, result] of results.entries()) {
      const recipe = JSON.parse(await readFile(result.recipePath, 'utf8')) as Recipe;
      assert.equal(recipe.result.file, path.basename(result.imagePath));
      assert.deepEqual((await readImageFile(result.imagePath)).data, noiseImage(6, 5, i + 10).data);
    }
    assert.equal((await listing(dir)).filter((name) => name.startsWith('.')).length, 0, 'temporary files left behind');
  });

  it('gives up a number whose recipe name appears after the check, and removes the image it published', async () => {
    const { dir, source } = await folderWithSource();
    await writeFile(path.join(dir, 'cat.clipdrag.json'), 'someone else');
    const written = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4), recipe: recipeDraft(), ops: faultyOps({ hide: /^cat\.clipdrag\.json$/ }) });
    assert.equal(written.index, 2);
    assert.deepEqual(await listing(dir), ['cat.clipdrag-2.json', 'cat.clipdrag-2.png', 'cat.clipdrag.json', 'cat.png']);
    assert.equal(await readFile(path.join(dir, 'cat.clipdrag.json'), 'utf8'), 'someone else');
  });

  it('works on file systems without hard links (exclusive create, then rename)', async () => {
    const { dir, source } = await folderWithSource();
    const ops = faultyOps({ link: 'EPERM' });
    await writeFile(path.join(dir, 'cat.clipdrag.png'), 'existing');
    const results = await Promise.all([1, 2, 3].map((seed) => writeEditResult({ sourcePath: source, image: noiseImage(4, 4, seed), recipe: recipeDraft(), ops })));
    assert.deepEqual(results.map((r) => r.index).sort(), [2, 3, 4]);
    for (const result of results) {
      assert.equal((JSON.parse(await readFile(result.recipePath, 'utf8')) as Recipe).result.file, path.basename(result.imagePath));
      assert.equal((await readImageFile(result.imagePath)).width, 4);
    }
    assert.equal(await readFile(path.join(dir, 'cat.clipdrag.png'), 'utf8'), 'existing');
    assert.equal((await listing(dir)).filter((name) => name.startsWith('.')).length, 0);
  });

  it('removes temporary files that killed writes left in the folder, when old and ours', async () => {
    const { dir, source } = await folderWithSource();
    // A writer killed between writing its temporary file and publishing it.
    const killed = spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', `import('./src/sidecar/io/atomic-write.ts').then(async (m) => { await (m.writeTempFile ?? m.default.writeTempFile)(${JSON.stringify(dir)}, 'cat.clipdrag.png', new Uint8Array(1000)); process.kill(process.pid, 'SIGKILL'); })`],
      { cwd: path.resolve(__dirname, '..', '..', '..') },
    );
    assert.equal(killed.signal, 'SIGKILL', killed.stderr.toString());
    const [left] = (await readdir(dir)).filter((n) => n.endsWith('.tmp'));
    assert.match(left!, /^\.cat\.clipdrag\.png\.[0-9a-f]{12}\.tmp$/);
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);
    await utimes(path.join(dir, left!), hoursAgo(2), hoursAgo(2));
    // Kept: a write in progress (recent), names not of our pattern, and (when we can give it away) another user's file.
    await writeFile(path.join(dir, '.cat.clipdrag.json.0123456789ab.tmp'), '{');
    for (const name of ['.notes.tmp', 'cat.clipdrag.png.0123456789ab.tmp', '.cat.png.0123456789ab.tmp.bak']) {
      await writeFile(path.join(dir, name), 'x');
      await utimes(path.join(dir, name), hoursAgo(2), hoursAgo(2));
    }
    const canChown = process.getuid?.() === 0;
    if (canChown) {
      const foreign = path.join(dir, '.dog.clipdrag.png.fedcba987654.tmp');
      await writeFile(foreign, 'x');
      await chown(foreign, 4321, 4321);
      await utimes(foreign, hoursAgo(2), hoursAgo(2));
    }

    await writeEditResult({ sourcePath: source, image: noiseImage(8, 8), recipe: recipeDraft() });
    assert.deepEqual(await listing(dir), [
      '.cat.clipdrag.json.0123456789ab.tmp',
      '.cat.png.0123456789ab.tmp.bak',
      ...(canChown ? ['.dog.clipdrag.png.fedcba987654.tmp'] : []),
      '.notes.tmp',
      'cat.clipdrag.json',
      'cat.clipdrag.png',
      'cat.clipdrag.png.0123456789ab.tmp',
      'cat.png',
    ]);
  });

  it('reports when every numbered name is taken', async () => {
    const { dir, source } = await folderWithSource();
    for (const name of ['cat.clipdrag.png', 'cat.clipdrag-2.json', 'cat.clipdrag-3.png']) await writeFile(path.join(dir, name), 'x');
    await expectWriteError(
      writeEditResult({ sourcePath: source, image: noiseImage(2, 2), recipe: recipeDraft(), maxIndex: 3 }),
      'EEXIST',
      /every name from cat\.clipdrag\.png to cat\.clipdrag-3\.png is taken\. Move or delete old results/,
    );
    assert.equal((await listing(dir)).length, 4);
  });

  describe('a failure mid-write leaves no file behind and names the cause', () => {
    const cases: [string, Faults, string, RegExp][] = [
      ['disk full while writing the image', { write: { match: /clipdrag\.png/, afterBytes: 100, code: 'ENOSPC' } }, 'ENOSPC', /\(cat\.clipdrag\.png\) in .*: no space is left on the device \(ENOSPC\); free some space and try again\. Nothing was written; the source is unchanged\./],
      ['disk full while writing the recipe', { write: { match: /clipdrag\.json/, afterBytes: 10, code: 'ENOSPC' } }, 'ENOSPC', /\(cat\.clipdrag\.json\).*no space is left/],
      ['quota exceeded', { write: { match: /clipdrag\.png/, afterBytes: 0, code: 'EDQUOT' } }, 'EDQUOT', /disk quota is used up/],
      ['flush fails', { sync: { match: /clipdrag\.json/, code: 'EIO' } }, 'EIO', /input\/output error \(EIO\); check the disk/],
      ['rename fails without hard links', { link: 'ENOTSUP', rename: 'EACCES' }, 'EACCES', /permission denied \(EACCES\)/],
    ];
    for (const [label, faults, code, pattern] of cases) {
      it(label, async () => {
        const { dir, source } = await folderWithSource();
        const before = await snapshot(source);
        const error = await expectWriteError(writeEditResult({ sourcePath: source, image: noiseImage(64, 64), recipe: recipeDraft(), ops: faultyOps(faults) }), code, pattern);
        assert.ok(error.cause, 'keeps the system error as cause');
        assert.deepEqual(await listing(dir), ['cat.png']);
        await assertSourceUnchanged(source, before);
      });
    }
  });
});

describe('writeFileAtomic', () => {
  it('replaces a file whole, and keeps the old content when the write fails', async () => {
    const { dir } = await folderWithSource();
    const file = path.join(dir, 'cat.png.clipdrag-edit.json');
    await writeFileAtomic(file, '{"v":1}\n');
    await writeFileAtomic(file, '{"v":2}\n');
    assert.equal(await readFile(file, 'utf8'), '{"v":2}\n');
    await expectWriteError(writeFileAtomic(file, 'x'.repeat(5000), faultyOps({ write: { match: /clipdrag-edit/, afterBytes: 1000, code: 'ENOSPC' } })), 'ENOSPC', /Could not save .*cat\.png\.clipdrag-edit\.json: no space is left.*The previous version, if any, is unchanged\./);
    assert.equal(await readFile(file, 'utf8'), '{"v":2}\n');
    assert.deepEqual(await listing(dir), ['cat.png', 'cat.png.clipdrag-edit.json']);
  });
});

describe('on a real full disk (a tiny tmpfs)', () => {
  let mountPoint: string | undefined;
  let skipReason: string | undefined;

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clipdrag-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', dir], { stdio: 'pipe' });
      mountPoint = dir;
    } catch (error) {
      skipReason = `cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): ${String((error as Error).message).split('\n')[0]}`;
      await rm(dir, { recursive: true, force: true });
    }
  });
  after(async () => {
    if (!mountPoint) return;
    execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    await rm(mountPoint, { recursive: true, force: true });
  });

  it('an image larger than the free space: ENOSPC, nothing left, source untouched', async (t) => {
    if (!mountPoint) return t.skip(skipReason);
    const dir = path.join(mountPoint, 'big');
    await mkdir(dir);
    const source = path.join(dir, 'cat.png');
    await writeFile(source, await encodePng(noiseImage(8, 8, 5)));
    const before = await snapshot(source);
    await expectWriteError(writeEditResult({ sourcePath: source, image: noiseImage(256, 256), recipe: recipeDraft() }), 'ENOSPC', /no space is left on the device \(ENOSPC\)/);
    assert.deepEqual(await listing(dir), ['cat.png']);
    await assertSourceUnchanged(source, before);
    // The folder itself still works for a result that fits.
    const small = await writeEditResult({ sourcePath: source, image: noiseImage(4, 4), recipe: recipeDraft() });
    assert.equal(small.index, 1);
    await rm(dir, { recursive: true });
  });

  it('room for the image but not the recipe: ENOSPC, the image is not left alone', async (t) => {
    if (!mountPoint) return t.skip(skipReason);
    const dir = path.join(mountPoint, 'tight');
    await mkdir(dir);
    const source = path.join(dir, 'cat.png');
    await writeFile(source, await encodePng(noiseImage(4, 4, 5)));
    const before = await snapshot(source);
    // Fill the file system up to one free page: the small PNG fits into it, the recipe then has no room.
    const { bavail, bsize } = await statfs(mountPoint);
    await writeFile(path.join(mountPoint, 'filler'), Buffer.alloc((bavail - 1) * bsize));
    const image = noiseImage(4, 4);
    assert.ok((await encodePng(image)).length < bsize);
    await expectWriteError(writeEditResult({ sourcePath: source, image, recipe: recipeDraft() }), 'ENOSPC', /\(cat\.clipdrag\.json\).*no space is left/);
    assert.deepEqual(await listing(dir), ['cat.png']);
    await assertSourceUnchanged(source, before);
    await rm(path.join(mountPoint, 'filler'));
    await rm(dir, { recursive: true });
  });
});
