// `clipdrag edit` as a user runs it: the real CLI (the sidecar entry through tsx) as a child process.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeMaskPng, encodePng } from '../../../src/sidecar/io/image';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');

describe('clipdrag edit (CLI)', () => {
  let dir: string;
  let model: string;
  let imagePath: string;

  before(async () => {
    dir = await tempDir('cli-edit');
    model = await tinySdWithTokenizer(dir);
    imagePath = path.join(dir, 'images', 'blob.png');
    await fs.mkdir(path.dirname(imagePath));
    await fs.writeFile(imagePath, await encodePng(blobImage(64, 64, 20, 32, 8)));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  function clipdrag(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return clipdragSignalled(undefined, ...args);
  }

  /** Runs the CLI; `signalOn` may answer a stderr line with a signal to send to it. */
  function clipdragSignalled(signalOn: ((line: string) => NodeJS.Signals | undefined) | undefined, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src', 'sidecar', 'main.ts'), ...args], {
        cwd: repo,
        env: { ...process.env, CLIPDRAG_CACHE_DIR: path.join(dir, 'cache') },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      let signalled = false;
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const signal = signalled ? undefined : stderr.split('\n').map((line) => signalOn?.(line)).find((s) => s !== undefined);
        if (signal) {
          signalled = true;
          child.kill(signal);
        }
      });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  const common = () => ['--model', model, '--clip', TINY_CLIP, '--device', 'cpu', '--lora-steps', '1', '--working-width', '64'];

  it('edits from flags: progress on stderr, one JSON object on stdout, result next to the image', async () => {
    const { code, stdout, stderr } = await clipdrag('edit', imagePath, '--points', '20,32,40,32', '--prompt', 'a bright blob', '--edit-prompt', 'a blob on the right', '--max-iters', '3', '--inference-steps', '10', ...common(), '--json');
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as { image: string; recipe: string; iterations: number; finalHandles: number[][]; timings: { stage: string }[]; executionProvider: string };
    assert.equal(result.image, path.join(path.dirname(imagePath), 'blob.clipdrag.png'));
    assert.equal(result.iterations, 3);
    assert.equal(result.executionProvider, 'cpu');
    assert.equal(result.finalHandles.length, 1);
    assert.ok(result.timings.some((t) => t.stage === 'drag'));
    await fs.access(result.recipe);
    assert.match(stderr, /^\[lora 1\/1\] lora \d/m);
    assert.match(stderr, /^\[drag 3\/3\] motion [\d.e+-]+, clip [\d.]+ handles \(\d/m);
    const recipe = JSON.parse(await fs.readFile(result.recipe, 'utf8')) as { spec: { editPrompt: string; parameters: { dragSteps: number; inferenceSteps: number } } };
    assert.equal(recipe.spec.editPrompt, 'a blob on the right');
    assert.equal(recipe.spec.parameters.dragSteps, 3);
    assert.equal(recipe.spec.parameters.inferenceSteps, 10);
  });

  it('edits from a spec file with a mask, flags overriding it, into --out', async () => {
    const specPath = path.join(dir, 'images', 'edit.json');
    await fs.writeFile(specPath, JSON.stringify({ version: 1, mode: 'clipdrag', prompt: 'a bright blob', points: [{ handle: [20, 32], target: [30, 32] }], parameters: { dragSteps: 50 } }));
    const maskPath = path.join(dir, 'mask.png');
    const mask = new Uint8Array(64 * 64).fill(1, 0, 64 * 40);
    await fs.writeFile(maskPath, await encodeMaskPng({ width: 64, height: 64, data: mask }));
    const out = path.join(dir, 'out', 'dragged.png');
    await fs.mkdir(path.dirname(out));
    const { code, stdout, stderr } = await clipdrag('edit', imagePath, '--spec', specPath, '--mode', 'drag', '--max-iters', '2', '--mask', maskPath, '--out', out, ...common());
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trim().split('\n'), [out, path.join(path.dirname(out), 'dragged.json')]);
    const recipe = JSON.parse(await fs.readFile(path.join(path.dirname(out), 'dragged.json'), 'utf8')) as { spec: { mode: string; mask: { rle: number[] } }; drag: { iterations: number } };
    assert.equal(recipe.spec.mode, 'drag');
    assert.deepEqual(recipe.spec.mask.rle, [0, 64 * 40, 64 * 24]);
    assert.equal(recipe.drag.iterations, 2);
    assert.match(stderr, /\[drag 2\/2\] motion [\d.e+-]+, mask /);
  });

  it('edits in text mode without points and in freedrag mode with points; drag mode records 80 iterations when none are given', async () => {
    const text = await clipdrag('edit', imagePath, '--mode', 'text', '--prompt', 'a bright blob', '--edit-prompt', 'a photo of a cat', '--max-iters', '2', ...common(), '--json');
    assert.equal(text.code, 0, text.stderr);
    const textResult = JSON.parse(text.stdout) as { image: string; recipe: string; iterations: number; finalHandles: unknown[] };
    assert.equal(textResult.iterations, 2);
    assert.deepEqual(textResult.finalHandles, []);
    assert.match(text.stderr, /^\[drag 2\/2\] clip [\d.]+/m);
    const textRecipe = JSON.parse(await fs.readFile(textResult.recipe, 'utf8')) as { spec: { mode: string; points: unknown[] } };
    assert.deepEqual([textRecipe.spec.mode, textRecipe.spec.points], ['text', []]);

    const free = await clipdrag('edit', imagePath, '--mode', 'freedrag', '--points', '20,32,40,32', '--prompt', 'a bright blob', '--max-iters', '3', ...common(), '--json');
    assert.equal(free.code, 0, free.stderr);
    const freeRecipe = JSON.parse(await fs.readFile((JSON.parse(free.stdout) as { recipe: string }).recipe, 'utf8')) as { spec: { mode: string; parameters: { motionRadius: number } } };
    assert.deepEqual([freeRecipe.spec.mode, freeRecipe.spec.parameters.motionRadius], ['freedrag', 4]);

    const drag = await clipdrag('edit', imagePath, '--mode', 'drag', '--points', '20,32,40,32', '--prompt', '', ...common(), '--json');
    assert.equal(drag.code, 0, drag.stderr);
    const dragRecipe = JSON.parse(await fs.readFile((JSON.parse(drag.stdout) as { recipe: string }).recipe, 'utf8')) as { spec: { parameters: { dragSteps: number } } };
    assert.equal(dragRecipe.spec.parameters.dragSteps, 80);

    const noEditPrompt = await clipdrag('edit', imagePath, '--mode', 'text', '--prompt', 'a bright blob', '--edit-prompt', '  ', ...common());
    assert.equal(noEditPrompt.code, 1);
    assert.match(noEditPrompt.stderr, /\$\.editPrompt: is empty; text mode needs an edit prompt/);
    const badMode = await clipdrag('edit', imagePath, '--mode', 'sketch', '--points', '1,1,2,2', '--prompt', 'x');
    assert.equal(badMode.code, 2);
    assert.match(badMode.stderr, /--mode must be one of clipdrag, drag, freedrag, text/);
  });

  it('never replaces a file beside --out that it did not write: the recipe takes a free name, and says so', async () => {
    const folder = path.join(dir, 'out-taken');
    await fs.mkdir(folder);
    const out = path.join(folder, 'x.png');
    const notes = path.join(folder, 'x.json');
    await fs.writeFile(notes, '{"mine": "not a recipe"}\n');
    const first = await clipdrag('edit', imagePath, '--points', '20,32,30,32', '--prompt', 'a bright blob', '--max-iters', '1', '--out', out, ...common());
    assert.equal(first.code, 0, first.stderr);
    const recipePath = path.join(folder, 'x.recipe.json');
    assert.deepEqual(first.stdout.trim().split('\n'), [out, recipePath]);
    assert.match(first.stderr, /x\.json exists and is not a recipe of x\.png; it was left unchanged, and the recipe is .*x\.recipe\.json/);
    assert.equal(await fs.readFile(notes, 'utf8'), '{"mine": "not a recipe"}\n');
    const recipe = JSON.parse(await fs.readFile(recipePath, 'utf8')) as { result: { file: string } };
    assert.equal(recipe.result.file, 'x.png');
    // The same output again: the image the user named and its own recipe are replaced, nothing else appears.
    const second = await clipdrag('edit', imagePath, '--points', '20,32,30,32', '--prompt', 'a bright blob', '--max-iters', '1', '--out', out, ...common());
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.stdout.trim().split('\n'), [out, recipePath]);
    assert.deepEqual((await fs.readdir(folder)).sort(), ['x.json', 'x.png', 'x.recipe.json']);
  });

  it('cancels on SIGTERM like on Ctrl-C: says so, writes nothing, exits 143', async () => {
    const folder = path.join(dir, 'terminated');
    await fs.mkdir(folder);
    const image = path.join(folder, 'blob.png');
    await fs.copyFile(imagePath, image);
    const run = await clipdragSignalled((line) => (line.startsWith('[drag ') ? 'SIGTERM' : undefined), 'edit', image, '--points', '20,32,40,32', '--prompt', 'a bright blob', '--max-iters', '200', ...common());
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /^clipdrag: SIGTERM: cancelling, nothing will be written/m);
    assert.match(run.stderr, /^clipdrag: The edit was cancelled during .*; nothing was written\.$/m);
    assert.equal(run.stdout, '');
    assert.deepEqual(await fs.readdir(folder), ['blob.png']);
  });

  it('rejects bad usage with exit code 2 and bad input with exit code 1, naming the problem', async () => {
    const usage = await clipdrag('edit', imagePath, '--points', '20,32,40', '--prompt', 'x');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--points pair 1 \("20,32,40"\) is not four numbers/);
    const missing = await clipdrag('edit', imagePath, '--points', '20,32,40,32');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--points needs --prompt/);
    const corrupt = path.join(dir, 'broken.png');
    await fs.writeFile(corrupt, 'definitely not an image');
    const failed = await clipdrag('edit', corrupt, '--points', '1,1,2,2', '--prompt', 'x', ...common());
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /broken\.png/);
    assert.equal(failed.stdout, '');
    // A pickle checkpoint is refused before anything reads it, saying why.
    const pickle = path.join(dir, 'sd15.ckpt');
    await fs.writeFile(pickle, 'never unpickled');
    const refused = await clipdrag('edit', imagePath, '--points', '1,1,2,2', '--prompt', 'x', ...common(), '--model', pickle);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /sd15\.ckpt is a PyTorch pickle checkpoint, which CLIPDrag never loads: unpickling can run any code/);
  });
});
