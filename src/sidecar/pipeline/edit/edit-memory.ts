/**
 * The memory plan of one edit: its gradient graphs (the drag step as the edit will build it, and the LoRA
 * training step when LoRA is trained) handed to the memory policy, which estimates them and chooses the
 * rematerialisation mode. Only graphs are built; nothing runs.
 */
import type { Precision } from '../../../shared/protocol';
import type { DevicePreference } from '../../engine/runtime/providers';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../models/config';
import { CONTEXT_LENGTH } from '../../models/tokenizer/clip-tokenizer';
import { featureNames } from '../../models/unet/plan';
import { featureShapes } from '../../models/unet/unet';
import { createDdimSchedule, dragStepCoefficients } from '../diffusion/ddim';
import { DRAG_FEATURE_INDEX, dragStepGraph } from '../drag/drag-step-graph';
import { DEFAULT_LORA_MICRO_BATCH } from '../lora/lora';
import { loraTrainingGraph } from '../lora/lora-training-graph';
import type { PipelineModels } from '../models/models';
import type { GradientRecompute } from '../runtime/gradient-memory';
import { planMemory, type DeviceMemory, type GradientGraphs, type MemoryPlan, type MemoryPolicyPreference } from '../runtime/memory-policy';
import type { EditInput, WorkingGeometry } from './edit-input';

export interface EditMemoryRequest {
  readonly models: PipelineModels;
  readonly input: EditInput;
  readonly geometry: WorkingGeometry;
  /** Whether the drag step carries CLIP's term (a guidance text and a CLIP model). */
  readonly guided: boolean;
  readonly precision: Precision;
  /** The precision was left to the policy (memory-policy.ts `halveWeightsIfNeeded`). */
  readonly halveWeightsIfNeeded?: boolean;
  readonly device: DevicePreference;
  readonly preference: MemoryPolicyPreference;
  /** Default: the device's (memory-policy.ts `deviceMemory`). */
  readonly memory?: DeviceMemory | null;
}

export function planEditMemory(request: EditMemoryRequest): MemoryPlan {
  const { models, input, geometry } = request;
  const p = input.spec.parameters;
  const { latentHeight: h, latentWidth: w } = geometry;
  const tokens = Math.min(CONTEXT_LENGTH, models.textEncoder.config.maxPositionEmbeddings);
  const channels = featureShapes(models.unet.plan, 1, h, w)[featureNames(models.unet.plan)[DRAG_FEATURE_INDEX]!]![1]!;
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, p.inferenceSteps);
  const graphs: GradientGraphs = (mode: GradientRecompute) => {
    const rematerialize = mode === 'blocks';
    const drag = dragStepGraph({
      unet: models.unet,
      latentHeight: h,
      latentWidth: w,
      tokens,
      loraRank: p.loraSteps > 0 ? p.loraRank : null,
      // freedrag and text build their own step graph (latent-stepper.ts) around the same UNet forward and CLIP
      // branch; a drag step with at least one pair bounds it from above (their local terms are smaller).
      drag: {
        variant: input.spec.mode === 'drag' ? 'dragdiffusion' : 'clipdrag',
        pairs: Math.max(1, geometry.handles.length),
        channels,
        motionRadius: p.motionRadius,
        trackingRadius: p.trackingRadius,
        supervision: geometry.supervision,
      },
      // Any timestep: the coefficients are constants of the graph and change no tensor's size.
      step: dragStepCoefficients(schedule, schedule.timesteps[0]!),
      maskTerm: geometry.backgroundWeights !== null,
      guidance: request.guided && models.clip ? { clip: models.clip, vae: models.vae, coefficient: p.clipGuidanceWeight } : null,
      rematerialize,
    });
    const stages = [{ stage: 'the drag step', graph: drag }];
    if (p.loraSteps > 0) {
      const lora = loraTrainingGraph(models.unet, { batch: DEFAULT_LORA_MICRO_BATCH, height: h, width: w, tokens, rank: p.loraRank, rematerialize });
      stages.push({ stage: 'the LoRA training step', graph: lora.graph });
    }
    return stages;
  };
  return planMemory({
    preference: request.preference,
    precision: request.precision,
    ...(request.halveWeightsIfNeeded ? { halveWeightsIfNeeded: true } : {}),
    device: request.device,
    workingSize: { width: geometry.image.width, height: geometry.image.height },
    graphs,
    ...(request.memory !== undefined ? { memory: request.memory } : {}),
  });
}

/**
 * Whether a batch may keep an edit's graphs alive for the next edit: each kept graph over the UNet holds
 * onnxruntime's own copies of some weights, so only when twice the largest stage's estimate fits the budget
 * (or nothing is known to check against, as before the policy existed).
 */
export function keepsGraphs(plan: MemoryPlan): boolean {
  if (plan.estimate === null || plan.budgetBytes === null) return true;
  return 2 * plan.estimate.largest.peakBytes <= plan.budgetBytes;
}
