/** CLIPDrag gradient fusion (cosine + fusion rule) on every sub-case. */
import { fuseGradients } from '../../../src/sidecar/pipeline/drag/glms';
import { float32Tensor, numberSetting, subcases, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['glms_fusion'] as const;

export const run: CaseRun = async (entry, golden) => {
  const outputs: Record<string, HostTensor> = {};
  for (const sub of subcases(entry)) {
    const p = `${sub.index}.`;
    const fused = fuseGradients(
      await golden.float32(`${p}G_l`),
      await golden.float32(`${p}G_g`),
      numberSetting(sub, 'fuse_cof', `${entry.name} sub-case ${sub.index}`),
    );
    outputs[`${p}cosine`] = float32Tensor([1], [fused.cosine]);
    outputs[`${p}G`] = float32Tensor(golden.shape(`${p}G_l`), fused.gradient);
  }
  return { outputs };
};
