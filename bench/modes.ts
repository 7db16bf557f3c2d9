/**
 * The edit modes side by side on one fixed synthetic task: a bright blob on a dark N×N image (default the tiny
 * fixture models at 64²), handle on the blob, target 16 supervision pixels to its right, no LoRA, no mask.
 *
 *  - `clipdrag`, `drag`, `freedrag`: drag iterations until the mode stops (every handle within 2 px for the
 *    tracking modes; every template arrived for FreeDrag), capped at 60;
 *  - `text`: 40 iterations toward the edit prompt; it has no target, so "iterations to converge" is the first
 *    iteration by which the CLIP loss has made 90 % of its total fall.
 *
 * Per mode: `iterMedianMs`, the median time between consecutive iteration reports (one step-graph run plus JS);
 * `dragMsPerIter`, the whole drag stage over its iterations (graph compilation and FreeDrag's once-per-stage feature
 * forward included, so it is large for short runs); iterations run; `convergedAt`; whether the targets were reached;
 * the final handle's distance to its target (image pixels) and the whole edit's time.
 *
 *     npm run bench -- modes [--model DIR] [--clip DIR] [--size N]
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { EDIT_MODES, type EditMode } from '../src/shared/edit-parameters';
import type { EditSpec } from '../src/shared/edit-spec';
import { Engine } from '../src/sidecar/engine/runtime';
import { encodePng } from '../src/sidecar/io/image';
import { edit } from '../src/sidecar/pipeline/edit/edit';
import { buildTinyBpeVocabulary, writeBpeFiles } from '../test/helpers/tiny-bpe';
import { blobImage } from '../test/support/tiny-pipeline';
import { median, round } from './lib/measure';
import type { Benchmark, Configuration, Flags } from './lib/types';

const REPO = path.resolve(__dirname, '..');
const PROMPT = 'a bright blob on a dark background';
const EDIT_PROMPT = 'move the blob to the right';
const DRAG_CAP = 60;
const TEXT_ITERATIONS = 40;

interface ModeConfiguration extends Configuration {
  readonly mode: EditMode;
  readonly model: string;
  readonly clip: string;
  readonly size: number;
}

function flagText(flags: Flags, name: string, fallback: string): string {
  const value = flags[name];
  return typeof value === 'string' ? value : fallback;
}

export const benchmark: Benchmark<ModeConfiguration> = {
  description: 'edit modes on a fixed synthetic task: time per iteration and iterations to converge',
  configurations(flags) {
    const model = path.relative(REPO, path.resolve(flagText(flags, 'model', path.join(REPO, 'test', 'fixtures', 'tiny-sd15'))));
    const clip = path.relative(REPO, path.resolve(flagText(flags, 'clip', path.join(REPO, 'test', 'fixtures', 'tiny-clip-vit-b16'))));
    const size = Number(flagText(flags, 'size', '64'));
    if (!Number.isInteger(size) || size < 64 || size % 8 !== 0) throw new Error(`--size must be a multiple of 8, at least 64 (got ${size})`);
    return EDIT_MODES.map((mode) => ({ name: mode, mode, model, clip, size }));
  },
  async measure(config) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-bench-modes-'));
    const engine = new Engine({ cacheDir: path.join(os.tmpdir(), 'clipdrag-bench-sessions') });
    try {
      const tokenizerFolder = path.join(dir, 'tokenizer');
      await writeBpeFiles(tokenizerFolder, buildTinyBpeVocabulary([PROMPT, EDIT_PROMPT]));
      const { size, mode } = config;
      const imagePath = path.join(dir, 'blob.png');
      await fs.writeFile(imagePath, await encodePng(blobImage(size, size, size / 4, size / 2, size / 8)));
      const target: [number, number] = [size / 4 + 32, size / 2];
      const spec: EditSpec = {
        version: 1,
        mode,
        prompt: PROMPT,
        editPrompt: EDIT_PROMPT,
        points: mode === 'text' ? [] : [{ handle: [size / 4, size / 2], target }],
        parameters: { loraSteps: 0, dragSteps: mode === 'text' ? TEXT_ITERATIONS : DRAG_CAP, previewInterval: 0 },
      };
      const stamps: number[] = [];
      const clipLosses: number[] = [];
      const started = performance.now();
      const outcome = await edit(
        {
          imagePath,
          spec,
          settings: { model: path.resolve(REPO, config.model), clipModel: path.resolve(REPO, config.clip), device: 'auto' },
          cacheDir: path.join(dir, 'cache'),
          tokenizerFolder,
          workingWidth: size,
          engine,
          outPath: path.join(dir, 'out.png'),
        },
        {
          onProgress: (p) => {
            if (p.stage !== 'drag' || p.step === 0) return;
            stamps.push(performance.now());
            if (p.losses?.clip !== undefined) clipLosses.push(p.losses.clip);
          },
        },
      );
      const gaps = stamps.slice(1).map((t, i) => t - stamps[i]!);
      const dragMs = outcome.timings.find((t) => t.stage === 'drag')?.ms ?? 0;
      const handle = outcome.finalHandles[0];
      return {
        provider: outcome.executionProvider,
        iterMedianMs: gaps.length > 0 ? round(median(gaps), 1) : 0,
        dragMsPerIter: outcome.iterations > 0 ? round(dragMs / outcome.iterations, 1) : 0,
        iterations: outcome.iterations,
        convergedAt: mode === 'text' ? ninetyPercentFall(clipLosses) : outcome.reachedTargets ? outcome.iterations : -1,
        reachedTargets: mode === 'text' ? 'n/a' : outcome.reachedTargets,
        finalDistancePx: handle ? round(Math.hypot(handle[0] - target[0], handle[1] - target[1]), 2) : 'n/a',
        editS: round((performance.now() - started) / 1000, 1),
      };
    } finally {
      await engine.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  },
};

/** 1-based iteration by which the loss has made 90 % of its fall from the first to the lowest value. */
function ninetyPercentFall(losses: readonly number[]): number {
  if (losses.length === 0) return -1;
  const first = losses[0]!;
  const lowest = Math.min(...losses);
  if (!(first > lowest)) return 1;
  const goal = first - 0.9 * (first - lowest);
  return losses.findIndex((l) => l <= goal) + 1;
}
