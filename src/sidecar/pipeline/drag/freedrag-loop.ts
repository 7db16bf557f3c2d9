/**
 * FreeDrag's latent optimisation (`freedrag_update` in its diffusion code), one step-graph run per Adam step:
 *
 *   templates from F0 at the handles; then stages until every pair has arrived or the step budget is spent:
 *   line search for each pair that has not arrived (on the features at the end of the last stage) → at most
 *   five Adam steps on the template L1 (+ background term), stopping early when every pair's loss is below
 *   0.5·l_expected → the features at the new latent → arrival signs → templates blended with the new features.
 *
 * There is no point tracking: a pair's position is its template's, which only the line search moves.
 */
import { throwIfCancelled } from '../edit/cancellation';
import { adamStep, initialAdamState } from './adam';
import type { DragIteration } from './drag-loop';
import { DRAG_IO } from './drag-step-graph';
import { freeDragPositionFeeds, freeDragTemplateFeed, type FreeDragGraphConfig } from './freedrag-graph';
import {
  FREEDRAG_CONSTANTS,
  SupervisionFeatures,
  blendTemplate,
  featuresAt,
  meanAbsDifference,
  nextTemplatePosition,
  templateWeight,
  updateSigns,
  windowAround,
  windowOffsets,
} from './freedrag';
import type { LatentStepper } from './latent-stepper';
import type { Point } from './tracking';

export interface FreeDragLoopRequest {
  readonly stepper: LatentStepper;
  readonly zStar: Float32Array;
  readonly handles: readonly Point[];
  readonly targets: readonly Point[];
  readonly config: FreeDragGraphConfig;
  /** (h, w) of the UNet feature the maps are upsampled from (the latent's size). */
  readonly latentSize: readonly [number, number];
  /** max_step: Adam steps at most. */
  readonly maxIterations: number;
  readonly learningRate: number;
  /** l_expected and d_max. */
  readonly expectedLoss: number;
  readonly maxDistance: number;
  readonly previewInterval?: number;
  readonly signal?: AbortSignal;
  readonly onIteration?: (iteration: DragIteration) => void | Promise<void>;
}

export interface FreeDragLoopResult {
  readonly latent: Float32Array;
  /** The template positions at the end ([row, col], supervision grid): where the handles were moved to. */
  readonly handles: Point[];
  readonly iterations: number;
  /** Every pair arrived (within 2 pixels with a settled loss). */
  readonly reachedTargets: boolean;
}

export async function runFreeDragLoop(request: FreeDragLoopRequest): Promise<FreeDragLoopResult> {
  const { stepper, config, targets, maxIterations } = request;
  const n = request.handles.length;
  const offsets = windowOffsets(config.radius);
  const thresholdLoss = Math.fround(0.5 * request.expectedLoss);
  const mapOf = (feature: Float32Array) => new SupervisionFeatures(feature, config.channels, request.latentSize, config.supervision);
  let currentMap = mapOf(await stepper.reference(request.zStar));
  let current: Point[] = request.handles.map((p) => [p[0], p[1]] as const);
  let templates = current.map((p) => featuresAt(currentMap, windowAround(p, offsets)));
  let signs = new Array<number>(n).fill(0);
  let lossInitial = new Array<number>(n).fill(0);
  let lossEnd = new Array<number>(n).fill(0);
  let z = request.zStar;
  let adam = initialAdamState(z.length);
  let steps = 0;
  const interval = request.previewInterval ?? 0;

  while (!signs.every((s) => s === 1) && steps < maxIterations) {
    current = current.map((p, k) =>
      signs[k] === 1
        ? p
        : nextTemplatePosition(p, targets[k]!, currentMap, templates[k]!, offsets, {
            expectedLoss: request.expectedLoss,
            maxDistance: request.maxDistance,
            thresholdLoss,
            lossInitial: lossInitial[k]!,
            lossEnd: lossEnd[k]!,
          }),
    );
    const feeds = { ...freeDragPositionFeeds(config, current), ...freeDragTemplateFeed(config, templates) };
    for (let s = 0; s < FREEDRAG_CONSTANTS.stageSteps && steps < maxIterations; s++) {
      throwIfCancelled(request.signal, 'dragging');
      const preview = interval > 0 && (steps + 1) % interval === 0;
      const step = await stepper.step(z, feeds, preview ? [DRAG_IO.predX0] : []);
      const next = adamStep(z, step.gradLocal, adam, { lr: request.learningRate });
      z = next.param;
      adam = next.state;
      steps++;
      const pairLosses = Array.from(step.pairLosses!);
      if (s === 0) lossInitial = pairLosses;
      const predX0 = step.extra[DRAG_IO.predX0];
      await request.onIteration?.({
        latent: z,
        iteration: steps,
        maxIterations,
        handles: current,
        motionLoss: step.motionLoss,
        maskLoss: step.maskLoss,
        clipLoss: null,
        cosine: null,
        ...(preview && predX0 instanceof Float32Array ? { preview: { predX0 } } : {}),
      });
      if (Math.max(...pairLosses) < thresholdLoss) break;
    }
    currentMap = mapOf((await stepper.features(z)).feature);
    const found = current.map((p) => featuresAt(currentMap, windowAround(p, offsets)));
    lossEnd = found.map((f, k) => meanAbsDifference(f, templates[k]!));
    signs = updateSigns(current, targets, lossEnd, thresholdLoss);
    templates = templates.map((t, k) => blendTemplate(t, found[k]!, signs[k] === 1 ? 1 : templateWeight(lossEnd[k]!, request.expectedLoss)));
  }
  return { latent: z, handles: current, iterations: steps, reachedTargets: signs.every((s) => s === 1) };
}
