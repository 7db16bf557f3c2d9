/**
 * Our drag iterations and LoRA training step against the official PyTorch code's, on the same machine in one
 * run, with the same weights and sizes:
 *
 *  - `ours-<stage>`: the stage through the pipeline's own graphs, as `bench/edit.ts` measures it (drag stepper:
 *    DragDiffusion iteration, CLIPDrag iteration with both VJPs; `trainLora` step at batch 4, rank 16);
 *  - `pytorch-<stage>`: the same stage in `bench/pytorch-reference/drag_reference.py` (diffusers' UNet and VAE,
 *    a CLIP ViT-B/16 image tower, the official code's iteration order; its README says what it follows).
 *
 * Each configuration runs in its own process, ours and PyTorch's alternating stage by stage; `--rounds N` repeats
 * the pair N times (ours, PyTorch, ours, PyTorch, …), so that load from other work falls on both sides alike.
 * Each round's ratio compares the two processes that ran back to back; the comparison row gives their median
 * and the spread over rounds. Peak memory is each side's own process peak (`processPeakRssMb`; for the
 * PyTorch rows the runner's column is the Node process that waited for Python). The comparison rows give our
 * time and peak as a fraction of PyTorch's, against the targets (drag iterations ≤ 0.5× time and ≤ 0.7× peak,
 * LoRA step ≤ 0.7× time).
 *
 *     npm run bench -- vs-pytorch --python PYTHON --diffusers DIFFUSERS_SRC [--model DIR] [--clip DIR]
 *         [--size 256] [--stages drag,clipdrag,lora] [--rounds N] [--memory attention|blocks]
 *         [--precision fp32|fp16-weights] [--repeat N] [--warmup N]
 *
 * `--memory` forces our side's recompute mode (docs/runtime.md, "Memory policy"; default `attention`, what the
 * policy picks for these sizes on a machine with room): `blocks` recomputes every block in the backward.
 * `--precision fp16-weights` holds our side's weights in float16 (float32 arithmetic, as PyTorch's); its
 * configurations are named with a `:fp16-weights` suffix so that they never compare with fp32 results.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Engine } from '../src/sidecar/engine/runtime';
import { GraphSession } from '../src/sidecar/pipeline/runtime/graph-session';
import type { Precision } from '../src/shared/protocol';
import type { GradientRecompute } from '../src/sidecar/pipeline/runtime/gradient-memory';
import { openPipelineModels } from '../src/sidecar/pipeline/models/models';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../test/helpers/tiny-bpe';
import { dragIterationMs, EDIT_PROMPT, loraStepMs, PROMPT, setUp } from './edit';
import { median, round } from './lib/measure';
import type { Benchmark, ComparisonRow, Configuration, Flags, MeasureContext, MeasuredConfiguration, Metrics } from './lib/types';

const REPO = path.resolve(__dirname, '..');
const PIPELINE_MODELS = path.join(REPO, '.cache', 'bench-models', 'pipeline');
const REFERENCE_SCRIPT = path.join(__dirname, 'pytorch-reference', 'drag_reference.py');

const STAGES = ['drag', 'clipdrag', 'lora'] as const;
type Stage = (typeof STAGES)[number];
type Side = 'ours' | 'pytorch';
type OursPrecision = Extract<Precision, 'fp32' | 'fp16-weights'>;
const PRECISIONS: readonly OursPrecision[] = ['fp32', 'fp16-weights'];

/** Our time (and peak) over PyTorch's must stay at or under these. */
const TARGETS: Record<Stage, { time: number; memory?: number }> = {
  drag: { time: 0.5, memory: 0.7 },
  clipdrag: { time: 0.5, memory: 0.7 },
  lora: { time: 0.7 },
};

interface VsConfiguration extends Configuration {
  readonly side: Side;
  readonly stage: Stage;
  /** 1-based: the rounds alternate the two sides `--rounds` times. */
  readonly round: number;
  /** Our side's recompute mode (`--memory`). */
  readonly memory: GradientRecompute;
  /** Our side's precision (`--precision`): fp32, or float16 weights with float32 arithmetic. */
  readonly precision: OursPrecision;
  readonly model: string;
  readonly clip: string;
  readonly size: number;
  /** Python with PyTorch (`--python`), and the diffusers source folder put on its path (`--diffusers`, relative to the repository). */
  readonly python: string;
  readonly diffusers: string | null;
}

function flagText(flags: Flags, name: string, fallback: string): string {
  const value = flags[name];
  return typeof value === 'string' ? value : fallback;
}

function parseStages(text: string): Stage[] {
  const names = text.split(',').filter((s) => s.length > 0);
  const unknown = names.filter((s) => !(STAGES as readonly string[]).includes(s));
  if (unknown.length > 0 || names.length === 0) throw new Error(`--stages takes a comma list of ${STAGES.join(', ')} (got ${JSON.stringify(text)})`);
  return names as Stage[];
}

function pythonEnv(diffusers: string | null): NodeJS.ProcessEnv {
  const pythonPath = [diffusers === null ? null : path.resolve(REPO, diffusers), process.env.PYTHONPATH].filter((p): p is string => !!p).join(path.delimiter);
  // Spinning OpenMP workers wait for peers that a busy machine has descheduled: on a shared machine that makes
  // PyTorch's many small kernels up to 10× slower; passive waiting costs nothing when the machine is idle.
  return { ...process.env, PYTHONPATH: pythonPath, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
}

/** Fails early, with what to install, when the Python side cannot import what it needs. */
function checkPython(python: string, diffusers: string | null): void {
  const probe = spawnSync(python, [REFERENCE_SCRIPT, '--check'], { env: pythonEnv(diffusers), encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error?.message ?? probe.stderr.trim().split('\n').at(-1);
    throw new Error(
      `${python} cannot import torch and diffusers (${why}). Install PyTorch (Debian: apt-get install python3-torch python3-numpy) and point --diffusers at the src/ folder of a diffusers v0.21.4 checkout, or pass --python; see bench/pytorch-reference/README.md`,
    );
  }
}

export const benchmark: Benchmark<VsConfiguration> = {
  description: 'drag iterations (DragDiffusion, CLIPDrag) and the LoRA training step: ours against the official code on PyTorch, same weights, same machine',
  configurations(flags) {
    const model = path.relative(REPO, path.resolve(flagText(flags, 'model', path.join(PIPELINE_MODELS, 'sd15'))));
    const clip = path.relative(REPO, path.resolve(flagText(flags, 'clip', path.join(PIPELINE_MODELS, 'clip-vit-b16'))));
    const size = Number(flagText(flags, 'size', '256'));
    if (!Number.isInteger(size) || size < 64 || size % 16 !== 0) throw new Error(`--size must be a multiple of 16, at least 64 (got ${size})`);
    const stages = parseStages(flagText(flags, 'stages', STAGES.join(',')));
    const python = flagText(flags, 'python', 'python3');
    const diffusersFlag = flags.diffusers;
    // Recorded relative to the repository, so result files name no machine's folders.
    const diffusers = typeof diffusersFlag === 'string' ? path.relative(REPO, path.resolve(diffusersFlag)) : null;
    const rounds = Number(flagText(flags, 'rounds', '1'));
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds needs an integer >= 1 (got ${String(flags.rounds)})`);
    const memoryFlag = flagText(flags, 'memory', 'attention');
    if (memoryFlag !== 'attention' && memoryFlag !== 'blocks') throw new Error(`--memory takes attention or blocks (got ${memoryFlag})`);
    const memory: GradientRecompute = memoryFlag;
    const precisionFlag = flagText(flags, 'precision', 'fp32');
    if (precisionFlag !== 'fp32' && precisionFlag !== 'fp16-weights') throw new Error(`--precision takes fp32 or fp16-weights (got ${precisionFlag})`);
    const precision: OursPrecision = precisionFlag;
    const configurations = stages.flatMap((stage) =>
      Array.from({ length: rounds }, (_, i) => i + 1).flatMap((round) =>
        (['ours', 'pytorch'] as const).map((side) => ({ name: configurationName(side, stage, round, precision), side, stage, round, memory, precision, model, clip, size, python, diffusers })),
      ),
    );
    checkPython(python, diffusers);
    return configurations;
  },
  async measure(config, context) {
    const loadAvg1m = round(os.loadavg()[0]!, 2);
    const metrics = config.side === 'ours' ? await measureOurs(config, context) : measurePyTorch(config, context);
    return { ...metrics, loadAvg1m, loadAvg1mAfter: round(os.loadavg()[0]!, 2) };
  },
  compare(results) {
    return PRECISIONS.flatMap((precision) => STAGES.flatMap((stage) => compareStage(stage, precision, results)));
  },
};

/**
 * `ours-drag`, then `ours-drag r2`, `ours-drag r3`, … for later rounds (names stay those of earlier results); runs
 * with our weights in float16 end in `:fp16-weights`, on both sides, so each pair compares within one run's choice.
 */
function configurationName(side: Side, stage: Stage, round: number, precision: OursPrecision): string {
  return `${side}-${stage}${round > 1 ? ` r${round}` : ''}${precision === 'fp32' ? '' : `:${precision}`}`;
}

async function measureOurs(config: VsConfiguration, context: MeasureContext): Promise<Metrics> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-bench-vs-pytorch-'));
  const engine = new Engine({ cacheDir: path.join(os.tmpdir(), 'clipdrag-bench-sessions') });
  const session = new GraphSession(engine, { device: 'cpu' });
  try {
    const tokenizerFolder = path.join(dir, 'tokenizer');
    await writeBpeFiles(tokenizerFolder, buildTinyBpeVocabulary([PROMPT, EDIT_PROMPT]));
    const models = await openPipelineModels({
      stableDiffusionFolder: path.resolve(REPO, config.model),
      clipFolder: path.resolve(REPO, config.clip),
      tokenizerFolder,
      precision: config.precision,
      cacheDir: path.join(os.tmpdir(), 'clipdrag-bench-cache'),
    });
    const setup = await setUp(session, models, config.size);
    const rematerialize = config.memory === 'blocks';
    let stepMs: number;
    if (config.stage === 'lora') stepMs = round(await loraStepMs(session, setup, rematerialize, context), 1);
    else if (config.stage === 'clipdrag') stepMs = await dragIterationMs(session, setup, { ...setup.stepperSpec, rematerialize }, context);
    else {
      const spec = { ...setup.stepperSpec, rematerialize, guidance: null, drag: { ...setup.stepperSpec.drag, variant: 'dragdiffusion' as const } };
      stepMs = await dragIterationMs(session, setup, spec, context);
    }
    return { stepMs, processPeakRssMb: round(process.resourceUsage().maxRSS / 1024, 1), provider: session.provider ?? 'unknown', memory: config.memory, precision: config.precision };
  } finally {
    await session.dispose();
    await engine.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function measurePyTorch(config: VsConfiguration, context: MeasureContext): Metrics {
  const args = [
    REFERENCE_SCRIPT,
    '--stage', config.stage,
    '--model', path.resolve(REPO, config.model),
    '--clip', path.resolve(REPO, config.clip),
    '--size', String(config.size),
    '--repeat', String(context.repeat),
    '--warmup', String(context.warmup),
  ];
  // Python's progress and warnings pass through to our stderr; its one line of JSON comes back on stdout.
  const run = spawnSync(config.python, args, { env: pythonEnv(config.diffusers), encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`drag_reference.py --stage ${config.stage} ended with ${run.signal ?? `exit code ${run.status}`} (a SIGKILL is usually the out-of-memory killer)`);
  const reply = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, number | string | number[]>;
  const metrics: Metrics = {};
  for (const [key, value] of Object.entries(reply)) {
    if (key === 'stage' || key === 'size' || key === 'stepsMs') continue;
    if (typeof value === 'number' || typeof value === 'string') metrics[key === 'peakRssMb' ? 'processPeakRssMb' : key] = value;
  }
  return { ...metrics, provider: `torch ${reply.torch} cpu, ${reply.threads} threads` };
}

function compareStage(stage: Stage, precision: OursPrecision, results: readonly MeasuredConfiguration[]): ComparisonRow[] {
  const rounds: { ours: Metrics; theirs: Metrics }[] = [];
  for (let round = 1; ; round++) {
    const ours = results.find((r) => r.configuration === configurationName('ours', stage, round, precision))?.metrics;
    const theirs = results.find((r) => r.configuration === configurationName('pytorch', stage, round, precision))?.metrics;
    if (!ours || !theirs) break;
    rounds.push({ ours, theirs });
  }
  if (rounds.length === 0) return [];
  const values = (side: 'ours' | 'theirs', name: string) => rounds.map((r) => Number(r[side][name]));
  // Time: the median of the rounds' ratios (each over two processes that ran back to back). Peak: the
  // largest of each side's rounds (a peak does not vary with load as a time does).
  const timeRatios = rounds.map((r) => Number(r.ours.stepMs) / Number(r.theirs.stepMs));
  const time = round(median(timeRatios), 2);
  const oursPeakMb = Math.max(...values('ours', 'processPeakRssMb'));
  const pytorchPeakMb = Math.max(...values('theirs', 'processPeakRssMb'));
  const memory = round(oursPeakMb / pytorchPeakMb, 2);
  const target = TARGETS[stage];
  const metrics: Metrics = {
    rounds: rounds.length,
    oursMs: round(median(values('ours', 'stepMs')), 1),
    pytorchMs: round(median(values('theirs', 'stepMs')), 1),
    timeRatio: time,
    ...(rounds.length > 1 ? { timeRatioMin: round(Math.min(...timeRatios), 2), timeRatioMax: round(Math.max(...timeRatios), 2) } : {}),
    timeTarget: target.time,
    timeMet: time <= target.time,
    oursPeakMb,
    pytorchPeakMb,
    memoryRatio: memory,
    memoryTarget: target.memory ?? '-',
    memoryMet: target.memory === undefined ? '-' : memory <= target.memory,
  };
  return [{ name: precision === 'fp32' ? stage : `${stage}:${precision}`, metrics }];
}
