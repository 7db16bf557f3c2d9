/** Both GLMS fusion rules (official and the projection variant) on gradients that agree and that conflict. */
import { fuse } from '../../../src/sidecar/pipeline/drag/glms';
import { float32Tensor, numberSetting, subcases, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['glms_rules'] as const;

export const run: CaseRun = async (entry, golden) => {
  const outputs: Record<string, HostTensor> = {};
  for (const sub of subcases(entry)) {
    const p = `${sub.index}.`;
    const gLocal = await golden.float32(`${p}G_l`);
    const gGlobal = await golden.float32(`${p}G_g`);
    const weight = numberSetting(sub, 'fuse_cof', `${entry.name} sub-case ${sub.index}`);
    const official = fuse('official', gLocal, gGlobal, weight);
    const projection = fuse('projection', gLocal, gGlobal, weight);
    outputs[`${p}cosine`] = float32Tensor([1], [official.cosine]);
    outputs[`${p}G_official`] = float32Tensor(golden.shape(`${p}G_l`), official.gradient);
    outputs[`${p}G_projection`] = float32Tensor(golden.shape(`${p}G_l`), projection.gradient);
  }
  return { outputs };
};
