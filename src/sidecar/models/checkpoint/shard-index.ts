/**
 * Sharded safetensors checkpoints: `<stem>.safetensors.index.json` (fp16: `<stem>.safetensors.index.fp16.json`)
 * maps every tensor key to one of its shard files, `<stem>-00001-of-0000N.safetensors` and so on, next to it.
 *
 * Reading an index checks everything a load would otherwise trip over later and less clearly: the index is
 * JSON of the expected shape, every shard it names is a plain file name in the index's folder (a name that
 * leads elsewhere is refused: the index is data from the model's author), every shard exists, and the keys
 * each shard's header holds are exactly the keys the index assigns to it (only headers are read).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ModelLayoutError } from './layout-error';
import { SafetensorsFile } from './safetensors';

export interface ShardedWeights {
  readonly indexPath: string;
  /** Absolute shard paths, ordered by name (the order their numbers give). */
  readonly shards: readonly string[];
}

/** The index file name of a sharded `<stem>` checkpoint, full precision or the fp16 variant. */
export function shardIndexName(stem: string, variant: 'default' | 'fp16'): string {
  return `${stem}.safetensors.index${variant === 'fp16' ? '.fp16' : ''}.json`;
}

/** How many keys of a list an error message shows. */
const SHOWN = 5;

function listed(keys: readonly string[]): string {
  return keys.slice(0, SHOWN).join(', ') + (keys.length > SHOWN ? ` and ${keys.length - SHOWN} more` : '');
}

function relative(root: string, file: string): string {
  return path.relative(root, file) || path.basename(file);
}

/** A shard name the index may use: a plain file name, so that it can only name a file beside the index. */
function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\]/.test(name) && !path.isAbsolute(name) && !name.includes('\0');
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

/** Parses the index JSON into key → shard name, refusing anything but the documented shape. */
function parseWeightMap(text: string, fail: (problem: string) => never): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (err) {
    fail(`is not valid JSON: ${(err as Error).message}`);
  }
  const weightMap = typeof json === 'object' && json !== null ? (json as { weight_map?: unknown }).weight_map : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) fail('has no "weight_map" object (expected { "weight_map": { "<tensor key>": "<shard file>" } })');
  const entries = Object.entries(weightMap as Record<string, unknown>);
  if (entries.length === 0) fail('lists no tensors in its "weight_map"');
  const map = new Map<string, string>();
  for (const [key, shard] of entries) {
    if (typeof shard !== 'string') fail(`maps tensor ${key} to ${JSON.stringify(shard)}, not a shard file name`);
    if (!isPlainFileName(shard)) fail(`maps tensor ${key} to ${JSON.stringify(shard)}: shards must be plain file names in the index's folder (no folders, "..", or absolute paths)`);
    map.set(key, shard);
  }
  return map;
}

/**
 * Reads and checks the index at `indexPath` and the headers of its shards; `root` is the model folder errors
 * are reported against. Throws ModelLayoutError naming the index and what is wrong.
 */
export async function readShardIndex(indexPath: string, root: string): Promise<ShardedWeights> {
  const label = relative(root, indexPath);
  const fail = (problem: string): never => {
    throw new ModelLayoutError(root, `${label} ${problem}`);
  };
  let text: string;
  try {
    text = await fs.readFile(indexPath, 'utf8');
  } catch (err) {
    return fail(`cannot be read: ${(err as Error).message}`);
  }
  const weightMap = parseWeightMap(text, fail);

  const dir = path.dirname(indexPath);
  const names = [...new Set(weightMap.values())].sort();
  const missing: string[] = [];
  for (const name of names) if (!(await isFile(path.join(dir, name)))) missing.push(name);
  if (missing.length > 0) fail(`names ${missing.length} shard(s) that are missing: ${listed(missing)} (download or copy every shard the index lists)`);

  await checkShardKeys(dir, names, weightMap, fail);
  return { indexPath, shards: names.map((name) => path.join(dir, name)) };
}

/** Compares the index's key → shard map with the keys the shards' headers hold, naming every difference. */
async function checkShardKeys(dir: string, names: readonly string[], weightMap: ReadonlyMap<string, string>, fail: (problem: string) => never): Promise<void> {
  const heldIn = new Map<string, string>();
  for (const name of names) {
    let keys: string[];
    try {
      const opened = await SafetensorsFile.open(path.join(dir, name));
      keys = opened.names();
      await opened.close();
    } catch (err) {
      return fail(`names shard ${name}, which cannot be read: ${(err as Error).message}`);
    }
    for (const key of keys) {
      const earlier = heldIn.get(key);
      if (earlier !== undefined) fail(`lists shards ${earlier} and ${name} that both hold tensor ${key}`);
      heldIn.set(key, name);
    }
  }
  const absent = [...weightMap.keys()].filter((key) => !heldIn.has(key));
  const misplaced = [...weightMap].filter(([key, shard]) => heldIn.has(key) && heldIn.get(key) !== shard).map(([key, shard]) => `${key} is in ${heldIn.get(key)}, not ${shard}`);
  const unlisted = [...heldIn.keys()].filter((key) => !weightMap.has(key));
  if (absent.length === 0 && misplaced.length === 0 && unlisted.length === 0) return;
  const problems: string[] = [];
  if (absent.length > 0) problems.push(`${absent.length} tensor(s) it lists are in no shard (${listed(absent)})`);
  if (misplaced.length > 0) problems.push(`${misplaced.length} tensor(s) are in another shard than it says (${listed(misplaced)})`);
  if (unlisted.length > 0) problems.push(`${unlisted.length} tensor(s) in the shards are not listed (${listed(unlisted)})`);
  fail(`does not match its shards' contents: ${problems.join('; ')} (are the index and the shards from different versions of the model?)`);
}
