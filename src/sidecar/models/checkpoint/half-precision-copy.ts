/**
 * A float16 copy of an fp32 safetensors checkpoint, kept in a cache folder.
 *
 * Graphs reference weights by file and byte offset, so a model that computes in float16 needs its weights
 * stored as F16 somewhere: binding F32 tensors with a Cast would make onnxruntime hold the cast results as
 * new, private initializers (and its saved optimised model would carry a full copy of them). The copy is
 * written once per source file, atomically, and named after the source's identity (real path, size,
 * modification time): a re-downloaded or edited checkpoint gets a new copy and the stale one is deleted.
 * F32 tensors are rounded to nearest even (values beyond ±65504 become ±inf, as torch's `.half()`); other
 * dtypes are copied unchanged. A file without F32 tensors is used as it is.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { float32ToFloat16Bits } from '../../engine/float16';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from './safetensors';

/** Bumped when the conversion changes, so older copies are not used. */
const FORMAT = 1;

const hash = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The copy's file name: `<source path hash>-<source version hash>.safetensors` (16 hex digits each). */
async function copyName(source: string): Promise<{ prefix: string; name: string }> {
  const real = await fs.realpath(source);
  const stats = await fs.stat(real);
  const prefix = hash(real).slice(0, 16);
  const version = hash(JSON.stringify({ FORMAT, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino })).slice(0, 16);
  return { prefix, name: `${prefix}-${version}.safetensors` };
}

async function isReadable(file: string): Promise<boolean> {
  try {
    await (await SafetensorsFile.open(file)).close();
    return true;
  } catch {
    return false;
  }
}

/** Deletes older copies of the same source (same path hash, other version). */
async function removeStaleCopies(dir: string, prefix: string, keep: string): Promise<void> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.filter((e) => e.startsWith(`${prefix}-`) && e !== keep).map((e) => fs.rm(path.join(dir, e), { force: true })));
}

/**
 * The path of a checkpoint whose F32 tensors are F16: `source` itself when it has none, else a copy in
 * `cacheDir` (written on first use). `onConvert` is called before a copy is written (it reads and writes the
 * whole file, seconds for a UNet).
 */
export async function halfPrecisionCopy(source: string, cacheDir: string, onConvert?: (source: string) => void): Promise<string> {
  const opened = await SafetensorsFile.open(source);
  try {
    const tensors = opened.tensors();
    if (!tensors.some((t) => t.dtype === 'F32')) return source;
    const { prefix, name } = await copyName(source);
    const target = path.join(cacheDir, name);
    if (await isReadable(target)) return target;
    onConvert?.(source);
    await fs.mkdir(cacheDir, { recursive: true });
    const toWrite: TensorToWrite[] = tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype === 'F32' ? 'F16' : t.dtype,
      shape: t.shape,
      data: async () => (t.dtype === 'F32' ? float32ToFloat16Bits(await opened.readFloat32(t.name)) : await opened.readBytes(t.name)),
    }));
    await writeSafetensors(target, toWrite, { ...opened.metadata, format: opened.metadata.format ?? 'pt' });
    await removeStaleCopies(cacheDir, prefix, name);
    return target;
  } finally {
    await opened.close();
  }
}
