/**
 * FreeDrag's JS rules against its authors' functions: bilinear features on the upsampled map
 * (`get_features_plus`), the line search with backtracking (`get_each_point`), arrival signs and the
 * adaptive template (`update_signs`, `get_xishu`, the F_template blend).
 */
import {
  SupervisionFeatures,
  blendTemplate,
  featuresAt,
  nextTemplatePosition,
  templateWeight,
  updateSigns,
  windowAround,
  windowOffsets,
} from '../../../src/sidecar/pipeline/drag/freedrag';
import type { Point } from '../../../src/sidecar/pipeline/drag/tracking';
import { runFreeDragMotion } from '../../support/drag-cases';
import { concatFloat32, float32Tensor, numberSetting, subcases, type CaseRun } from '../case';
import type { GoldenTensors, HostTensor } from '../golden';

export const cases = ['freedrag_features', 'freedrag_line_search', 'freedrag_template_update', 'freedrag_motion_supervision'] as const;

function points(data: Float32Array): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < data.length; i += 2) out.push([data[i]!, data[i + 1]!]);
  return out;
}

function supervisionSetting(value: unknown): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) throw new Error('setting "supervision" must be [H, W]');
  return [Number(value[0]), Number(value[1])];
}

/** A map given at latent size (upsampled like forward_unet_features), or already at the supervision size. */
async function featureMap(golden: GoldenTensors, name: string, supervision?: readonly [number, number]): Promise<SupervisionFeatures> {
  const [, c, h, w] = golden.shape(name) as [number, number, number, number];
  return new SupervisionFeatures(await golden.float32(name), c, [h, w], supervision ?? [h, w]);
}

export const run: CaseRun = async (entry, golden) => {
  const s = entry.settings;
  const offsets = () => windowOffsets(numberSetting(s, 'win_r', entry.name));
  const outputs: Record<string, HostTensor> = {};
  if (entry.name === 'freedrag_features') {
    const map = await featureMap(golden, 'feature', supervisionSetting(s.supervision));
    const positions = points(await golden.float32('positions'));
    const center = points(await golden.float32('center'))[0]!;
    outputs.features = float32Tensor([positions.length, map.channels], featuresAt(map, positions));
    outputs.window_features = float32Tensor([offsets().length, map.channels], featuresAt(map, windowAround(center, offsets())));
  } else if (entry.name === 'freedrag_line_search') {
    const map = await featureMap(golden, 'feature_map');
    for (const sub of subcases(entry)) {
      const p = `${sub.index}.`;
      const where = `${entry.name} sub-case ${sub.index}`;
      const best = nextTemplatePosition(
        points(await golden.float32(`${p}current`))[0]!,
        points(await golden.float32(`${p}target`))[0]!,
        map,
        await golden.float32(`${p}template`),
        offsets(),
        {
          expectedLoss: numberSetting(s, 'l_expected', entry.name),
          maxDistance: numberSetting(s, 'd_max', entry.name),
          thresholdLoss: numberSetting(s, 'threshold_l', entry.name),
          lossInitial: Math.fround(numberSetting(sub, 'loss_initial', where)),
          lossEnd: Math.fround(numberSetting(sub, 'loss_end', where)),
        },
      );
      outputs[`${p}best`] = float32Tensor([2], [best[0], best[1]]);
    }
  } else if (entry.name === 'freedrag_motion_supervision') {
    const latentShape = golden.shape('x_prev');
    const [n, cells, channels] = golden.shape('templates') as [number, number, number];
    const templates = await golden.float32('templates');
    const result = await runFreeDragMotion(
      await golden.float32('feature'),
      golden.shape('feature'),
      supervisionSetting(s.supervision),
      numberSetting(s, 'win_r', entry.name),
      points(await golden.float32('currents')),
      Array.from({ length: n }, (_, k) => templates.subarray(k * cells * channels, (k + 1) * cells * channels)),
      {
        xPrev: await golden.float32('x_prev'),
        xPrev0: await golden.float32('x_prev_0'),
        latentShape,
        interpMask: await golden.float32('interp_mask'),
        lam: numberSetting(s, 'lam', entry.name),
      },
    );
    const lam = numberSetting(s, 'lam', entry.name);
    outputs.loss_supervised = float32Tensor([n], result.pairLosses);
    // The graph folds λ into the weights; the reference reports mean(...) before λ.
    outputs.mask_loss = float32Tensor([1], [result.maskLoss / lam]);
    outputs.loss = float32Tensor([1], [result.loss]);
    outputs.grad_feature = float32Tensor(golden.shape('feature'), result.gradFeature);
    outputs.grad_x_prev = float32Tensor(latentShape, result.gradXPrev);
  } else {
    const current = points(await golden.float32('current'));
    const targets = points(await golden.float32('target'));
    const lossEnd = Array.from(await golden.float32('loss_end'));
    const expected = numberSetting(s, 'l_expected', entry.name);
    const signs = updateSigns(current, targets, lossEnd, numberSetting(s, 'threshold_l', entry.name));
    const weights = signs.map((sign, k) => (sign === 1 ? 1 : templateWeight(lossEnd[k]!, expected)));
    const [n, cells, channels] = golden.shape('templates') as [number, number, number];
    const templates = await golden.float32('templates');
    const features = await golden.float32('features');
    const size = cells * channels;
    const updated = weights.map((w, k) => blendTemplate(templates.subarray(k * size, (k + 1) * size), features.subarray(k * size, (k + 1) * size), w));
    outputs.signs = float32Tensor([n], signs);
    outputs.xishu = float32Tensor([n], weights);
    outputs.templates_updated = float32Tensor([n, cells, channels], concatFloat32(updated));
  }
  return { outputs };
};
