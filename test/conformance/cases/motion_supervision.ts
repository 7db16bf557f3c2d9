/**
 * Motion supervision, CLIPDrag and DragDiffusion variants: the loss and d loss / d F1 of every
 * sub-case through the drag graphs (reference part on F0, step part on F1, tracking off), with every
 * point-dependent tensor a graph input.
 */
import { caseConfig, readFeaturePair, runDragStep } from '../../support/drag-cases';
import { float32Tensor, numberSetting, pointsFrom, subcases, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['motion_supervision_clipdrag', 'motion_supervision_dragdiffusion'] as const;

export const run: CaseRun = async (entry, golden) => {
  const variant = entry.name === 'motion_supervision_clipdrag' ? 'clipdrag' : 'dragdiffusion';
  const features = await readFeaturePair(golden);
  const outputs: Record<string, HostTensor> = {};
  for (const sub of subcases(entry)) {
    const p = `${sub.index}.`;
    const handles = pointsFrom(await golden.float32(`${p}handle_points`));
    const targets = pointsFrom(await golden.float32(`${p}target_points`));
    // DragDiffusion reads no F0 patch; its initial handles only feed tracking, which is off here.
    const handlesInit = golden.has(`${p}handle_points_init`) ? pointsFrom(await golden.float32(`${p}handle_points_init`)) : handles;
    const motionRadius = numberSetting(sub, 'r_m', `${entry.name} sub-case ${sub.index}`);
    const config = caseConfig(variant, features.shape, handles.length, motionRadius, 1);
    const result = await runDragStep(config, features, { handles, handlesInit, targets }, 'none');
    outputs[`${p}loss`] = float32Tensor([], [result.motionLoss]);
    outputs[`${p}grad_F1`] = float32Tensor(features.shape, result.gradF1);
  }
  return { outputs };
};
