/**
 * Splits safetensors checkpoints into shards plus an index, laid out as the hub's sharded checkpoints are
 * (`<stem>-00001-of-00003.safetensors`, `<stem>.safetensors.index.json`; fp16: `<stem>.fp16-0000k-of-0000N`
 * and `<stem>.safetensors.index.fp16.json`), using our own safetensors reader and writer.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../../src/sidecar/models/checkpoint/safetensors';
import { shardIndexName } from '../../src/sidecar/models/checkpoint/shard-index';

export type Variant = 'default' | 'fp16';

/** The weight stems (folder + base name, `/`-separated) of the tiny Stable Diffusion folder. */
export const SD_WEIGHT_STEMS = ['unet/diffusion_pytorch_model', 'vae/diffusion_pytorch_model', 'text_encoder/model'] as const;
export const CLIP_WEIGHT_STEM = 'model';

/** The shard file names of a `<stem>` checkpoint split `count` ways (`stem` may carry a folder). */
export function shardNames(stem: string, variant: Variant, count: number): string[] {
  const width = 5;
  const of = String(count).padStart(width, '0');
  return Array.from({ length: count }, (_, i) => `${stem}${variant === 'fp16' ? '.fp16' : ''}-${String(i + 1).padStart(width, '0')}-of-${of}.safetensors`);
}

/** The index path of a sharded `<stem>` (`stem` may carry a folder). */
export function indexName(stem: string, variant: Variant): string {
  const folder = path.posix.dirname(stem);
  const name = shardIndexName(path.posix.basename(stem), variant);
  return folder === '.' ? name : `${folder}/${name}`;
}

/**
 * Writes `source` into `dir` as `count` shards of consecutive tensors (file order) and their index; returns the
 * names written. The source's metadata goes into every shard, as the reference writer does.
 */
export async function writeShards(source: string, dir: string, stem: string, count: number, variant: Variant = 'default'): Promise<string[]> {
  const file = await SafetensorsFile.open(source);
  try {
    const tensors = file.tensors();
    if (tensors.length < count) throw new Error(`${source} has ${tensors.length} tensors, too few for ${count} shards`);
    const names = shardNames(stem, variant, count);
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (let shard = 0; shard < count; shard++) {
      const part = tensors.slice(Math.floor((shard * tensors.length) / count), Math.floor(((shard + 1) * tensors.length) / count));
      const written = [];
      for (const t of part) {
        written.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await file.readBytes(t.name) });
        weightMap[t.name] = names[shard]!;
        totalSize += t.byteLength;
      }
      await writeSafetensors(path.join(dir, names[shard]!), written, file.metadata);
    }
    const index = indexName(stem, variant);
    await writeFile(path.join(dir, index), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
    return [index, ...names];
  } finally {
    await file.close();
  }
}

/**
 * Replaces the single weight file `<stem>[.fp16].safetensors` of a folder by `count` shards and an index. Returns
 * the folder-relative paths of the index and the shards.
 */
export async function shardInFolder(folder: string, stem: string, count: number, variant: Variant = 'default'): Promise<string[]> {
  const single = path.join(folder, ...`${stem}${variant === 'fp16' ? '.fp16' : ''}.safetensors`.split('/'));
  const dir = path.join(folder, ...path.posix.dirname(stem).split('/'));
  const written = await writeShards(single, dir, path.posix.basename(stem), count, variant);
  await rm(single);
  const prefix = path.posix.dirname(stem) === '.' ? '' : `${path.posix.dirname(stem)}/`;
  return written.map((name) => prefix + name);
}

/**
 * The same repo (path → bytes, as `tinySdRepo` builds it) with the single weight file of each stem replaced by
 * `count` shards and an index.
 */
export async function shardRepoFiles(files: ReadonlyMap<string, Buffer>, stems: readonly string[], count: number, variant: Variant = 'default'): Promise<Map<string, Buffer>> {
  const out = new Map(files);
  const dir = await mkdtemp(path.join(tmpdir(), 'shards-'));
  try {
    for (const stem of stems) {
      const single = `${stem}${variant === 'fp16' ? '.fp16' : ''}.safetensors`;
      const bytes = files.get(single);
      if (!bytes) throw new Error(`the repo has no ${single} to shard`);
      const work = await mkdtemp(path.join(dir, 'stem-'));
      const source = path.join(work, 'source.safetensors');
      await writeFile(source, bytes);
      const base = path.posix.basename(stem);
      await writeShards(source, work, base, count, variant);
      out.delete(single);
      const prefix = path.posix.dirname(stem) === '.' ? '' : `${path.posix.dirname(stem)}/`;
      for (const name of await readdir(work)) if (name !== 'source.safetensors') out.set(prefix + name, await readFile(path.join(work, name)));
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
