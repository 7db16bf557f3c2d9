// What makes two runs of an edit the same run, as one hash: the source image's bytes, the spec as it runs (every
// parameter filled in, the mask inline), the models and the working width. The batch computes it for an item before
// running it and from each existing recipe, and skips items whose hash matches a result that is still there.
import { createHash } from 'node:crypto';
import type { ResolvedEditSpec } from '../../shared/edit-spec';
import type { Precision } from '../../shared/protocol';

/** Working width of edits whose recipe does not record one: the reference's 512. */
const DEFAULT_WORKING_WIDTH = 512;

/** Parameters that do not change the result (how often previews are sent). */
const RESULT_NEUTRAL_PARAMETERS = ['previewInterval'] as const;

export interface RunIdentity {
  /** sha256 of the source file's bytes. */
  sourceSha256: string;
  /** The spec as it runs: parameters complete, mask inline (RLE) or absent. Model fields are ignored here. */
  spec: ResolvedEditSpec;
  /** Stable Diffusion model id as requested (hub id or folder). */
  model: string;
  /** CLIP model id, or null when the edit does not use CLIP (drag mode, empty prompts). */
  clipModel: string | null;
  workingWidth: number;
  /** The models' precision; absent means fp32 (recipes before the choice existed). */
  precision?: Precision;
}

/** The hash of a run identity (hex sha256 of its canonical JSON). */
export function runFingerprint(identity: RunIdentity): string {
  const { model: _model, clipModel: _clipModel, ...spec } = identity.spec;
  void _model;
  void _clipModel;
  const parameters: Record<string, unknown> = { ...spec.parameters };
  for (const name of RESULT_NEUTRAL_PARAMETERS) delete parameters[name];
  const canonicalSpec: Record<string, unknown> = { ...spec, parameters };
  // An empty edit prompt means "use the prompt", as an absent one does.
  if (canonicalSpec.editPrompt === '') delete canonicalSpec.editPrompt;
  const text = canonicalJson({
    sourceSha256: identity.sourceSha256,
    spec: canonicalSpec,
    model: identity.model,
    clipModel: identity.clipModel,
    workingWidth: identity.workingWidth,
    // fp32 stays out of the hash, so fp32 runs keep the fingerprints they had before precision was recorded.
    ...(identity.precision !== undefined && identity.precision !== 'fp32' ? { precision: identity.precision } : {}),
  });
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The run identity a recipe records, or undefined when the recipe lacks what is needed (then it matches nothing).
 * Tolerant by design: a recipe is a file on disk that anyone may have edited.
 */
export function recipeRunIdentity(recipe: unknown): RunIdentity | undefined {
  if (!isRecord(recipe) || !isRecord(recipe.source) || !isRecord(recipe.spec) || !isRecord(recipe.spec.parameters)) return undefined;
  const sourceSha256 = recipe.source.sha256;
  if (typeof sourceSha256 !== 'string') return undefined;
  const models = Array.isArray(recipe.models) ? recipe.models.filter(isRecord) : [];
  const idOf = (role: string) => models.find((m) => m.role === role)?.id;
  const model = typeof recipe.spec.model === 'string' ? recipe.spec.model : idOf('stable-diffusion');
  if (typeof model !== 'string') return undefined;
  const clip = typeof recipe.spec.clipModel === 'string' ? recipe.spec.clipModel : idOf('clip');
  const pipeline = isRecord(recipe.pipeline) ? recipe.pipeline : {};
  const workingWidth = typeof pipeline.workingWidth === 'number' ? pipeline.workingWidth : DEFAULT_WORKING_WIDTH;
  // The pipeline records no CLIP model when the CLIP term was off, so the recorded absence is the identity.
  const usedClip = pipeline.guidanceText !== null && typeof clip === 'string';
  // An auto edit that the memory policy ran with float16 weights is still the run an auto batch asks for.
  const precision = pipeline.precisionByPolicy !== true && (pipeline.precision === 'fp16' || pipeline.precision === 'fp16-weights') ? pipeline.precision : ('fp32' as const);
  return { sourceSha256, spec: recipe.spec as unknown as ResolvedEditSpec, model, clipModel: usedClip ? (clip as string) : null, workingWidth, precision };
}

/** JSON with object keys sorted at every level (arrays keep their order), so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (!isRecord(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) if (v[key] !== undefined) sorted[key] = v[key];
    return sorted;
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
