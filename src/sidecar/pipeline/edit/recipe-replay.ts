/**
 * Running an edit again from its recipe: the same source file (checked by hash), the spec as it ran
 * (parameters complete, mask inline), the same models and the pipeline settings the recipe recorded.
 * With the same software and execution provider the result is the same, bit for bit.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { assertEditSpec } from '../../../shared/edit-spec';
import type { EditRequest, PipelineRecipe } from './edit';
import type { ErrorKind } from '../../../shared/error-kind';

export class RecipeError extends Error {
  override readonly name = 'RecipeError';
  readonly kind: ErrorKind = 'invalid-input';
}

/** The edit request that reproduces a recipe's result (add `outPath`, `cacheDir`, ... as needed). */
export async function editRequestFromRecipe(recipePath: string): Promise<EditRequest> {
  let recipe: PipelineRecipe;
  try {
    recipe = JSON.parse(await readFile(recipePath, 'utf8')) as PipelineRecipe;
  } catch (error) {
    throw new RecipeError(`The recipe ${recipePath} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (recipe.recipeVersion !== 1 || !recipe.source?.file || !recipe.spec) {
    throw new RecipeError(`${recipePath} is not a CLIPDrag recipe of version 1 (no source or spec).`);
  }
  const imagePath = path.join(path.dirname(path.resolve(recipePath)), recipe.source.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(imagePath);
  } catch {
    throw new RecipeError(`The recipe's source image ${imagePath} is missing; put it back next to the recipe.`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== recipe.source.sha256) {
    throw new RecipeError(`The source image ${imagePath} changed since the recipe was written (sha256 ${sha256}, the recipe has ${recipe.source.sha256}).`);
  }
  const spec = assertEditSpec(recipe.spec, { imageSize: { width: recipe.source.width, height: recipe.source.height }, forRun: true }, recipePath);
  // Hub models are pinned to the commit the result came from.
  for (const model of recipe.models ?? []) {
    if (!model.repoId || !model.commit) continue;
    const pinned = `${model.repoId}@${model.commit}`;
    if (model.role === 'stable-diffusion') spec.model = pinned;
    else spec.clipModel = pinned;
  }
  const pipeline = recipe.pipeline;
  return {
    imagePath,
    spec,
    // Recipes written before the precision choice existed ran in fp32.
    settings: { device: recipe.device?.preference ?? 'auto', precision: pipeline?.precision ?? 'fp32' },
    ...(pipeline ? { workingWidth: pipeline.workingWidth, rematerialize: pipeline.rematerialize } : {}),
    // `none`: the mode tracks no points, which the mode itself decides again.
    ...(pipeline && pipeline.tracking !== 'none' ? { tracking: pipeline.tracking } : {}),
  };
}
