// Hub repos built from the tiny fixture models, shaped like the real ones: the SD-1.5 repo also carries pickle
// weights, EMA/non-EMA checkpoints, flax/onnx exports, a safety checker and (optionally) fp16 variants and a
// tokenizer, so file selection is tested against what the hub really serves.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { float32ToFloat16Bits } from '../../src/sidecar/engine/float16';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/sidecar/models/checkpoint/safetensors';
import { gitBlobId, isLfsFile, readFolderFiles, sha256Of } from './hub-server';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const TINY_SD_FOLDER = path.join(REPO_ROOT, 'test', 'fixtures', 'tiny-sd15');
export const TINY_CLIP_FOLDER = path.join(REPO_ROOT, 'test', 'fixtures', 'tiny-clip-vit-b16');

/** The files the model store must pick from a full SD repo (fp32, with tokenizer). */
export const SD_FP32_SELECTION = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors',
  'vae/config.json',
  'vae/diffusion_pytorch_model.safetensors',
  'text_encoder/config.json',
  'text_encoder/model.safetensors',
  'tokenizer/vocab.json',
  'tokenizer/merges.txt',
  'tokenizer/tokenizer_config.json',
  'tokenizer/special_tokens_map.json',
];

export interface SdRepoOptions {
  /** Add `*.fp16.safetensors` variants (real float16 conversions of the fixture weights). */
  fp16?: boolean;
  /** Add a tokenizer folder and list it in model_index.json. */
  tokenizer?: boolean;
  /** Add the files the store must never download (pickles, flax, onnx, safety checker, full checkpoints). */
  decoys?: boolean;
}

export async function tinySdRepo(options: SdRepoOptions = {}): Promise<Map<string, Buffer>> {
  const files = await readFolderFiles(TINY_SD_FOLDER);
  if (options.tokenizer) {
    const index = JSON.parse(files.get('model_index.json')!.toString('utf8')) as Record<string, unknown>;
    index.tokenizer = ['transformers', 'CLIPTokenizer'];
    files.set('model_index.json', Buffer.from(`${JSON.stringify(index, null, 2)}\n`));
    files.set('tokenizer/vocab.json', Buffer.from(JSON.stringify({ '<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2 })));
    files.set('tokenizer/merges.txt', Buffer.from('#version: 0.2\na </w>\n'));
    files.set('tokenizer/tokenizer_config.json', Buffer.from(JSON.stringify({ model_max_length: 77 })));
    files.set('tokenizer/special_tokens_map.json', Buffer.from(JSON.stringify({ bos_token: '<|startoftext|>' })));
  }
  if (options.fp16) {
    for (const weights of ['unet/diffusion_pytorch_model', 'vae/diffusion_pytorch_model', 'text_encoder/model']) {
      files.set(`${weights}.fp16.safetensors`, await toFloat16(path.join(TINY_SD_FOLDER, `${weights}.safetensors`)));
    }
  }
  if (options.decoys) {
    for (const decoy of [
      '.gitattributes',
      'README.md',
      'v1-5-pruned.ckpt',
      'v1-5-pruned-emaonly.safetensors',
      'unet/diffusion_pytorch_model.bin',
      'unet/diffusion_pytorch_model.non_ema.safetensors',
      'unet/diffusion_pytorch_model.fp16.bin',
      'vae/diffusion_pytorch_model.bin',
      'vae/diffusion_flax_model.msgpack',
      'text_encoder/pytorch_model.bin',
      'text_encoder/flax_model.msgpack',
      'safety_checker/config.json',
      'safety_checker/model.safetensors',
      'feature_extractor/preprocessor_config.json',
      'onnx/unet/model.onnx',
    ]) {
      files.set(decoy, pseudoRandomBytes(decoy, 20_000));
    }
  }
  return files;
}

export async function tinyClipRepo(options: { decoys?: boolean; fp16?: boolean } = {}): Promise<Map<string, Buffer>> {
  const files = await readFolderFiles(TINY_CLIP_FOLDER);
  if (options.fp16) files.set('model.fp16.safetensors', await toFloat16(path.join(TINY_CLIP_FOLDER, 'model.safetensors')));
  if (options.decoys) {
    for (const decoy of ['pytorch_model.bin', 'tf_model.h5', 'flax_model.msgpack', 'README.md', 'preprocessor_config.json']) {
      files.set(decoy, pseudoRandomBytes(decoy, 20_000));
    }
  }
  return files;
}

/** Writes a repo's files (as `tinySdRepo` / `tinyClipRepo` build them) into a plain model folder. */
export async function writeModelFolder(folder: string, files: ReadonlyMap<string, Buffer>): Promise<string> {
  for (const [file, content] of files) {
    const target = path.join(folder, ...file.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  return folder;
}

/** A real float16 copy of a float32 safetensors file (other dtypes copied as they are). */
async function toFloat16(source: string): Promise<Buffer> {
  const file = await SafetensorsFile.open(source);
  const folder = await mkdtemp(path.join(tmpdir(), 'fp16-'));
  try {
    const tensors: TensorToWrite[] = [];
    for (const info of file.tensors()) {
      tensors.push(
        info.dtype === 'F32'
          ? { name: info.name, dtype: 'F16', shape: info.shape, data: float32ToFloat16Bits(await file.readFloat32(info.name)) }
          : { name: info.name, dtype: info.dtype, shape: info.shape, data: await file.readBytes(info.name) },
      );
    }
    const target = path.join(folder, 'weights.safetensors');
    await writeSafetensors(target, tensors, { format: 'pt' });
    return await readFile(target);
  } finally {
    await file.close();
    await rm(folder, { recursive: true, force: true });
  }
}

function pseudoRandomBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let block = createHash('sha256').update(seed).digest();
  for (let offset = 0; offset < length; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/**
 * Writes `files` into `cacheDir` exactly as Python's huggingface_hub lays out a download of `repoId` at `commit`:
 * blobs named by sha256 (LFS files) or git blob id, relative symlinks in snapshots/<commit>, refs/<name> files.
 */
export async function writePythonStyleCache(
  cacheDir: string,
  repoId: string,
  commit: string,
  files: ReadonlyMap<string, Buffer>,
  refs: readonly string[] = ['main'],
): Promise<string> {
  const repoFolder = path.join(cacheDir, `models--${repoId.replace('/', '--')}`);
  for (const [file, content] of files) {
    const etag = isLfsFile(file, content.length) ? sha256Of(content) : gitBlobId(content);
    const blob = path.join(repoFolder, 'blobs', etag);
    await mkdir(path.dirname(blob), { recursive: true });
    await writeFile(blob, content);
    const pointer = path.join(repoFolder, 'snapshots', commit, ...file.split('/'));
    await mkdir(path.dirname(pointer), { recursive: true });
    await symlink(path.relative(path.dirname(pointer), blob), pointer);
  }
  for (const ref of refs) {
    await mkdir(path.join(repoFolder, 'refs'), { recursive: true });
    await writeFile(path.join(repoFolder, 'refs', ref), commit);
  }
  return repoFolder;
}
