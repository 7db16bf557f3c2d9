/**
 * Text mode's latent optimisation: no points and no tracking. Each iteration's step graph gives the CLIP
 * gradient G_g of the edit prompt (CLIPDrag's global term: same chain, loss and preprocessing) and, when a mask
 * is drawn, the background term's gradient G_l; Adam steps on G_g + G_l for every iteration asked for (there is
 * no target to reach, so no early stop).
 */
import { throwIfCancelled } from '../edit/cancellation';
import { adamStep, initialAdamState } from './adam';
import type { DragIteration } from './drag-loop';
import { DRAG_IO } from './drag-step-graph';
import type { LatentStepper } from './latent-stepper';

export interface TextLoopRequest {
  readonly stepper: LatentStepper;
  readonly zStar: Float32Array;
  readonly iterations: number;
  readonly learningRate: number;
  readonly previewInterval?: number;
  readonly signal?: AbortSignal;
  readonly onIteration?: (iteration: DragIteration) => void | Promise<void>;
}

export async function runTextLoop(request: TextLoopRequest): Promise<{ latent: Float32Array; iterations: number }> {
  const { stepper } = request;
  if (!stepper.hasGuidance) throw new Error('text mode needs the CLIP term (an edit prompt and a CLIP model)');
  await stepper.reference(request.zStar);
  let z = request.zStar;
  let adam = initialAdamState(z.length);
  const interval = request.previewInterval ?? 0;
  for (let k = 0; k < request.iterations; k++) {
    throwIfCancelled(request.signal, 'optimising the latent');
    const preview = interval > 0 && (k + 1) % interval === 0;
    const step = await stepper.step(z, {}, preview ? [DRAG_IO.predImage] : []);
    const global = step.gradGlobal!;
    const gradient = new Float32Array(global.length);
    for (let i = 0; i < gradient.length; i++) gradient[i] = Math.fround(global[i]! + step.gradLocal[i]!);
    const next = adamStep(z, gradient, adam, { lr: request.learningRate });
    z = next.param;
    adam = next.state;
    const image = step.extra[DRAG_IO.predImage];
    await request.onIteration?.({
      latent: z,
      iteration: k + 1,
      maxIterations: request.iterations,
      handles: [],
      motionLoss: null,
      maskLoss: step.maskLoss,
      clipLoss: step.clipLoss,
      cosine: null,
      ...(preview && image instanceof Float32Array ? { preview: { image } } : {}),
    });
  }
  return { latent: z, iterations: request.iterations };
}
