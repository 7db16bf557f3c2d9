/**
 * UNet2DConditionModel cases: the forward with DragDiffusion's feature taps (batch 1 and 2), the VJP
 * w.r.t. the latent and the text embedding, LoRA adapters with gradients w.r.t. A and B, and mutual
 * self-attention. Outputs come from the shared case code the unit tests also use.
 *
 * index.json lists the 256 LoRA gradients as one wildcard output; this handler reports them as one
 * tensor (every adapter's gradient, flattened and concatenated in the file's adapter order) against
 * the same concatenation of the golden gradients. The unit tests check each adapter on its own.
 */
import { loadUNet } from '../../../src/sidecar/models/unet/load';
import { computeUNetCase, UNET_CASES, type UNetCaseName } from '../../support/unet-cases';
import { concatFloat32, float32Tensor, type CaseRun } from '../case';
import type { HostTensor } from '../golden';
import { singleModelFolder } from '../single-model';

export const cases = UNET_CASES;

const LORA_GRADIENTS = 'grad.<adapter>.lora_{A,B}.weight';

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const unet = await loadUNet(singleModelFolder(entry, fixtureDir));
  const computed = await computeUNetCase(entry.name as UNetCaseName, unet, {
    settings: entry.settings,
    float32: (name) => golden.float32(name),
    int64: (name) => golden.int64(name),
    shape: (name) => golden.shape(name),
  });
  const outputs: Record<string, HostTensor> = {};
  const references: Record<string, HostTensor> = {};
  for (const name of Object.keys(entry.outputs)) {
    if (name === LORA_GRADIENTS) {
      const adapters = entry.settings.adapters as readonly string[];
      const names = adapters.flatMap((a) => [`grad.${a}.lora_A.weight`, `grad.${a}.lora_B.weight`]);
      const mine = concatFloat32(names.map((n) => computed[n] ?? missing(n)));
      outputs[name] = float32Tensor([mine.length], mine);
      references[name] = float32Tensor([mine.length], concatFloat32(await Promise.all(names.map((n) => golden.float32(n)))));
    } else if (computed[name]) {
      outputs[name] = float32Tensor(golden.shape(name), computed[name]);
    }
  }
  return { outputs, references };
};

function missing(name: string): never {
  throw new Error(`the LoRA graph produced no ${name}`);
}
