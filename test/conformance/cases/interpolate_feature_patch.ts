/**
 * The bilinear patch sampler `interpolate_feature_patch` on every sub-case, through one compiled graph
 * whose spans (from the JS float32 geometry) are inputs; patches are cut to the reference's shapes.
 */
import { interpolatePatches } from '../../support/drag-cases';
import { float32Tensor, subcases, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['interpolate_feature_patch'] as const;

export const run: CaseRun = async (entry, golden) => {
  const list = subcases(entry);
  const coords = await Promise.all(list.map(async (sub) => Array.from(await golden.float32(`${sub.index}.coords`))));
  const patches = await interpolatePatches(await golden.float32('feat'), golden.shape('feat'), coords);
  const outputs: Record<string, HostTensor> = {};
  list.forEach((sub, i) => {
    outputs[`${sub.index}.patch`] = float32Tensor(patches[i]!.shape, patches[i]!.data);
  });
  return { outputs };
};
