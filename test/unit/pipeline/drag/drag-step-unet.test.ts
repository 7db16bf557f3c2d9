/**
 * The drag step graph inside a real iteration: tiny UNet forward with the up_blocks[2] tap, the
 * DragPipeline step to x_prev, tracking, motion supervision and mask term, and the VJP w.r.t. the
 * latent, all in one graph — against the clipdrag_step golden G_l.
 */
import { test } from 'node:test';
import path from 'node:path';
import { grad } from '../../../../src/sidecar/engine/autodiff';
import { Graph, type Value } from '../../../../src/sidecar/engine/graph';
import { add, div, mul, sub } from '../../../../src/sidecar/engine/ops';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../../src/sidecar/models/config';
import { loadUNet } from '../../../../src/sidecar/models/unet/load';
import { unetForward, type UNetModel } from '../../../../src/sidecar/models/unet/unet';
import { createDdimSchedule, dragStepCoefficients, type StepCoefficients } from '../../../../src/sidecar/pipeline/diffusion/ddim';
import { STEP_INPUT, type DragGraphConfig } from '../../../../src/sidecar/pipeline/drag/drag-config';
import {
  buildDragStep,
  buildReferenceFeatures,
  maskInputs,
  outputDragStep,
  outputReferenceFeatures,
  referenceFeatureInputs,
  STEP_OUTPUT,
} from '../../../../src/sidecar/pipeline/drag/drag-graph';
import { referenceFeeds, stepFeeds } from '../../../../src/sidecar/pipeline/drag/drag-plan';
import { backgroundWeights, resizeMaskNearest } from '../../../../src/sidecar/pipeline/drag/mask-term';
import { featureGrid } from '../../../../src/sidecar/pipeline/drag/patch-sampler';
import { pointsFrom } from '../../../conformance/case';
import { FIXTURES, GoldenCase } from '../../../support/golden-case';
import { runGraph } from '../../../support/run-graph';

/** UNet on (z, t, text) → eps and the up_blocks[2] feature, plus DragPipeline.step's x_prev. */
function unetStep(g: Graph, unet: UNetModel, latent: readonly number[], text: readonly number[], c: StepCoefficients) {
  const z = g.input('z', 'float32', latent);
  const forward = unetForward(g, unet, { sample: z, timestep: g.input('timestep', 'float32', [1]), encoderHiddenStates: g.input('text', 'float32', text) });
  const eps = forward.eps;
  const x0 = div(sub(z, mul(eps, c.sqrtBeta)), c.sqrtAlpha);
  const xPrev: Value = add(mul(x0, c.sqrtAlphaTarget), mul(eps, c.sqrtBetaTarget));
  return { z, features: forward.features.feat_3_up2!, xPrev };
}

test('clipdrag_step golden: G_l = d(motion + mask loss)/dz from one graph run (UNet, tracking, losses, VJP)', async () => {
  const golden = await GoldenCase.open('clipdrag_step');
  try {
    const s = golden.entry.settings;
    const unet = await loadUNet(path.join(FIXTURES, 'tiny-sd15', 'unet'));
    const latent = golden.entry.inputs.z!.shape;
    const text = golden.entry.inputs.text_embeddings!.shape;
    const c = dragStepCoefficients(createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50), s.timestep as number);
    const handles = pointsFrom(await golden.float32('handle_points'));
    const points = { handles, handlesInit: pointsFrom(await golden.float32('handle_points_init')), targets: pointsFrom(await golden.float32('target_points')) };
    const channels = golden.entry.outputs.F1_lat!.shape[1]!;
    const config: DragGraphConfig = { variant: 'clipdrag', pairs: handles.length, channels, motionRadius: s.r_m as number, trackingRadius: s.r_p as number, supervision: s.sup_res as [number, number] };
    const common = { timestep: Float32Array.of(s.timestep as number), text: await golden.float32('text_embeddings') };

    // Once per edit: the original latent's features at the initial handles, and its x_prev.
    const ref = new Graph('reference');
    const original = unetStep(ref, unet, latent, text, c);
    outputReferenceFeatures(buildReferenceFeatures(featureGrid(original.features, config.supervision), config));
    ref.output(STEP_INPUT.xPrev0, original.xPrev);
    const f0 = await runGraph(ref, { z: await golden.float32('z_orig'), ...common, ...referenceFeeds(config, points.handlesInit) });

    // Every iteration: one run gives the tracked handles, the losses and G_l.
    const g = new Graph('drag-iteration');
    const current = unetStep(g, unet, latent, text, c);
    const step = buildDragStep(featureGrid(current.features, config.supervision), referenceFeatureInputs(g, config, 'float32'), config, {
      mask: { xPrev: current.xPrev, inputs: maskInputs(g, latent, 'float32') },
    });
    outputDragStep(step);
    g.output('grad_local', grad(step.loss, [current.z])[0]!);
    const maskShape = golden.entry.inputs.mask!.shape;
    const interpMask = resizeMaskNearest(await golden.float32('mask'), [maskShape[2]!, maskShape[3]!], [latent[2]!, latent[3]!]);
    const out = await runGraph(g, {
      z: await golden.float32('z'),
      ...common,
      ...f0,
      [STEP_INPUT.backgroundWeights]: backgroundWeights(interpMask, s.lam as number),
      ...stepFeeds(config, points, 'fast'),
    });
    await golden.assertOutput('x_prev_0', f0[STEP_INPUT.xPrev0] as Float32Array);
    await golden.assertOutput('tracked_points', out[STEP_OUTPUT.newHandles] as Float32Array);
    await golden.assertOutput('loss_ms', out[STEP_OUTPUT.motionLoss] as Float32Array);
    await golden.assertOutput('loss_mask', out[STEP_OUTPUT.maskLoss] as Float32Array);
    await golden.assertOutput('grad_local', out.grad_local as Float32Array);
  } finally {
    await golden.close();
  }
});
