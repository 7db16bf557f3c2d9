/**
 * Finding an edit's models: hub ids are downloaded into (or found in) the Hugging Face cache, folders
 * are checked and hashed, both through the model store; the result names the folders the pipeline
 * opens and the recipe's description of each model (id, revision, commit, file hashes). The edit's
 * precision picks the weight files: fp16 the `*.fp16.safetensors` variants where the repo has them.
 */
import * as path from 'node:path';
import type { Precision } from '../../../shared/protocol';
import type { RecipeModel } from '../../../shared/recipe';
import { DEFAULT_MODELS, ensureModel, type ModelStoreEvent, type ResolvedModel } from '../../hub';
import type { HubSettingsOverrides } from '../../hub/hub-settings';
import { weightFilesPrecision } from '../runtime/precision';

export type ModelRole = RecipeModel['role'];

export interface ResolvedEditModel {
  readonly role: ModelRole;
  /** As requested. */
  readonly id: string;
  readonly resolved: ResolvedModel;
}

export interface ResolveModelsRequest {
  readonly stableDiffusion: string;
  /** Null when the edit needs no CLIP model. */
  readonly clip: string | null;
  /** The edit's precision: which weight files to fetch (fp16 variants, or the full-precision files). */
  readonly precision: Precision;
  readonly hub?: HubSettingsOverrides;
  /** Relative folder paths are resolved against this folder. */
  readonly baseDir?: string;
  readonly signal?: AbortSignal;
  readonly onEvent?: (role: ModelRole, id: string, event: ModelStoreEvent) => void;
}

export { DEFAULT_MODELS };

export async function resolveEditModels(request: ResolveModelsRequest): Promise<{ stableDiffusion: ResolvedEditModel; clip: ResolvedEditModel | null }> {
  const one = async (role: ModelRole, id: string): Promise<ResolvedEditModel> => {
    const resolved = await ensureModel({
      ...request.hub,
      source: id,
      kind: role,
      precision: weightFilesPrecision(request.precision),
      ...(request.baseDir ? { baseDir: request.baseDir } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      onEvent: (event) => request.onEvent?.(role, id, event),
    });
    return { role, id, resolved };
  };
  const stableDiffusion = await one('stable-diffusion', request.stableDiffusion);
  const clip = request.clip === null ? null : await one('clip', request.clip);
  return { stableDiffusion, clip };
}

/** The recipe's record of a model. */
export function recipeModel(model: ResolvedEditModel): RecipeModel {
  const { resolved } = model;
  return {
    role: model.role,
    id: model.id,
    repoId: resolved.repoId,
    revision: resolved.revision,
    commit: resolved.commit,
    files: resolved.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })),
  };
}

/** What identifies a model's weights for the LoRA cache: its repo, commit and file hashes (not where it lies). */
export function modelIdentity(model: ResolvedEditModel): unknown {
  const { resolved } = model;
  return { repoId: resolved.repoId, commit: resolved.commit, files: resolved.files.map((f) => [f.path, f.sha256]) };
}

/** Weight files: safetensors (single or shards) and shard indexes. */
const WEIGHT_FILE = /\.safetensors$|\.safetensors\.index(\.fp16)?\.json$/;

/**
 * Checks that the weight files the pipeline opened (shards and their index included) are among the files the model
 * store chose and hashed, so the recipe describes the bytes that ran. Both pick variants in the same order; a
 * difference is a bug, reported rather than recorded wrongly.
 */
export function assertLoadedAsRecorded(model: ResolvedEditModel, loadedFiles: readonly string[]): void {
  const recorded = new Set(model.resolved.files.map((f) => f.path));
  const recordedWeights = [...recorded].filter((file) => WEIGHT_FILE.test(file));
  const folder = model.resolved.folder;
  const unrecorded = loadedFiles.map((file) => path.relative(folder, file).split(path.sep).join('/')).filter((file) => !recorded.has(file));
  if (unrecorded.length > 0) {
    throw new Error(
      `The ${model.role} model ${model.id} was loaded from ${unrecorded.join(', ')}, which the model store did not choose ` +
        `(it chose ${recordedWeights.join(', ')}): the recipe would not describe the weights that ran.`,
    );
  }
}
