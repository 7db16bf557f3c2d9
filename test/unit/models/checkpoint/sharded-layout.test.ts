// Sharded checkpoints in model folders: an index plus its shards is found by the same variant rules as a single
// file, and a broken index (bad JSON, a shard that is missing or named outside the folder, keys that do not
// match the shards' headers) is refused naming the index and the problem. Real files: the tiny fixtures split.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAutoencoderKLFolder, loadClipModel, ModelLayoutError, resolveDiffusersLayout, weightSourceFiles } from '../../../../src/sidecar/models/checkpoint/layout';
import { CheckpointWeights } from '../../../../src/sidecar/models/weights';
import { SD_WEIGHT_STEMS, shardInFolder, writeShards } from '../../../support/sharded-checkpoint';
import { TINY_CLIP, TINY_SD } from '../../../support/tiny-pipeline';

async function expectLayoutError(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ModelLayoutError, `expected ModelLayoutError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

/** Reads, edits and writes back a JSON file. */
async function editJson(file: string, change: (json: { weight_map: Record<string, string> }) => void): Promise<void> {
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as { weight_map: Record<string, string> };
  change(json);
  await fs.writeFile(file, JSON.stringify(json));
}

/** Tensor key → [dtype, shape] of a checkpoint, whichever files it lies in. */
async function tensorTable(files: readonly string[]): Promise<Map<string, unknown>> {
  const weights = await CheckpointWeights.open(files);
  return new Map(weights.keys().sort().map((key) => [key, [weights.info(key).dtype, weights.info(key).shape]]));
}

describe('sharded checkpoints in model folders', () => {
  let dir: string;
  let counter = 0;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sharded-layout-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** A copy of the tiny SD folder with its VAE split in three (the other components left as single files). */
  const shardedVae = async (): Promise<{ root: string; index: string; shards: string[] }> => {
    const root = path.join(dir, `sd-${++counter}`);
    await fs.cp(TINY_SD, root, { recursive: true });
    const [index, ...shards] = (await shardInFolder(root, 'vae/diffusion_pytorch_model', 3)).map((f) => path.join(root, f));
    return { root, index: index!, shards };
  };

  it('resolves every component of a sharded SD folder to its index and shards, holding the same tensors', async () => {
    const root = path.join(dir, 'sd-all');
    await fs.cp(TINY_SD, root, { recursive: true });
    const written: Record<string, string[]> = {};
    for (const [i, stem] of SD_WEIGHT_STEMS.entries()) written[stem] = (await shardInFolder(root, stem, i + 2)).map((f) => path.join(root, f));
    const { layout } = await resolveDiffusersLayout(root);
    for (const [stem, component] of [[SD_WEIGHT_STEMS[0], layout.unet], [SD_WEIGHT_STEMS[1], layout.vae], [SD_WEIGHT_STEMS[2], layout.textEncoder]] as const) {
      const [index, ...shards] = written[stem]!;
      assert.equal(component.weightsIndexPath, index);
      assert.deepEqual(component.weightsPaths, shards);
      assert.deepEqual(weightSourceFiles(component), [index, ...shards]);
      assert.equal(component.variant, 'default');
      assert.deepEqual(await tensorTable(component.weightsPaths), await tensorTable([path.join(TINY_SD, `${stem}.safetensors`)]));
    }
    assert.equal(layout.unet.weightsPaths.length, 2);
    assert.equal(layout.textEncoder.weightsPaths.length, 4);
  });

  it('resolves a sharded CLIPModel folder and a stand-alone sharded VAE', async () => {
    const clip = path.join(dir, 'clip');
    await fs.cp(TINY_CLIP, clip, { recursive: true });
    const [index, ...shards] = (await shardInFolder(clip, 'model', 2)).map((f) => path.join(clip, f));
    const { layout } = await loadClipModel(clip);
    assert.deepEqual([layout.weightsIndexPath, layout.weightsPaths], [index, shards]);
    assert.deepEqual(await tensorTable(layout.weightsPaths), await tensorTable([path.join(TINY_CLIP, 'model.safetensors')]));

    const vae = await shardedVae();
    const { files } = await loadAutoencoderKLFolder(path.join(vae.root, 'vae'));
    assert.deepEqual([files.weightsIndexPath, files.weightsPaths], [vae.index, vae.shards]);
  });

  it('prefers a single file over shards of the same variant, and keeps the variant order of single files', async () => {
    const root = path.join(dir, 'sd-both');
    await fs.cp(TINY_SD, root, { recursive: true });
    const vaeDir = path.join(root, 'vae');
    const single = path.join(vaeDir, 'diffusion_pytorch_model.safetensors');
    await writeShards(single, vaeDir, 'diffusion_pytorch_model', 2);
    assert.deepEqual((await resolveDiffusersLayout(root)).layout.vae.weightsPaths, [single]);

    // fp16 as shards, fp32 as one file: each request takes its variant first, whatever the form.
    await writeShards(single, vaeDir, 'diffusion_pytorch_model', 2, 'fp16');
    const fp16Index = path.join(vaeDir, 'diffusion_pytorch_model.safetensors.index.fp16.json');
    const fp16 = (await resolveDiffusersLayout(root, { variant: 'auto-fp16' })).layout.vae;
    assert.deepEqual([fp16.variant, fp16.weightsIndexPath, fp16.weightsPaths.map((f) => path.basename(f))], [
      'fp16',
      fp16Index,
      ['diffusion_pytorch_model.fp16-00001-of-00002.safetensors', 'diffusion_pytorch_model.fp16-00002-of-00002.safetensors'],
    ]);
    assert.equal((await resolveDiffusersLayout(root, { variant: 'auto' })).layout.vae.weightsPaths[0], single);

    // Without the single fp32 file, `auto` takes the fp32 shards before the fp16 ones.
    await fs.rm(single);
    const auto = (await resolveDiffusersLayout(root, { variant: 'auto' })).layout.vae;
    assert.deepEqual([auto.variant, path.basename(auto.weightsIndexPath!)], ['default', 'diffusion_pytorch_model.safetensors.index.json']);
    // With only fp16 shards left, a `default` request names what exists.
    for (const name of await fs.readdir(vaeDir)) if (/^diffusion_pytorch_model(-|\.safetensors\.index\.json)/.test(name)) await fs.rm(path.join(vaeDir, name));
    await expectLayoutError(
      resolveDiffusersLayout(root, { variant: 'default' }),
      /vae\/diffusion_pytorch_model\.safetensors is missing; vae\/diffusion_pytorch_model\.safetensors\.index\.fp16\.json exists \(use the fp16 variant\)/,
    );
  });

  it('refuses an index that is not JSON or has no weight_map', async () => {
    const vae = await shardedVae();
    await fs.writeFile(vae.index, '{"weight_map": {');
    await expectLayoutError(resolveDiffusersLayout(vae.root), /vae\/diffusion_pytorch_model\.safetensors\.index\.json is not valid JSON/);
    await fs.writeFile(vae.index, JSON.stringify({ metadata: {} }));
    await expectLayoutError(resolveDiffusersLayout(vae.root), /vae\/diffusion_pytorch_model\.safetensors\.index\.json has no "weight_map" object/);
    await fs.writeFile(vae.index, JSON.stringify({ weight_map: { 'decoder.conv_in.weight': 3 } }));
    await expectLayoutError(resolveDiffusersLayout(vae.root), /maps tensor decoder\.conv_in\.weight to 3, not a shard file name/);
  });

  it('refuses shard names that lead out of the index folder', async () => {
    const vae = await shardedVae();
    const original = await fs.readFile(vae.index, 'utf8');
    const outside = path.join(dir, 'outside.safetensors');
    await fs.copyFile(vae.shards[0]!, outside);
    for (const escape of ['../unet/diffusion_pytorch_model.safetensors', outside, 'sub/diffusion_pytorch_model-00001-of-00003.safetensors', '..\\outside.safetensors', '..']) {
      await fs.writeFile(vae.index, original);
      await editJson(vae.index, (json) => {
        const key = Object.keys(json.weight_map)[0]!;
        json.weight_map[key] = escape;
      });
      await expectLayoutError(
        resolveDiffusersLayout(vae.root),
        new RegExp(`vae/diffusion_pytorch_model\\.safetensors\\.index\\.json maps tensor .* to ${JSON.stringify(escape).replace(/[.\\\\]/g, '\\$&')}: shards must be plain file names in the index's folder`),
      );
    }
  });

  it('refuses an index whose shards are missing, naming them', async () => {
    const vae = await shardedVae();
    await fs.rm(vae.shards[1]!);
    await fs.rm(vae.shards[2]!);
    await expectLayoutError(
      resolveDiffusersLayout(vae.root),
      /vae\/diffusion_pytorch_model\.safetensors\.index\.json names 2 shard\(s\) that are missing: diffusion_pytorch_model-00002-of-00003\.safetensors, diffusion_pytorch_model-00003-of-00003\.safetensors/,
    );
  });

  it('refuses an index whose keys do not match the keys the shard headers hold', async () => {
    const vae = await shardedVae();
    const original = await fs.readFile(vae.index, 'utf8');
    const first = path.basename(vae.shards[0]!);
    const second = path.basename(vae.shards[1]!);

    // A key the index lists that no shard holds.
    await editJson(vae.index, (json) => void (json.weight_map['decoder.extra.weight'] = first));
    await expectLayoutError(resolveDiffusersLayout(vae.root), /index\.json does not match its shards' contents: 1 tensor\(s\) it lists are in no shard \(decoder\.extra\.weight\)/);

    // A key a shard holds that the index does not list.
    await fs.writeFile(vae.index, original);
    let dropped = '';
    await editJson(vae.index, (json) => {
      dropped = Object.keys(json.weight_map).find((key) => json.weight_map[key] === second)!;
      delete json.weight_map[dropped];
    });
    await expectLayoutError(resolveDiffusersLayout(vae.root), new RegExp(`1 tensor\\(s\\) in the shards are not listed \\(${dropped.replace(/\./g, '\\.')}\\)`));

    // A key the index puts in the wrong shard.
    await fs.writeFile(vae.index, original);
    let moved = '';
    await editJson(vae.index, (json) => {
      moved = Object.keys(json.weight_map).find((key) => json.weight_map[key] === second)!;
      json.weight_map[moved] = first;
    });
    await expectLayoutError(resolveDiffusersLayout(vae.root), new RegExp(`1 tensor\\(s\\) are in another shard than it says \\(${moved.replace(/\./g, '\\.')} is in ${second.replace(/\./g, '\\.')}, not ${first.replace(/\./g, '\\.')}\\)`));

    // Two shards holding the same key.
    await fs.writeFile(vae.index, original);
    await fs.copyFile(vae.shards[0]!, vae.shards[1]!);
    await expectLayoutError(resolveDiffusersLayout(vae.root), new RegExp(`lists shards ${first.replace(/\./g, '\\.')} and ${second.replace(/\./g, '\\.')} that both hold tensor `));
  });
});
