/**
 * CLIPDrag fast point tracking on every sub-case. The golden sub-cases never have a cell exactly as far from
 * the target as the handle win the argmin, so the rule's strictness (`>=` in `fastTrackingOverride`) is guarded
 * by test/unit/pipeline/drag/tracking.test.ts and, against the reference, by `clipdrag_step` and `e2e_clipdrag`
 * (both fail when it becomes `>`).
 */
import { fastPointTracking } from '../../../src/sidecar/pipeline/drag/tracking';
import { numberSetting, pointsFrom, pointsTensor, subcases, type CaseRun } from '../case';
import { readFeatureMaps } from '../feature-maps';

export const cases = ['fast_point_tracking'] as const;

export const run: CaseRun = async (entry, golden) => {
  const { f0, f1 } = await readFeatureMaps(golden);
  const outputs: Record<string, ReturnType<typeof pointsTensor>> = {};
  for (const sub of subcases(entry)) {
    const p = `${sub.index}.`;
    const tracked = fastPointTracking(
      f0,
      f1,
      pointsFrom(await golden.float32(`${p}handle_points`)),
      pointsFrom(await golden.float32(`${p}handle_points_init`)),
      pointsFrom(await golden.float32(`${p}target_points`)),
      numberSetting(sub, 'r_p', `${entry.name} sub-case ${sub.index}`),
    );
    outputs[`${p}new_handle_points`] = pointsTensor(tracked);
  }
  return { outputs };
};
