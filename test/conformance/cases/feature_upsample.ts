/** Bilinear upsampling of the feature map to the supervision grid and its adjoint (the engine's VJP). */
import { runFeatureUpsample } from '../../support/drag-cases';
import { float32Tensor, type CaseRun } from '../case';

export const cases = ['feature_upsample'] as const;

export const run: CaseRun = async (entry, golden) => {
  const supRes = entry.settings.sup_res;
  if (!Array.isArray(supRes) || supRes.length !== 2) throw new Error(`${entry.name}: settings.sup_res must be [h, w]`);
  const shape = golden.shape('feat');
  const { upsampled, gradFeat } = await runFeatureUpsample(await golden.float32('feat'), shape, await golden.float32('R'), [supRes[0] as number, supRes[1] as number]);
  return {
    outputs: {
      upsampled: float32Tensor(golden.shape('R'), upsampled),
      grad_feat: float32Tensor(shape, gradFeat),
    },
  };
};
