/** Opens a diffusers UNet folder (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`, or its shards). */
import * as fs from 'node:fs/promises';
import { resolveComponentFolder, type ComponentFiles, type WeightsVariant } from '../checkpoint/layout';
import { parseUNet2DConditionConfig } from '../config';
import { CheckpointWeights } from '../weights';
import { planUNet } from './plan';
import type { UNetModel } from './unet';

export interface LoadedUNet extends UNetModel {
  readonly files: ComponentFiles;
  readonly weights: CheckpointWeights;
}

/** Reads the config and the checkpoint's header (no weight data); `variant` picks fp32 or fp16 weights. */
export async function loadUNet(dir: string, options: { variant?: WeightsVariant } = {}): Promise<LoadedUNet> {
  const files = await resolveComponentFolder(dir, 'unet', { variant: options.variant ?? 'auto' });
  const json = JSON.parse(await fs.readFile(files.configPath, 'utf8')) as unknown;
  const plan = planUNet(parseUNet2DConditionConfig(json, files.configPath));
  return { plan, weights: await CheckpointWeights.open(files.weightsPaths), files };
}
