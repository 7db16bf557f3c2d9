/** torch-form Adam: the steps z_1..z_K listed in the case, each from the previous latent and grad_k. */
import { adamStep, initialAdamState } from '../../../src/sidecar/pipeline/drag/adam';
import { float32Tensor, numberSetting, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['adam'] as const;

export const run: CaseRun = async (entry, golden) => {
  const lr = numberSetting(entry.settings, 'lr', entry.name);
  const steps = Object.keys(entry.outputs)
    .map((name) => /^z_(\d+)$/.exec(name)?.[1])
    .filter((k): k is string => k !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const shape = golden.shape('z0');
  let param = await golden.float32('z0');
  let state = initialAdamState(param.length);
  const outputs: Record<string, HostTensor> = {};
  for (let k = 1; k <= (steps.at(-1) ?? 0); k++) {
    ({ param, state } = adamStep(param, await golden.float32(`grad_${k}`), state, { lr }));
    outputs[`z_${k}`] = float32Tensor(shape, param);
  }
  return { outputs };
};
