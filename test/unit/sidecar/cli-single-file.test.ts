// `clipdrag edit --model <file.safetensors>` as a user runs it (the real CLI as a child process): a single-file
// checkpoint in the original LDM layout (the tiny fixture, made from tiny-sd15 by diffusers' own conversion script)
// runs an edit, its configs given by --model-config or by a folder next to it, and the recipe records the file and
// its hash. What the tensors cannot tell (the tiny model's attention heads and norm groups are not SD-1.5's) makes
// the plain inferred configs fail with a message that says how to give them; a pickle checkpoint is refused.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Recipe } from '../../../src/shared/recipe';
import { encodePng } from '../../../src/sidecar/io/image';
import { blobImage, FIXTURES, tempDir, TINY_CLIP, TINY_SD, writeTinyTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');
const FIXTURE = path.join(FIXTURES, 'single-file', 'tiny-sd15-ldm.safetensors');

function clipdrag(dir: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src', 'sidecar', 'main.ts'), ...args], {
      cwd: repo,
      env: { ...process.env, CLIPDRAG_CACHE_DIR: path.join(dir, 'cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('clipdrag edit with a single-file checkpoint (CLI)', () => {
  let dir: string;
  let checkpoint: string;
  let clip: string;
  let imagePath: string;

  before(async () => {
    dir = await tempDir('cli-single-file');
    checkpoint = path.join(dir, 'models', 'tiny-finetune.safetensors');
    await fs.mkdir(path.dirname(checkpoint));
    await fs.copyFile(FIXTURE, checkpoint);
    // A single file has no tokenizer: the CLIP folder brings it.
    clip = path.join(dir, 'clip');
    await fs.cp(TINY_CLIP, clip, { recursive: true });
    await writeTinyTokenizer(clip);
    imagePath = path.join(dir, 'images', 'blob.png');
    await fs.mkdir(path.dirname(imagePath));
    await fs.mkdir(path.join(dir, 'out'));
    await fs.writeFile(imagePath, await encodePng(blobImage(64, 64, 20, 32, 8)));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  const run = (...extra: string[]) =>
    clipdrag(dir, 'edit', imagePath, '--points', '20,32,36,32', '--prompt', 'a bright blob', '--model', checkpoint, '--clip', clip, '--device', 'cpu', '--lora-steps', '1', '--drag-steps', '2', '--inference-steps', '10', '--working-width', '64', '--json', ...extra);

  it('runs an edit with --model-config, writing the result and a recipe that records the file and its SHA-256 next to the image', async () => {
    const { code, stdout, stderr } = await run('--model-config', TINY_SD);
    assert.equal(code, 0, stderr);
    const result = JSON.parse(stdout) as { image: string; recipe: string; iterations: number };
    assert.equal(result.image, path.join(path.dirname(imagePath), 'blob.clipdrag.png'));
    assert.equal(path.dirname(result.recipe), path.dirname(imagePath));
    assert.equal(result.iterations, 2);
    await fs.access(result.image);
    const recipe = JSON.parse(await fs.readFile(result.recipe, 'utf8')) as Recipe;
    const sd = recipe.models.find((m) => m.role === 'stable-diffusion');
    assert.ok(sd, 'the recipe names the Stable Diffusion model');
    assert.equal(sd.id, checkpoint);
    assert.equal(recipe.spec.model, checkpoint);
    const bytes = await fs.readFile(checkpoint);
    assert.deepEqual(sd.files, [{ path: 'tiny-finetune.safetensors', size: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') }]);
    assert.ok(recipe.notes?.some((n) => n === `Configs of tiny-finetune.safetensors: unet, vae, text_encoder, scheduler from ${TINY_SD}.`), JSON.stringify(recipe.notes));
  });

  it('without configs, says what the tensors cannot tell and how to give it; a folder named like the checkpoint next to it is used', async () => {
    const inferred = await run('--out', path.join(dir, 'out', 'inferred.png'));
    assert.equal(inferred.code, 1, inferred.stderr);
    assert.match(inferred.stderr, /not divisible by norm_num_groups 32.*SD-1\.5's attention heads and norm groups.*--model-config <folder>.*clipdrag\.modelConfig.*a folder named tiny-finetune next to the checkpoint/);
    await assert.rejects(fs.access(path.join(dir, 'out', 'inferred.png')), 'nothing written');

    // Only the UNet's and VAE's configs (what cannot be inferred for them); the text encoder's heads still are not SD-1.5's.
    const sibling = path.join(dir, 'models', 'tiny-finetune');
    for (const component of ['unet', 'vae', 'text_encoder']) {
      await fs.mkdir(path.join(sibling, component), { recursive: true });
      await fs.copyFile(path.join(TINY_SD, component, 'config.json'), path.join(sibling, component, 'config.json'));
    }
    const out = path.join(dir, 'out', 'sibling.png');
    const found = await run('--out', out);
    assert.equal(found.code, 0, found.stderr);
    const recipe = JSON.parse(await fs.readFile(path.join(dir, 'out', 'sibling.json'), 'utf8')) as Recipe;
    assert.ok(recipe.notes?.includes(`Configs of tiny-finetune.safetensors: unet, vae, text_encoder from ${sibling}, the rest inferred from its tensors.`), JSON.stringify(recipe.notes));
    await fs.access(out);
  });

  it('refuses a config folder that contradicts the tensors, and a pickle checkpoint unopened', async () => {
    const wrong = path.join(dir, 'wrong-config');
    await fs.mkdir(path.join(wrong, 'unet'), { recursive: true });
    const unet = JSON.parse(await fs.readFile(path.join(TINY_SD, 'unet', 'config.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(path.join(wrong, 'unet', 'config.json'), JSON.stringify({ ...unet, block_out_channels: [32, 32, 64, 64] }));
    const contradicted = await run('--model-config', wrong, '--out', path.join(dir, 'out', 'wrong.png'));
    assert.equal(contradicted.code, 1, contradicted.stderr);
    assert.match(contradicted.stderr, /unet\/config\.json: says block_out_channels \[32,32,64,64\], but the tensors of tiny-finetune\.safetensors have \[16,16,32,32\]/);

    const pickle = path.join(dir, 'models', 'sd15.ckpt');
    await fs.writeFile(pickle, 'never unpickled');
    const refused = await clipdrag(dir, 'edit', imagePath, '--points', '1,1,2,2', '--prompt', 'x', '--model', pickle, '--clip', clip, '--device', 'cpu');
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /sd15\.ckpt is a PyTorch pickle checkpoint, which CLIPDrag never loads: unpickling can run any code/);
  });
});
