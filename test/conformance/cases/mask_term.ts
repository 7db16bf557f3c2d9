/** The background term: nearest-resized mask (JS), then λ·Σ|x_prev − x_prev_0|·(1 − mask) and its gradient (graph). */
import { runMaskTerm } from '../../support/drag-cases';
import { float32Tensor, numberSetting, type CaseRun } from '../case';

export const cases = ['mask_term'] as const;

export const run: CaseRun = async (entry, golden) => {
  const latentShape = golden.shape('x_prev');
  const result = await runMaskTerm(
    await golden.float32('mask'),
    golden.shape('mask'),
    await golden.float32('x_prev'),
    await golden.float32('x_prev_0'),
    latentShape,
    numberSetting(entry.settings, 'lam', entry.name),
  );
  return {
    outputs: {
      interp_mask: float32Tensor([1, 1, latentShape[2]!, latentShape[3]!], result.interpMask),
      loss: float32Tensor([], [result.loss]),
      grad_x_prev: float32Tensor(latentShape, result.gradXPrev),
    },
  };
};
