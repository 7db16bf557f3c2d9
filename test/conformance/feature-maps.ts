/** Shared by the tracking handlers: F0 and F1 of a case file as [C, H, W] maps (batch 1). */
import { featureMap, type FeatureMap } from '../../src/sidecar/pipeline/drag/tracking';
import type { GoldenTensors } from './golden';

export async function readFeatureMaps(golden: GoldenTensors): Promise<{ f0: FeatureMap; f1: FeatureMap }> {
  const read = async (name: string): Promise<FeatureMap> => {
    const shape = golden.shape(name);
    if (shape.length !== 4 || shape[0] !== 1) throw new Error(`${name}: expected [1, C, H, W], got [${shape.join(', ')}]`);
    return featureMap(await golden.float32(name), shape[1]!, shape[2]!, shape[3]!);
  };
  return { f0: await read('F0'), f1: await read('F1') };
}
