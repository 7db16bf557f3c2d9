// How long the pending items of a batch will take. Earlier recipes made with the same Stable Diffusion model give
// per-step times for the stages that scale with a parameter (LoRA steps, inversion and denoising steps, drag
// iterations) and plain times for the rest; without any, a deliberately pessimistic default is used.
import { inversionStepCount, type EditParameters } from '../../shared/edit-parameters';

/** Seconds per unit of work, and fixed seconds per image. */
export interface StageRates {
  loraPerStep: number;
  inversionPerStep: number;
  dragPerIteration: number;
  denoisePerStep: number;
  /** Everything else of one image: reading, model loading, encoding, decoding, writing. */
  fixed: number;
}

/**
 * Pessimistic rates for full Stable Diffusion 1.5 at 512 pixels on a CPU: an estimate that comes in early is
 * better than one that promises an hour and takes three.
 */
export const DEFAULT_STAGE_RATES: StageRates = { loraPerStep: 3, inversionPerStep: 1.5, dragPerIteration: 4, denoisePerStep: 3, fixed: 60 };

const SCALED_STAGES = ['lora', 'inversion', 'drag', 'denoise'] as const;

/** Seconds for one image with these parameters (drag counted at its iteration cap: it may stop earlier). */
export function estimateItemSeconds(parameters: EditParameters, rates: StageRates): number {
  const steps = inversionStepCount(parameters);
  return (
    rates.loraPerStep * parameters.loraSteps +
    rates.inversionPerStep * steps +
    rates.dragPerIteration * parameters.dragSteps +
    rates.denoisePerStep * steps +
    rates.fixed
  );
}

/**
 * Per-stage rates from recipes (untrusted JSON). Each rate is the median over the recipes that ran that stage;
 * a rate no recipe gives falls back to the default. Undefined when no recipe has usable timings.
 */
export function ratesFromRecipes(recipes: readonly Record<string, unknown>[]): { rates: StageRates; recipes: number } | undefined {
  const samples: Record<keyof StageRates, number[]> = { loraPerStep: [], inversionPerStep: [], dragPerIteration: [], denoisePerStep: [], fixed: [] };
  let used = 0;
  for (const recipe of recipes) {
    const timings = stageSeconds(recipe.timings);
    const parameters = (recipe.spec as { parameters?: Partial<EditParameters> } | undefined)?.parameters;
    if (!timings || !parameters) continue;
    used++;
    const inversionSteps = typeof parameters.inferenceSteps === 'number' && typeof parameters.inversionStrength === 'number' ? inversionStepCount(parameters as EditParameters) : 0;
    const lora = recipe.lora as { fromCache?: unknown; steps?: unknown } | undefined;
    const iterations = (recipe.drag as { iterations?: unknown } | undefined)?.iterations;
    const perUnit = (stage: string, units: unknown, into: number[]) => {
      const seconds = timings.get(stage);
      if (seconds !== undefined && typeof units === 'number' && units > 0) into.push(seconds / units);
    };
    // A LoRA taken from the cache says nothing about training time.
    if (lora && lora.fromCache === false) perUnit('lora', lora.steps, samples.loraPerStep);
    perUnit('inversion', inversionSteps, samples.inversionPerStep);
    perUnit('drag', iterations, samples.dragPerIteration);
    perUnit('denoise', inversionSteps, samples.denoisePerStep);
    let fixed = 0;
    for (const [stage, seconds] of timings) if (!(SCALED_STAGES as readonly string[]).includes(stage)) fixed += seconds;
    samples.fixed.push(fixed);
  }
  if (used === 0) return undefined;
  const rate = (key: keyof StageRates) => (samples[key].length > 0 ? median(samples[key]) : DEFAULT_STAGE_RATES[key]);
  return {
    rates: { loraPerStep: rate('loraPerStep'), inversionPerStep: rate('inversionPerStep'), dragPerIteration: rate('dragPerIteration'), denoisePerStep: rate('denoisePerStep'), fixed: rate('fixed') },
    recipes: used,
  };
}

function stageSeconds(timings: unknown): Map<string, number> | undefined {
  if (!Array.isArray(timings)) return undefined;
  const out = new Map<string, number>();
  for (const timing of timings) {
    const { stage, ms } = (timing ?? {}) as { stage?: unknown; ms?: unknown };
    if (typeof stage === 'string' && typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) out.set(stage, (out.get(stage) ?? 0) + ms / 1000);
  }
  return out.size > 0 ? out : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
