/**
 * A whole CLIPDrag run on the tiny models through the edit's own stages (the functions `edit()` calls, in its
 * order): the working geometry of the image, mask and points; VAE encoding and DDIM inversion to t*; the drag
 * loop (tracking, motion supervision + mask term, CLIP guidance, GLMS fusion, Adam); denoising of
 * [z_inv, edited] with mutual self-attention; decoding of the edited row.
 *
 * The case's text embeddings are inputs (the text encoder and tokenizer have cases of their own). The loop runs
 * one iteration more than the reference's three so that its tracking on the third latent gives
 * `iter4.handle_points`; the denoising starts from the third latent, as the reference's does.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../../../src/sidecar/engine/runtime';
import type { EditSpec, ResolvedEditSpec } from '../../../src/shared/edit-spec';
import { withDefaults } from '../../../src/shared/edit-spec';
import { rgbToSignedChw } from '../../../src/sidecar/io/image';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../src/sidecar/models/config';
import { vaeScaleFactor } from '../../../src/sidecar/models/vae';
import { createDdimSchedule, inversionPlan } from '../../../src/sidecar/pipeline/diffusion/ddim';
import { rowOf } from '../../../src/sidecar/pipeline/diffusion/denoise';
import type { DragIteration } from '../../../src/sidecar/pipeline/drag/drag-loop';
import { decodeLatent, denoiseWithReference, dragLatent, encodeImage, invertLatent, type EditStages } from '../../../src/sidecar/pipeline/edit/edit';
import { workingGeometry, type EditInput } from '../../../src/sidecar/pipeline/edit/edit-input';
import { openPipelineModels } from '../../../src/sidecar/pipeline/models/models';
import { clipTextEmbedsOf } from '../../../src/sidecar/pipeline/models/text-conditioning';
import { GraphSession } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { float32Tensor, modelFolders, numberSetting, pointsTensor, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['e2e_clipdrag'] as const;

/** The reference's drag iterations (`iterK.latent`, K = 1..3); one more is run for its tracking only. */
const ITERATIONS = 3;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const s = entry.settings;
  const setting = (key: string) => numberSetting(s, key, entry.name);
  const [sdFolder, clipFolder] = modelFolders(entry, fixtureDir);
  if (!sdFolder || !clipFolder) throw new Error(`case ${entry.name}: expected a Stable Diffusion and a CLIP folder in "${entry.model}"`);
  const xy = s.image_points_xy as Array<[number, number]>;
  const masa = s.masa as { start_step: number; start_layer: number };
  const [height, width] = golden.shape('image_uint8') as [number, number, number];

  const spec: ResolvedEditSpec = withDefaults({
    version: 1,
    mode: 'clipdrag',
    prompt: s.lora_prompt as string,
    editPrompt: s.drag_prompt as string,
    // Even entries are handles, odd entries their targets (the reference's click order).
    points: Array.from({ length: xy.length / 2 }, (_, i) => ({ handle: xy[2 * i]!, target: xy[2 * i + 1]! })),
    parameters: {
      inferenceSteps: setting('n_inference_step'),
      inversionStrength: setting('inversion_strength'),
      dragSteps: ITERATIONS + 1,
      latentLearningRate: setting('latent_lr'),
      motionRadius: setting('r_m'),
      trackingRadius: setting('r_p'),
      maskWeight: setting('lam'),
      fusionWeight: setting('fuse_cof'),
      fusionRule: 'official',
      clipGuidanceWeight: setting('clip_loss_coef'),
      loraSteps: 0,
      masaStartStep: masa.start_step,
      masaStartLayer: masa.start_layer,
      previewInterval: 0,
    },
  } satisfies EditSpec);
  const input: EditInput = {
    imagePath: path.join(os.tmpdir(), 'e2e_clipdrag.png'),
    specPath: path.join(os.tmpdir(), 'e2e_clipdrag.png.clipdrag-edit.json'),
    image: { width, height, channels: 3, data: Buffer.from((await golden.read('image_uint8')).data as Uint8Array), format: 'png', hadAlpha: false },
    spec,
    mask: { width, height, data: (await golden.read('mask_uint8')).data as Uint8Array },
  };

  const models = await openPipelineModels({ stableDiffusionFolder: sdFolder, clipFolder, tokenizerFolder: path.join(fixtureDir, 'clip-bpe') });
  const geometry = workingGeometry(input, width, vaeScaleFactor(models.vae.config));
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, spec.parameters.inferenceSteps);
  const plan = inversionPlan(schedule, Math.round(spec.parameters.inferenceSteps * spec.parameters.inversionStrength));
  if (plan.tStar !== setting('timestep')) throw new Error(`case ${entry.name}: t* is ${plan.tStar}, the case says ${setting('timestep')}`);

  const engine = new Engine();
  const session = new GraphSession(engine, { device: 'cpu' });
  try {
    const stages: EditStages = {
      session,
      models,
      geometry,
      mode: spec.mode,
      parameters: spec.parameters,
      prompt: { embedding: await golden.float32('text_embeddings'), tokens: golden.shape('text_embeddings')[1]! },
      guidance: await clipTextEmbedsOf(session, models.clip!, await golden.int64('clip_input_ids')),
      lora: null,
      tracking: 'fast',
      rematerialize: false,
    };
    const zInv = await invertLatent(stages, schedule, plan.inversion, await encodeImage(stages));
    const iterations: DragIteration[] = [];
    await dragLatent(stages, schedule, plan.tStar, zInv, { onIteration: (it) => void iterations.push(it) });
    if (iterations.length !== ITERATIONS + 1) throw new Error(`case ${entry.name}: the drag loop stopped after ${iterations.length} iterations`);
    const edited = iterations[ITERATIONS - 1]!.latent;
    const both = await denoiseWithReference(stages, schedule, plan.denoising, zInv, edited);
    const image = await decodeLatent(stages, rowOf(both, 2, 1));

    const tensor = (name: string, data: Float32Array): HostTensor => float32Tensor(golden.shape(name), data);
    const outputs: Record<string, HostTensor> = {
      source_image: float32Tensor([1, 3, height, width], rgbToSignedChw(geometry.image)),
      mask_sup: float32Tensor([1, 1, ...geometry.supervision], geometry.supervisionMask!),
      handle_points_init: pointsTensor(geometry.handles),
      target_points: pointsTensor(geometry.targets),
      z_inv: tensor('z_inv', zInv),
      final_latents: tensor('final_latents', both),
      final_image: tensor('final_image', image),
    };
    for (const [i, it] of iterations.entries()) {
      const k = i + 1;
      // The handles iteration k's loss used; iteration 4 only contributes its tracking.
      outputs[`iter${k}.handle_points`] = pointsTensor(it.handles);
      if (k > ITERATIONS) continue;
      outputs[`iter${k}.latent`] = tensor(`iter${k}.latent`, it.latent);
      outputs[`iter${k}.loss_ms`] = float32Tensor([], [it.motionLoss!]);
      outputs[`iter${k}.clip_loss`] = float32Tensor([], [it.clipLoss!]);
      outputs[`iter${k}.cosine`] = float32Tensor([1], [it.cosine!]);
    }
    return { outputs };
  } finally {
    await session.dispose();
    await engine.close();
  }
};
