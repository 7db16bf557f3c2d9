/** DragDiffusion nearest-neighbour point tracking on every sub-case. */
import { pointTracking } from '../../../src/sidecar/pipeline/drag/tracking';
import { numberSetting, pointsFrom, pointsTensor, subcases, type CaseRun } from '../case';
import { readFeatureMaps } from '../feature-maps';

export const cases = ['point_tracking'] as const;

export const run: CaseRun = async (entry, golden) => {
  const { f0, f1 } = await readFeatureMaps(golden);
  const outputs: Record<string, ReturnType<typeof pointsTensor>> = {};
  for (const sub of subcases(entry)) {
    const p = `${sub.index}.`;
    const tracked = pointTracking(
      f0,
      f1,
      pointsFrom(await golden.float32(`${p}handle_points`)),
      pointsFrom(await golden.float32(`${p}handle_points_init`)),
      numberSetting(sub, 'r_p', `${entry.name} sub-case ${sub.index}`),
    );
    outputs[`${p}new_handle_points`] = pointsTensor(tracked);
  }
  return { outputs };
};
