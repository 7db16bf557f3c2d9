/**
 * PyTorch checkpoints (`.pth`), published for some models only in that form (LPIPS's linear layers, torchvision's
 * AlexNet), become safetensors once: read without executing anything (`formats/torch-checkpoint.ts`), written
 * atomically, so the engine binds them in place like every other checkpoint.
 */
import * as fs from 'node:fs/promises';
import { readTorchCheckpoint } from '../../formats/torch-checkpoint';
import { writeSafetensors, type TensorToWrite } from './safetensors';

export interface TorchConversionOptions {
  /** Keep only tensors whose name passes (e.g. a trunk's `features.*` of a file that also holds a classifier). */
  readonly include?: (name: string) => boolean;
}

/** Converts one or more `.pth` files into one safetensors file; a name in two files is an error. */
export async function convertTorchCheckpoints(sources: readonly string[], target: string, options: TorchConversionOptions = {}): Promise<string[]> {
  const tensors = new Map<string, TensorToWrite>();
  for (const source of sources) {
    for (const [name, tensor] of readTorchCheckpoint(new Uint8Array(await fs.readFile(source)), source)) {
      if (options.include && !options.include(name)) continue;
      if (tensors.has(name)) throw new Error(`tensor ${name} is in more than one of ${sources.join(', ')}`);
      tensors.set(name, { name, dtype: tensor.dtype, shape: tensor.shape, data: tensor.data });
    }
  }
  await writeSafetensors(target, [...tensors.values()], { format: 'pt' });
  return [...tensors.keys()].sort();
}
