/**
 * Edit pipeline benchmark on a Stable Diffusion folder (default: the tiny fixture models) at an N×N
 * image edited at width N (latent N/8):
 *
 *  - `stages`: per-step times of every stage, with the pipeline's default memory policy — LoRA
 *    training step (batch 4, run in micro-batches of the default size), inversion step, drag
 *    iteration (CLIPDrag: one step graph with both VJPs; DragDiffusion: UNet + drag loss + VJP),
 *    denoising step (batch 2, mutual self-attention); `stages-remat` the same with block
 *    rematerialisation in the backward passes (LoRA training and drag steps);
 *  - `clip-split`: the CLIPDrag iteration with the CLIP chain in separate graphs (step graph without
 *    CLIP → x0; VAE decoder + CLIP → ∂L/∂x0; UNet VJP of that cotangent), checked against the single
 *    graph's G_g;
 *  - `converge-fast` / `converge-plain`: drag iterations until every handle is within 2 px of its
 *    target on a fixed synthetic task (a bright blob moved 16 supervision pixels), with fast and with
 *    plain point tracking (no LoRA, cap 60);
 *  - `cli` (only with `--cli`): the whole edit through the `clipdrag edit` command (dist/, `npm run build`)
 *    in one process on an N×N image edited at width N, with `--lora-steps` (default 1), `--max-iters`
 *    (default 2), `--memory` (default auto) and `--inference-steps` (default 50, the spec's default: 35
 *    inversion and 35 denoising steps; fewer shortens those two stages, not their peak memory, which is
 *    per step): per-stage times from the result, the memory policy the
 *    edit chose, and the command's own peak RSS (GNU time's maximum resident set size). Needs a model
 *    folder that ships its tokenizer (the benchmark models do).
 *
 *     npm run bench -- edit [--model DIR] [--clip DIR] [--size N] [--precision fp32|fp16|fp16-weights] [--json]
 *     npm run bench -- edit --cli --model DIR --clip DIR --size 512 [--lora-steps N] [--max-iters N] [--memory auto|attention|blocks]
 *
 * The peak RSS of each configuration is measured by the runner (one child process each).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { EditSpec } from '../src/shared/edit-spec';
import type { Precision } from '../src/shared/protocol';
import { vjp } from '../src/sidecar/engine/autodiff';
import { Graph } from '../src/sidecar/engine/graph';
import { Engine } from '../src/sidecar/engine/runtime';
import { clipGuidanceLoss } from '../src/sidecar/models/clip';
import { SD15_DRAG_SCHEDULER_CONFIG } from '../src/sidecar/models/config';
import { featureNames } from '../src/sidecar/models/unet/plan';
import { buildUNetGraph, featureShapes } from '../src/sidecar/models/unet/unet';
import { vaeDecodeImage } from '../src/sidecar/models/vae';
import { encodePng } from '../src/sidecar/io/image';
import { createDdimSchedule, dragStepCoefficients, inversionPlan } from '../src/sidecar/pipeline/diffusion/ddim';
import { referenceGuidedEps, stackRows } from '../src/sidecar/pipeline/diffusion/denoise';
import { DragStepper, type DragStepperSpec } from '../src/sidecar/pipeline/drag/drag-stepper';
import { DRAG_FEATURE_INDEX } from '../src/sidecar/pipeline/drag/drag-step-graph';
import { edit } from '../src/sidecar/pipeline/edit/edit';
import { GraphSession, float32Output } from '../src/sidecar/pipeline/runtime/graph-session';
import { IO } from '../src/sidecar/pipeline/models/graphs';
import { DEFAULT_LORA_MICRO_BATCH, trainLora } from '../src/sidecar/pipeline/lora/lora';
import { openPipelineModels, type PipelineModels } from '../src/sidecar/pipeline/models/models';
import { encodeGuidanceText, encodePrompt } from '../src/sidecar/pipeline/models/text-conditioning';
import { UNetRunner } from '../src/sidecar/pipeline/models/unet-runner';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../test/helpers/tiny-bpe';
import { blobImage } from '../test/support/tiny-pipeline';
import { round, timeRepeated } from './lib/measure';
import type { Benchmark, Configuration, Flags } from './lib/types';

const REPO = path.resolve(__dirname, '..');
const TINY_SD = path.join(REPO, 'test', 'fixtures', 'tiny-sd15');
const TINY_CLIP = path.join(REPO, 'test', 'fixtures', 'tiny-clip-vit-b16');
export const PROMPT = 'a bright blob on a dark background';
export const EDIT_PROMPT = 'move the blob to the right';

type Kind = 'stages' | 'stages-remat' | 'clip-split' | 'converge-fast' | 'converge-plain' | 'cli';

interface EditConfiguration extends Configuration {
  readonly kind: Kind;
  readonly model: string;
  readonly clip: string;
  readonly size: number;
  /** The stages the `stages` configurations measure (`--stages`; default all). */
  readonly stages: readonly Stage[];
  /** Model precision (`--precision`; default fp32). Configurations of another precision are named `<kind>:<precision>`. */
  readonly precision: Precision;
  /** `cli` only: the command's `--lora-steps`, `--max-iters` and `--memory`. */
  readonly loraSteps: number;
  readonly maxIters: number;
  readonly memory: string;
  readonly inferenceSteps: number;
}

const STAGES = ['lora', 'inversion', 'denoise', 'clipdrag', 'drag'] as const;
type Stage = (typeof STAGES)[number];

function parseStages(text: string): Stage[] {
  const names = text.split(',').filter((s) => s.length > 0);
  const unknown = names.filter((s) => !(STAGES as readonly string[]).includes(s));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--stages takes a comma list of ${STAGES.join(', ')} (got ${JSON.stringify(text)})`);
  return names as Stage[];
}

function flagText(flags: Flags, name: string, fallback: string): string {
  const value = flags[name];
  return typeof value === 'string' ? value : fallback;
}

export const benchmark: Benchmark<EditConfiguration> = {
  description: 'edit pipeline: per-stage step times, the CLIP chain in one graph vs split, iterations to converge with fast vs plain tracking',
  configurations(flags) {
    // Recorded relative to the repository, so result files name no machine's folders.
    const model = path.relative(REPO, path.resolve(flagText(flags, 'model', TINY_SD)));
    const clip = path.relative(REPO, path.resolve(flagText(flags, 'clip', TINY_CLIP)));
    const size = Number(flagText(flags, 'size', '64'));
    if (!Number.isInteger(size) || size < 64 || size % 8 !== 0) throw new Error(`--size must be a multiple of 8, at least 64 (got ${size})`);
    const stages = parseStages(flagText(flags, 'stages', STAGES.join(',')));
    const kinds: Kind[] = flags.cli ? ['cli'] : ['stages', 'stages-remat', 'clip-split', 'converge-fast', 'converge-plain'];
    const precision = flagText(flags, 'precision', 'fp32');
    if (precision !== 'fp32' && precision !== 'fp16' && precision !== 'fp16-weights') throw new Error(`--precision must be fp32, fp16 or fp16-weights (got ${precision})`);
    const loraSteps = Number(flagText(flags, 'lora-steps', '1'));
    const maxIters = Number(flagText(flags, 'max-iters', '2'));
    const memory = flagText(flags, 'memory', 'auto');
    const inferenceSteps = Number(flagText(flags, 'inference-steps', '50'));
    return kinds.map((kind) => ({ name: precision === 'fp32' ? kind : `${kind}:${precision}`, kind, model, clip, size, stages, precision, loraSteps, maxIters, memory, inferenceSteps }));
  },
  async measure(config, context) {
    if (config.kind === 'cli') return cliEdit(config);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-bench-edit-'));
    const engine = new Engine({ cacheDir: path.join(os.tmpdir(), 'clipdrag-bench-sessions') });
    const session = new GraphSession(engine, { device: 'auto' });
    try {
      const tokenizerFolder = path.join(dir, 'tokenizer');
      await writeBpeFiles(tokenizerFolder, buildTinyBpeVocabulary([PROMPT, EDIT_PROMPT]));
      const models = await openPipelineModels({
        stableDiffusionFolder: path.resolve(REPO, config.model),
        clipFolder: path.resolve(REPO, config.clip),
        tokenizerFolder,
        precision: config.precision,
        // Kept between runs: converting SD-1.5's fp32 checkpoints takes a while.
        cacheDir: path.join(os.tmpdir(), 'clipdrag-bench-cache'),
      });
      if (config.kind === 'converge-fast' || config.kind === 'converge-plain') return await converge(config, engine, dir, tokenizerFolder);
      const setup = await setUp(session, models, config.size);
      if (config.kind === 'clip-split') return await clipSplit(session, setup, context);
      return await stages(session, setup, config.kind === 'stages-remat', config.stages, context);
    } finally {
      await session.dispose();
      await engine.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
};

export interface Setup {
  readonly models: PipelineModels;
  readonly size: number;
  readonly latent: number;
  readonly context: Float32Array;
  readonly tokens: number;
  readonly textEmbeds: Float32Array;
  readonly z: Float32Array;
  readonly stepperSpec: DragStepperSpec;
  readonly provider: () => string;
}

export async function setUp(session: GraphSession, models: PipelineModels, size: number): Promise<Setup> {
  const latent = size / 8;
  const prompt = await encodePrompt(session, models.textEncoder, models.tokenizer, PROMPT);
  const textEmbeds = await encodeGuidanceText(session, models.clip!, models.tokenizer, EDIT_PROMPT);
  const schedule = createDdimSchedule(SD15_DRAG_SCHEDULER_CONFIG, 50);
  const channels = featureShapes(models.unet.plan, 1, latent, latent)[featureNames(models.unet.plan)[DRAG_FEATURE_INDEX]!]![1]!;
  const z = new Float32Array(4 * latent * latent).map((_, i) => Math.sin(i * 0.37));
  const supervision: [number, number] = [size / 2, size / 2];
  return {
    models,
    size,
    latent,
    context: prompt.embedding,
    tokens: prompt.tokens,
    textEmbeds,
    z,
    provider: () => session.provider ?? 'unknown',
    stepperSpec: {
      unet: models.unet,
      vae: models.vae,
      latentHeight: latent,
      latentWidth: latent,
      context: prompt.embedding,
      tokens: prompt.tokens,
      lora: null,
      schedule,
      timestep: inversionPlan(schedule, 35).tStar,
      drag: { variant: 'clipdrag', pairs: 1, channels, motionRadius: 1, trackingRadius: 3, supervision },
      backgroundWeights: null,
      guidance: { clip: models.clip!, textEmbeds, coefficient: 300 },
      rematerialize: false,
    },
  };
}

/** Random-weight models must keep every stage finite: timings of NaN arithmetic would mean nothing. */
function assertFinite(what: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new Error(`${what}: element ${i} is ${values[i]} — the model's weights overflow somewhere in this stage`);
  }
}

const POINTS = (size: number) => ({ handles: [[size / 4, size / 8]] as const, targets: [[size / 4, size / 8 + 16]] as const });

export async function dragIterationMs(session: GraphSession, setup: Setup, spec: DragStepperSpec, context: { repeat: number; warmup: number }): Promise<number> {
  const stepper = await DragStepper.create(session, spec);
  const { handles, targets } = POINTS(setup.size);
  await stepper.reference(setup.z, handles.map((p) => [...p] as [number, number]));
  const points = { handles: handles.map((p) => [...p] as [number, number]), handlesInit: handles.map((p) => [...p] as [number, number]), targets: targets.map((p) => [...p] as [number, number]) };
  const timing = await timeRepeated(() => stepper.step(setup.z, points, 'fast'), context);
  const last = await stepper.step(setup.z, points, 'fast');
  assertFinite(`${spec.drag.variant} drag iteration: local gradient`, last.gradLocal);
  if (last.gradGlobal) assertFinite(`${spec.drag.variant} drag iteration: CLIP gradient`, last.gradGlobal);
  return round(timing.medianMs, 1);
}

async function stages(session: GraphSession, setup: Setup, rematerialize: boolean, only: readonly Stage[], context: { repeat: number; warmup: number }) {
  const metrics: Record<string, string | number> = { provider: setup.provider(), latent: `${setup.latent}x${setup.latent}` };
  if (only.includes('lora')) {
    metrics.loraStepMs = round(await loraStepMs(session, setup, rematerialize, context), 1);
    metrics.loraMicroBatch = DEFAULT_LORA_MICRO_BATCH;
  }
  const { models, latent } = setup;
  if (only.includes('inversion')) {
    const runner = await UNetRunner.create(session, models.unet, { batch: 1, height: latent, width: latent, tokens: setup.tokens, context: setup.context, label: 'unet eps' });
    const inversion = await timeRepeated(() => runner.eps(setup.z, 681), context);
    assertFinite('inversion step ε', await runner.eps(setup.z, 681));
    metrics.inversionStepMs = round(inversion.medianMs, 1);
  }
  if (only.includes('denoise')) {
    const guided = await referenceGuidedEps(session, { unet: models.unet, height: latent, width: latent, tokens: setup.tokens, context: setup.context, lora: null, masa: { startStep: 0, startLayer: 10 } });
    const pair = stackRows(setup.z, setup.z);
    const denoise = await timeRepeated(() => guided(pair, 681, 0), context);
    assertFinite('denoising step ε', await guided(pair, 681, 0));
    metrics.denoiseStepMs = round(denoise.medianMs, 1);
  }
  // The drag iterations last: they need the most memory.
  if (only.includes('clipdrag')) metrics.clipdragIterationMs = await dragIterationMs(session, setup, { ...setup.stepperSpec, rematerialize }, context);
  if (only.includes('drag')) {
    const spec = { ...setup.stepperSpec, rematerialize, guidance: null, drag: { ...setup.stepperSpec.drag, variant: 'dragdiffusion' as const } };
    metrics.dragIterationMs = await dragIterationMs(session, setup, spec, context);
  }
  return metrics;
}

/** A few LoRA training steps at the default batch (4) and rank (16); the first step compiles and is not counted. */
export async function loraStepMs(session: GraphSession, setup: Setup, rematerialize: boolean, context: { repeat: number; warmup: number }): Promise<number> {
  const { models } = setup;
  const schedule = setup.stepperSpec.schedule;
  const stepEnds: number[] = [];
  await trainLora(session, {
    unet: models.unet,
    vae: models.vae,
    schedule,
    image: blobImage(setup.size, setup.size, setup.size / 4, setup.size / 2, setup.size / 8),
    context: setup.context,
    tokens: setup.tokens,
    settings: { rank: 16, steps: context.repeat + 1, learningRate: 5e-4, batchSize: 4, seed: 0, cropSize: setup.size, weightDecay: 1e-2, rematerialize },
    onStep: ({ loss }) => {
      stepEnds.push(performance.now());
      assertFinite('LoRA training loss', [loss]);
    },
  });
  return (stepEnds[stepEnds.length - 1]! - stepEnds[0]!) / (stepEnds.length - 1);
}

/** The CLIPDrag iteration with the CLIP chain as two more graphs, and its G_g checked against the single graph's. */
async function clipSplit(session: GraphSession, setup: Setup, context: { repeat: number; warmup: number }) {
  const { models, latent } = setup;
  const spec = setup.stepperSpec;
  const c = dragStepCoefficients(spec.schedule, spec.timestep);
  const shape = [1, 4, latent, latent];

  // Graph B: x0 → VAE decoder → CLIP loss → ∂L/∂x0.
  const chain = new Graph('clip chain');
  const x0 = chain.input('x0', 'float32', shape);
  const text = chain.input('text', 'float32', [1, models.clip!.config.projectionDim]);
  const loss = clipGuidanceLoss(models.clip!, vaeDecodeImage(models.vae, x0), text, { coefficient: 300 }).loss;
  const [gx0] = vjp(chain, [{ value: loss, cotangent: chain.constant([1], [], 'float32') }], [x0]);
  chain.output('g_x0', gx0!);
  // Graph C: the UNet's VJP of a cotangent on ε (its forward again, then backward).
  const { graph: unetVjp, inputs, forward } = buildUNetGraph(models.unet, { batch: 1, height: latent, width: latent, tokens: setup.tokens, outputs: [] }, new Graph('unet vjp'));
  const cotangent = unetVjp.input('ct', 'float32', shape);
  const [gz] = vjp(unetVjp, [{ value: forward.eps, cotangent }], [inputs.sample]);
  unetVjp.output('g_z', gz!);
  const chainGraph = await session.compile(chain, 'clip chain (VAE decoder + CLIP + VJP)');
  const vjpGraph = await session.compile(unetVjp, 'unet VJP of an eps cotangent');

  const localSpec = { ...spec, guidance: null };
  const local = await DragStepper.create(session, localSpec);
  const full = await DragStepper.create(session, spec);
  const { handles, targets } = POINTS(setup.size);
  const points = { handles: handles.map((p) => [...p] as [number, number]), handlesInit: handles.map((p) => [...p] as [number, number]), targets: targets.map((p) => [...p] as [number, number]) };
  await local.reference(setup.z, points.handles);
  await full.reference(setup.z, points.handles);

  // x0 = (z − b·ε)/a: ∂L/∂z = g/a + J_εᵀ(−b/a·g).
  const splitIteration = async (): Promise<Float32Array> => {
    const step = await local.step(setup.z, points, 'fast', ['drag_pred_x0']);
    const g = float32Output(await session.run(chainGraph, { x0: step.extra.drag_pred_x0 as Float32Array, text: setup.textEmbeds }), 'g_x0');
    const ct = g.map((v) => (-c.sqrtBeta / c.sqrtAlpha) * v);
    const back = float32Output(await session.run(vjpGraph, { [IO.sample]: setup.z, [IO.timestep]: new Float32Array([spec.timestep]), [IO.context]: setup.context, ct }), 'g_z');
    return back.map((v, i) => v + g[i]! / c.sqrtAlpha);
  };
  const split = await timeRepeated(splitIteration, context);
  const single = await timeRepeated(() => full.step(setup.z, points, 'fast'), context);
  const gSplit = await splitIteration();
  const gSingle = (await full.step(setup.z, points, 'fast')).gradGlobal!;
  let num = 0;
  let den = 0;
  gSingle.forEach((v, i) => {
    num += (v - gSplit[i]!) ** 2;
    den += v * v;
  });
  return {
    provider: setup.provider(),
    singleGraphIterationMs: round(single.medianMs, 1),
    splitIterationMs: round(split.medianMs, 1),
    ggRelativeDifference: (Math.sqrt(num) / Math.sqrt(den)).toExponential(2),
  };
}

async function converge(config: EditConfiguration, engine: Engine, dir: string, tokenizerFolder: string) {
  const imagePath = path.join(dir, 'blob.png');
  const size = config.size;
  await fs.writeFile(imagePath, await encodePng(blobImage(size, size, size / 4, size / 2, size / 8)));
  const tracking = config.kind === 'converge-fast' ? 'fast' : 'plain';
  const started = performance.now();
  const outcome = await edit({
    imagePath,
    spec: {
      version: 1,
      mode: 'clipdrag',
      prompt: PROMPT,
      editPrompt: EDIT_PROMPT,
      // 16 supervision pixels to the right.
      points: [{ handle: [size / 4, size / 2], target: [size / 4 + 32, size / 2] }],
      parameters: { loraSteps: 0, dragSteps: 60, previewInterval: 0 },
    },
    settings: { model: path.resolve(REPO, config.model), clipModel: path.resolve(REPO, config.clip), device: 'auto', precision: config.precision },
    cacheDir: path.join(dir, 'cache'),
    tokenizerFolder,
    workingWidth: size,
    tracking,
    engine,
    outPath: path.join(dir, 'out.png'),
  });
  return {
    provider: outcome.executionProvider,
    iterations: outcome.iterations,
    reachedTargets: outcome.reachedTargets,
    editS: round((performance.now() - started) / 1000, 1),
  };
}

/**
 * One whole edit through the CLI, in its own process under GNU time: the result's per-stage times, the memory
 * policy from the progress log, and the command's peak RSS. Fails when the edit fails, logs a non-finite loss,
 * or writes a constant image (what NaN latents decode to).
 */
async function cliEdit(config: EditConfiguration) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-bench-cli-'));
  await fs.mkdir(path.join(REPO, '.cache'), { recursive: true });
  const cacheDir = await fs.mkdtemp(path.join(REPO, '.cache', 'bench-cli-cache-'));
  try {
    const size = config.size;
    const imagePath = path.join(dir, 'photo.png');
    await fs.writeFile(imagePath, await encodePng(blobImage(size, size, size / 4, size / 2, size / 8)));
    const out = path.join(dir, 'out.png');
    const specPath = path.join(dir, 'spec.json');
    const spec: EditSpec = {
      version: 1,
      mode: 'clipdrag',
      prompt: PROMPT,
      editPrompt: 'move the blob to the right',
      points: [{ handle: [size / 4, size / 2], target: [size / 4 + size / 16, size / 2] }],
      parameters: { inferenceSteps: config.inferenceSteps },
    };
    await fs.writeFile(specPath, JSON.stringify(spec));
    const args = [
      '-f', 'maxrss-kb %M',
      process.execPath, path.join(REPO, 'bin', 'clipdrag.js'), 'edit', imagePath, '--spec', specPath,
      '--model', path.resolve(REPO, config.model), '--clip', path.resolve(REPO, config.clip),
      '--device', 'cpu', '--precision', config.precision, '--memory', config.memory,
      '--lora-steps', String(config.loraSteps), '--max-iters', String(config.maxIters), '--working-width', String(size),
      '--out', out, '--json',
    ];
    const started = performance.now();
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
      // A fresh pipeline cache on the models' filesystem (weights hard-linked, no LoRA from an earlier run).
      const child = spawn('/usr/bin/time', args, { env: { ...process.env, CLIPDRAG_CACHE_DIR: cacheDir } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        process.stderr.write(d);
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ stdout, stderr, code: c }));
    });
    if (code !== 0) throw new Error(`clipdrag edit exited with ${code}: ${stderr.split('\n').slice(-5).join(' | ')}`);
    if (/\bNaN\b|Infinity/.test(stderr)) throw new Error('clipdrag edit logged a non-finite loss');
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { timings: { stage: string; ms: number }[]; iterations: number };
    const image = await sharp(out).raw().toBuffer();
    if (image.every((v) => v === image[0])) throw new Error('the edited image is constant (non-finite latents decode to that)');
    const maxRssKb = Number(/maxrss-kb (\d+)/.exec(stderr)?.[1]);
    const policy = /memory policy "([a-z]+)" \(([^)]*)\)/.exec(stderr);
    const metrics: Record<string, number | string> = {
      memoryPolicy: policy ? `${policy[1]} (${policy[2]})` : 'not logged',
      editPeakRssMb: round(maxRssKb / 1024, 0),
      editS: round((performance.now() - started) / 1000, 1),
      dragIterations: result.iterations,
    };
    for (const { stage, ms } of result.timings) metrics[`${stage}S`] = round(ms / 1000, 1);
    return metrics;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(cacheDir, { recursive: true, force: true });
  }
}
