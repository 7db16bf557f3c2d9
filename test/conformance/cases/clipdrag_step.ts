/**
 * One full CLIPDrag iteration (the second, so fast point tracking runs), through the pipeline's own
 * drag graphs: the reference graph on z_orig (F0, x_prev_0), the step graph on z (tracking, motion
 * supervision + background term, G_l, the decoded x0 prediction, CLIP loss, G_g), then GLMS fusion and
 * the Adam step in JS, exactly as the drag loop runs them.
 */
import { Engine } from '../../../src/sidecar/engine/runtime';
import { loadClipModel, loadStableDiffusionModel } from '../../../src/sidecar/models/checkpoint/layout';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../src/sidecar/models/config';
import { planUNet } from '../../../src/sidecar/models/unet/plan';
import { CheckpointWeights } from '../../../src/sidecar/models/weights';
import { createDdimSchedule } from '../../../src/sidecar/pipeline/diffusion/ddim';
import { adamStep } from '../../../src/sidecar/pipeline/drag/adam';
import { backgroundWeights, resizeMaskNearest } from '../../../src/sidecar/pipeline/drag/mask-term';
import { DRAG_IO } from '../../../src/sidecar/pipeline/drag/drag-step-graph';
import { DragStepper } from '../../../src/sidecar/pipeline/drag/drag-stepper';
import { fuse } from '../../../src/sidecar/pipeline/drag/glms';
import { GraphSession } from '../../../src/sidecar/pipeline/runtime/graph-session';
import { clipTextEmbedsOf } from '../../../src/sidecar/pipeline/models/text-conditioning';
import { float32Tensor, modelFolders, numberSetting, pointsFrom, pointsTensor, type CaseRun } from '../case';
import type { HostTensor } from '../golden';

export const cases = ['clipdrag_step'] as const;

export const run: CaseRun = async (entry, golden, fixtureDir) => {
  const s = entry.settings;
  const setting = (key: string) => numberSetting(s, key, entry.name);
  const [sdFolder, clipFolder] = modelFolders(entry, fixtureDir);
  if (!sdFolder || !clipFolder) throw new Error(`case ${entry.name}: expected a Stable Diffusion and a CLIP folder in "${entry.model}"`);
  const sd = await loadStableDiffusionModel(sdFolder);
  const clipLayout = await loadClipModel(clipFolder);
  const unet = { plan: planUNet(sd.unet), weights: await CheckpointWeights.open(sd.layout.unet.weightsPaths) };
  const vae = { config: sd.vae, weights: await CheckpointWeights.open(sd.layout.vae.weightsPaths) };
  const clip = { config: clipLayout.config, weights: await CheckpointWeights.open(clipLayout.layout.weightsPaths) };

  const latentShape = golden.shape('z') as [number, number, number, number];
  const [, , h, w] = latentShape;
  const [, channels] = golden.shape('F0_lat') as [number, number, number, number];
  const supervision = s.sup_res as [number, number];
  const handlesInit = pointsFrom(await golden.float32('handle_points_init'));
  const handles = pointsFrom(await golden.float32('handle_points'));
  const targets = pointsFrom(await golden.float32('target_points'));
  const interpMask = resizeMaskNearest(await golden.float32('mask'), supervision, [h, w]);
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50);
  const timestep = Number((await golden.int64('timestep'))[0]);

  const engine = new Engine();
  const session = new GraphSession(engine, { device: 'cpu' });
  try {
    const textEmbeds = await clipTextEmbedsOf(session, clip, await golden.int64('clip_input_ids'));
    const stepper = await DragStepper.create(session, {
      unet,
      vae,
      latentHeight: h,
      latentWidth: w,
      context: await golden.float32('text_embeddings'),
      tokens: golden.shape('text_embeddings')[1]!,
      lora: null,
      schedule,
      timestep,
      drag: { variant: 'clipdrag', pairs: handles.length, channels, motionRadius: setting('r_m'), trackingRadius: setting('r_p'), supervision },
      backgroundWeights: backgroundWeights(interpMask, setting('lam')),
      guidance: { clip, textEmbeds, coefficient: setting('clip_loss_coef') },
      rematerialize: false,
    });
    const reference = await stepper.reference(await golden.float32('z_orig'), handlesInit);
    const z = await golden.float32('z');
    const step = await stepper.step(z, { handles, handlesInit, targets }, 'fast', [DRAG_IO.feature, DRAG_IO.xPrev, DRAG_IO.predX0, DRAG_IO.predImage, DRAG_IO.imageEmbeds]);
    const fused = fuse('official', step.gradLocal, step.gradGlobal!, setting('fuse_cof'));
    const adam = adamStep(z, fused.gradient, { m: await golden.float32('adam_exp_avg'), v: await golden.float32('adam_exp_avg_sq'), step: 1 }, { lr: setting('lr') });

    const tensor = (name: string, data: Float32Array): HostTensor => float32Tensor(golden.shape(name), data);
    const extra = (name: string) => step.extra[name] as Float32Array;
    return {
      outputs: {
        F0_lat: float32Tensor(golden.shape('F0_lat'), reference.feature),
        F1_lat: float32Tensor(golden.shape('F1_lat'), extra(DRAG_IO.feature)),
        x_prev_0: tensor('x_prev_0', reference.xPrev0),
        x_prev: tensor('x_prev', extra(DRAG_IO.xPrev)),
        interp_mask: float32Tensor([1, 1, h, w], interpMask),
        tracked_points: pointsTensor(step.handles),
        loss_ms: float32Tensor([], [step.motionLoss]),
        loss_mask: float32Tensor([], [step.maskLoss!]),
        grad_local: tensor('grad_local', step.gradLocal),
        pred_x0: tensor('pred_x0', extra(DRAG_IO.predX0)),
        pred_image: tensor('pred_image', extra(DRAG_IO.predImage)),
        image_embeds: tensor('image_embeds', extra(DRAG_IO.imageEmbeds)),
        text_embeds: tensor('text_embeds', textEmbeds),
        clip_loss: float32Tensor([], [step.clipLoss!]),
        grad_global: tensor('grad_global', step.gradGlobal!),
        cosine: float32Tensor([1], [fused.cosine]),
        grad_fused: tensor('grad_fused', fused.gradient),
        z_next: tensor('z_next', adam.param),
      },
    };
  } finally {
    await session.dispose();
    await engine.close();
  }
};
