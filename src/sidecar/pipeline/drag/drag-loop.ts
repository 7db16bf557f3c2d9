/**
 * The latent optimisation at t* in the reference's order, one step-graph run per iteration:
 *
 *   UNet at z → features → (k > 0) point tracking → stop check (every handle within 2 px of its
 *   target: stop before updating) → motion supervision (+ mask term) → G_l; CLIP loss of the decoded
 *   x0 prediction → G_g; fusion → Adam step on z.
 *
 * Without a global term (DragDiffusion, or no guidance text) the step is Adam on G_l alone.
 */
import type { FusionRule } from '../../../shared/edit-parameters';
import { throwIfCancelled } from '../edit/cancellation';
import { adamStep, initialAdamState } from './adam';
import type { TrackingMode } from './drag-plan';
import { allHandlesReached, type Point } from './tracking';
import { DRAG_IO } from './drag-step-graph';
import type { DragStepper } from './drag-stepper';
import { fuse } from './glms';

/** The reference's stop distance, in supervision-grid pixels. */
export const STOP_DISTANCE = 2;

export interface DragIteration {
  /** 1-based iteration number (the number of Adam steps taken after this one). */
  readonly iteration: number;
  readonly maxIterations: number;
  /** The latent after this iteration's Adam step. */
  readonly latent: Float32Array;
  /** Handles after this iteration's tracking ([row, col], supervision grid). */
  readonly handles: readonly Point[];
  /** The points' loss (null in text mode, which has no points). */
  readonly motionLoss: number | null;
  readonly maskLoss: number | null;
  readonly clipLoss: number | null;
  /** cos(G_g, G_l) when both gradients exist. */
  readonly cosine: number | null;
  /** On preview iterations: the decoded x0 prediction [1, 3, H, W] in [0, 1] (CLIPDrag), else the x0 latent. */
  readonly preview?: { readonly image?: Float32Array; readonly predX0?: Float32Array };
}

export interface DragLoopRequest {
  readonly stepper: DragStepper;
  readonly zStar: Float32Array;
  /** Initial handles and targets, [row, col] in the supervision grid. */
  readonly handles: readonly Point[];
  readonly targets: readonly Point[];
  readonly maxIterations: number;
  readonly learningRate: number;
  /** CLIPDrag's fast point tracking or DragDiffusion's plain nearest-neighbour tracking. */
  readonly tracking: Exclude<TrackingMode, 'none'>;
  readonly fusion: { readonly rule: FusionRule; readonly weight: number };
  /** Ask for a preview every this many iterations (0: never). */
  readonly previewInterval?: number;
  readonly signal?: AbortSignal;
  readonly onIteration?: (iteration: DragIteration) => void | Promise<void>;
}

export interface DragLoopResult {
  readonly latent: Float32Array;
  readonly handles: Point[];
  /** Adam steps taken. */
  readonly iterations: number;
  readonly reachedTargets: boolean;
}

export async function runDragLoop(request: DragLoopRequest): Promise<DragLoopResult> {
  const { stepper, targets, maxIterations } = request;
  const handlesInit = request.handles.map((p) => [p[0], p[1]] as const);
  let handles: Point[] = [...handlesInit];
  let z = request.zStar;
  let adam = initialAdamState(z.length);
  const previewOutputs = [stepper.hasGuidance ? DRAG_IO.predImage : DRAG_IO.predX0];
  for (let k = 0; k < maxIterations; k++) {
    throwIfCancelled(request.signal, 'dragging');
    const interval = request.previewInterval ?? 0;
    const preview = interval > 0 && (k + 1) % interval === 0;
    const step = await stepper.step(z, { handles, handlesInit, targets }, k === 0 ? 'none' : request.tracking, preview ? previewOutputs : [], k === 0);
    handles = step.handles;
    if (allHandlesReached(handles, targets, STOP_DISTANCE)) return { latent: z, handles, iterations: k, reachedTargets: true };
    let gradient = step.gradLocal;
    let cosine: number | null = null;
    if (step.gradGlobal) {
      const fused = fuse(request.fusion.rule, step.gradLocal, step.gradGlobal, request.fusion.weight);
      gradient = fused.gradient;
      cosine = fused.cosine;
    }
    const next = adamStep(z, gradient, adam, { lr: request.learningRate });
    z = next.param;
    adam = next.state;
    await request.onIteration?.({
      iteration: k + 1,
      maxIterations,
      latent: z,
      handles,
      motionLoss: step.motionLoss,
      maskLoss: step.maskLoss,
      clipLoss: step.clipLoss,
      cosine,
      ...(preview ? { preview: previewOf(step.extra) } : {}),
    });
  }
  return { latent: z, handles, iterations: maxIterations, reachedTargets: allHandlesReached(handles, targets, STOP_DISTANCE) };
}

function previewOf(extra: Readonly<Record<string, unknown>>): { image?: Float32Array; predX0?: Float32Array } {
  const image = extra[DRAG_IO.predImage];
  if (image instanceof Float32Array) return { image };
  const predX0 = extra[DRAG_IO.predX0];
  return predX0 instanceof Float32Array ? { predX0 } : {};
}
