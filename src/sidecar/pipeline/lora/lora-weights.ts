/**
 * LoRA adapters as plain tensors: `<module>.lora_A.weight` [rank, in] and `<module>.lora_B.weight`
 * [out, rank] for every adapted linear layer, keyed by the UNet graph's LoRA input names (diffusers'
 * PEFT names), so they feed a graph built with `lora: { rank }` directly.
 */
import type { Graph } from '../../engine/graph';
import type { Feeds } from '../../engine/runtime/types';
import { SafetensorsFile, writeSafetensors } from '../../models/checkpoint/safetensors';

export interface LoraWeights {
  readonly rank: number;
  /** Graph input name → data, in the graph's adapter order. */
  readonly tensors: ReadonlyMap<string, Float32Array>;
  /** Graph input name → shape ([rank, in] for lora_A, [out, rank] for lora_B). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
}

/** The LoRA inputs of `graph` fed from `lora`; throws naming what is missing or mis-sized. */
export function loraFeeds(lora: LoraWeights, graph: Graph): Feeds {
  const feeds: Record<string, Float32Array> = {};
  for (const input of graph.inputs) {
    if (!input.name.endsWith('.lora_A.weight') && !input.name.endsWith('.lora_B.weight')) continue;
    const data = lora.tensors.get(input.name);
    if (!data) throw new Error(`the LoRA has no tensor ${input.name} (was it trained for another model?)`);
    if (data.length !== input.size) throw new Error(`LoRA tensor ${input.name} has ${data.length} values, the graph expects ${input.size}`);
    feeds[input.name] = data;
  }
  return feeds;
}

/** Writes the adapters as a safetensors file (atomically: a temporary file, then a rename). */
export async function writeLoraFile(file: string, lora: LoraWeights, metadata: Record<string, string>): Promise<void> {
  const tensors = [...lora.tensors].map(([name, data]) => {
    const shape = lora.shapes.get(name);
    if (!shape) throw new Error(`no shape for LoRA tensor ${name}`);
    return { name, dtype: 'F32' as const, shape, data };
  });
  await writeSafetensors(file, tensors, { ...metadata, rank: String(lora.rank) });
}

/** Reads adapters written by `writeLoraFile`. */
export async function readLoraFile(file: string): Promise<LoraWeights> {
  const opened = await SafetensorsFile.open(file);
  try {
    const rank = Number(opened.metadata.rank);
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`${file}: not a LoRA file of this pipeline (no rank in its metadata)`);
    const tensors = new Map<string, Float32Array>();
    const shapes = new Map<string, readonly number[]>();
    for (const info of opened.tensors()) {
      tensors.set(info.name, await opened.readFloat32(info.name));
      shapes.set(info.name, info.shape);
    }
    return { rank, tensors, shapes };
  } finally {
    await opened.close();
  }
}
