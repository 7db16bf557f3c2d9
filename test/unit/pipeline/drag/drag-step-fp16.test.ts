/**
 * The CLIPDrag step graph in fp16 against fp32 (tiny models, same float16-rounded weights, CPU): tracked
 * handles, the losses, and both gradients w.r.t. the latent — G_l (motion + mask term) and G_g (VAE
 * decoder → CLIP) — within the tolerance derived from the graph (`test/support/fp16.ts`). The latent and
 * the gradients stay float32 at the graph's boundary.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Engine } from '../../../../src/sidecar/engine/runtime/engine';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../../../../src/sidecar/models/config';
import { createDdimSchedule, dragStepCoefficients } from '../../../../src/sidecar/pipeline/diffusion/ddim';
import type { DragGraphConfig } from '../../../../src/sidecar/pipeline/drag/drag-config';
import { dragStepGraph, type DragGraphSpec } from '../../../../src/sidecar/pipeline/drag/drag-step-graph';
import { DragStepper } from '../../../../src/sidecar/pipeline/drag/drag-stepper';
import { GraphSession } from '../../../../src/sidecar/pipeline/runtime/graph-session';
import type { PipelineModels } from '../../../../src/sidecar/pipeline/models/models';
import { float16Tolerance, openFp16AndReference } from '../../../support/fp16';
import { relativeL2 } from '../../../support/golden-case';
import { randomFloat32, withTempDir } from '../../../support/random-checkpoint';

const LATENT = 8;
const TIMESTEP = 681;

test('CLIPDrag step in fp16: handles, losses, G_l and G_g match fp32 within the derived fp16 tolerance', async () => {
  await withTempDir(async (dir) => {
    const models = await openFp16AndReference(dir);
    const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50);
    const drag: DragGraphConfig = { variant: 'clipdrag', pairs: 1, channels: 16, motionRadius: 1, trackingRadius: 3, supervision: [2 * LATENT, 2 * LATENT] };
    const context = randomFloat32(77 * 16, 7);
    const textEmbeds = randomFloat32(16, 8);
    const background = new Float32Array(LATENT * LATENT).fill(0.1);
    const graphSpec = (m: PipelineModels): DragGraphSpec => ({
      unet: m.unet,
      latentHeight: LATENT,
      latentWidth: LATENT,
      tokens: 77,
      loraRank: null,
      drag,
      step: dragStepCoefficients(schedule, TIMESTEP),
      maskTerm: true,
      guidance: { clip: m.clip!, vae: m.vae, coefficient: 300 },
      rematerialize: false,
    });
    const tol = float16Tolerance(dragStepGraph(graphSpec(models.half)));

    const engine = new Engine({ cacheDir: dir });
    const session = new GraphSession(engine, { device: 'cpu' });
    try {
      const run = async (m: PipelineModels) => {
        const stepper = await DragStepper.create(session, {
          unet: m.unet,
          vae: m.vae,
          latentHeight: LATENT,
          latentWidth: LATENT,
          context,
          tokens: 77,
          lora: null,
          schedule,
          timestep: TIMESTEP,
          drag,
          backgroundWeights: background,
          guidance: { clip: m.clip!, textEmbeds, coefficient: 300 },
          rematerialize: false,
        });
        const zStar = randomFloat32(4 * LATENT * LATENT, 9);
        await stepper.reference(zStar, [[6, 6]]);
        const z = zStar.map((v, i) => v + 0.05 * Math.sin(i));
        return stepper.step(z, { handles: [[6.5, 6]], handlesInit: [[6, 6]], targets: [[12, 10]] }, 'fast');
      };
      const half = await run(models.half);
      const reference = await run(models.reference);

      assert.deepEqual(half.handles, reference.handles, 'tracking picks the same cell');
      for (const [name, h, r] of [
        ['motion loss', half.motionLoss, reference.motionLoss],
        ['mask loss', half.maskLoss!, reference.maskLoss!],
        ['CLIP loss', half.clipLoss!, reference.clipLoss!],
      ] as const) {
        assert.ok(Math.abs(h - r) <= tol * Math.abs(r), `${name}: fp16 ${h}, fp32 ${r}, tolerance ${tol}`);
      }
      for (const [name, h, r] of [
        ['G_l', half.gradLocal, reference.gradLocal],
        ['G_g', half.gradGlobal!, reference.gradGlobal!],
      ] as const) {
        assert.ok(h.every(Number.isFinite) && h.some((v) => v !== 0), `${name}: finite and not all zero in fp16`);
        const error = relativeL2(h, r);
        if (process.env.CLIPDRAG_PRINT_ERRORS) console.log(`${name}: relative error ${error.toExponential(2)}, tolerance ${tol.toExponential(2)}`);
        assert.ok(error < tol, `${name}: relative error ${error} ≥ tolerance ${tol}`);
        assert.ok(error > 1e-6, `${name}: identical to fp32 (${error}): is the step computing in float16?`);
      }
    } finally {
      await session.dispose();
      await engine.close();
    }
  });
});
