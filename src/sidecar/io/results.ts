// Writing an edit's result next to its source: `cat.png` → `cat.clipdrag.png` and the recipe `cat.clipdrag.json`
// (then `cat.clipdrag-2.png` / `-2.json`, `-3`, ... when taken). Both files appear complete or not at all, a name
// is never taken twice (even by concurrent writers), and the source is only ever read.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { RECIPE_VERSION, type Recipe } from '../../shared/recipe';
import {
  FileWriteError,
  describeWriteFailure,
  errorCode,
  nodeFileOps,
  publishExclusive,
  removeQuietly,
  removeStaleTemporaries,
  writeTempFile,
  type FileOps,
} from './atomic-write';
import { encodePng, type RgbImage } from './image';

/** Everything in the recipe except what the writer decides (the result's file name, the time). */
export type RecipeDraft = Omit<Recipe, 'recipeVersion' | 'createdAt' | 'result'>;

export interface WriteResultRequest {
  /** The edited image's source file; results go into its folder. */
  sourcePath: string;
  image: RgbImage;
  recipe: RecipeDraft;
  /** Replaceable file operations (tests inject failures). */
  ops?: FileOps;
  /** Give up after this many numbered names (default 9999). */
  maxIndex?: number;
  /** Time stamp for the recipe (default now). */
  now?: Date;
}

export interface WrittenResult {
  imagePath: string;
  recipePath: string;
  /** 1 for `<name>.clipdrag.png`, n for `<name>.clipdrag-n.png`. */
  index: number;
  recipe: Recipe;
}

/** The result and recipe paths for a source and a number: 1 → `cat.clipdrag.png`, 2 → `cat.clipdrag-2.png`, ... */
export function resultPaths(sourcePath: string, index: number): { imagePath: string; recipePath: string } {
  if (!Number.isSafeInteger(index) || index < 1) throw new RangeError(`Result index must be a positive integer, got ${index}`);
  const dir = path.dirname(sourcePath);
  const stem = path.parse(sourcePath).name;
  const suffix = index === 1 ? '.clipdrag' : `.clipdrag-${index}`;
  return { imagePath: path.join(dir, `${stem}${suffix}.png`), recipePath: path.join(dir, `${stem}${suffix}.json`) };
}

/** The recipe's `source` block: name, size and sha256 of the source file's bytes (read only). */
export async function describeSourceFile(sourcePath: string, size: { width: number; height: number }): Promise<Recipe['source']> {
  const bytes = await readFile(sourcePath, { flag: 'r' });
  return { file: path.basename(sourcePath), width: size.width, height: size.height, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/**
 * Encodes the result, removes temporary files that killed writes left in the folder, then publishes `<name>.clipdrag[-n].png` and its recipe under the first number whose two
 * names are both free. Throws a `FileWriteError` (nothing left behind) when the disk is full, the folder is not
 * writable, or every number up to `maxIndex` is taken.
 */
export async function writeEditResult(request: WriteResultRequest): Promise<WrittenResult> {
  const ops = request.ops ?? nodeFileOps;
  const maxIndex = request.maxIndex ?? 9999;
  const source = path.resolve(request.sourcePath);
  const dir = path.dirname(source);
  const png = await encodePng(request.image);
  await removeStaleTemporaries(dir);
  const createdAt = (request.now ?? new Date()).toISOString();

  /** Files this call created and must remove if it fails. */
  const temporaries = new Set<string>();
  const published: string[] = [];
  let current = resultPaths(source, 1).imagePath;
  try {
    let pngTemp: string | undefined;
    for (let index = 1; index <= maxIndex; index++) {
      const { imagePath, recipePath } = resultPaths(source, index);
      current = imagePath;
      // Cheap check first: skipping a half-taken number (say, a recipe whose image was deleted) keeps pairs together.
      if ((await ops.exists(imagePath)) || (await ops.exists(recipePath))) continue;

      const recipe = completeRecipe(request.recipe, imagePath, request.image, createdAt);
      if (!pngTemp) {
        pngTemp = await writeTempFile(dir, path.basename(imagePath), png, ops);
        temporaries.add(pngTemp);
      }
      current = recipePath;
      const recipeTemp = await writeTempFile(dir, path.basename(recipePath), new TextEncoder().encode(`${JSON.stringify(recipe, null, 2)}\n`), ops);
      temporaries.add(recipeTemp);

      current = imagePath;
      const imageOutcome = await publishExclusive(pngTemp, imagePath, ops);
      if (imageOutcome === 'taken') {
        await discard(recipeTemp, temporaries, ops);
        continue;
      }
      published.push(imagePath);
      if (imageOutcome === 'renamed') {
        temporaries.delete(pngTemp);
        pngTemp = undefined;
      }

      current = recipePath;
      const recipeOutcome = await publishExclusive(recipeTemp, recipePath, ops);
      if (recipeOutcome === 'taken') {
        // Another writer got this recipe name between the check and now: give the number up entirely.
        await discard(recipeTemp, temporaries, ops);
        await unpublish(imagePath, published, ops);
        continue;
      }
      published.push(recipePath);
      if (recipeOutcome === 'renamed') temporaries.delete(recipeTemp);

      for (const temp of temporaries) await removeQuietly(temp, ops);
      temporaries.clear();
      await ops.syncDirectory(dir);
      return { imagePath, recipePath, index, recipe };
    }
    throw new FileWriteError(
      `Could not write the result of ${path.basename(source)}: every name from ${path.basename(resultPaths(source, 1).imagePath)} to ${path.basename(resultPaths(source, maxIndex).imagePath)} is taken. Move or delete old results in ${dir}.`,
      'EEXIST',
      resultPaths(source, maxIndex).imagePath,
    );
  } catch (error) {
    for (const temp of temporaries) await removeQuietly(temp, ops);
    for (const file of published) await removeQuietly(file, ops);
    if (error instanceof FileWriteError) throw error;
    throw new FileWriteError(
      `Could not write the result of ${path.basename(source)} (${path.basename(current)}) in ${dir}: ${describeWriteFailure(error)}. Nothing was written; the source is unchanged.`,
      errorCode(error),
      current,
      { cause: error },
    );
  }
}

export interface WriteNamedResultRequest {
  /** The output the user named (a .png path); it is replaced if it exists. */
  imagePath: string;
  image: RgbImage;
  recipe: RecipeDraft;
  ops?: FileOps;
  /** Give up after this many recipe names (default 9999). */
  maxIndex?: number;
  now?: Date;
}

export interface WrittenNamedResult {
  imagePath: string;
  recipePath: string;
  recipe: Recipe;
  /** Set when the recipe could not take `<name>.json`: which file was there and where the recipe went instead. */
  recipeMoved?: string;
}

/**
 * Writes a result to the path the user named, replacing that file, and its recipe beside it: `<name>.json`, unless
 * that file exists and is not a recipe of this output (a file the user did not name is never replaced), then the
 * first free `<name>.recipe.json`, `<name>.recipe-2.json`, ... Both appear complete or not at all.
 */
export async function writeNamedResult(request: WriteNamedResultRequest): Promise<WrittenNamedResult> {
  const ops = request.ops ?? nodeFileOps;
  const maxIndex = request.maxIndex ?? 9999;
  const imagePath = path.resolve(request.imagePath);
  const dir = path.dirname(imagePath);
  const imageName = path.basename(imagePath);
  const stem = imagePath.replace(/\.png$/i, '');
  const png = await encodePng(request.image);
  await removeStaleTemporaries(dir);
  const recipe = completeRecipe(request.recipe, imagePath, request.image, (request.now ?? new Date()).toISOString());

  const temporaries = new Set<string>();
  let publishedRecipe: string | undefined;
  let current = imagePath;
  try {
    const pngTemp = await writeTempFile(dir, imageName, png, ops);
    temporaries.add(pngTemp);
    current = `${stem}.json`;
    const recipeTemp = await writeTempFile(dir, path.basename(current), new TextEncoder().encode(`${JSON.stringify(recipe, null, 2)}\n`), ops);
    temporaries.add(recipeTemp);

    let recipePath: string | undefined;
    for (let index = 1; index <= maxIndex; index++) {
      current = index === 1 ? `${stem}.json` : index === 2 ? `${stem}.recipe.json` : `${stem}.recipe-${index - 1}.json`;
      if (await isRecipeOf(current, imageName)) {
        await ops.rename(recipeTemp, current); // an earlier result of this output: its recipe goes with it
        temporaries.delete(recipeTemp);
        recipePath = current;
        break;
      }
      const outcome = await publishExclusive(recipeTemp, current, ops);
      if (outcome === 'taken') continue;
      if (outcome === 'renamed') temporaries.delete(recipeTemp);
      recipePath = publishedRecipe = current;
      break;
    }
    if (recipePath === undefined) {
      throw new FileWriteError(`Could not write the recipe of ${imagePath}: ${path.basename(stem)}.json and every ${path.basename(stem)}.recipe[-n].json up to ${maxIndex - 1} are taken by other files.`, 'EEXIST', `${stem}.json`);
    }
    current = imagePath;
    await ops.rename(pngTemp, imagePath);
    temporaries.delete(pngTemp);
    for (const temp of temporaries) await removeQuietly(temp, ops);
    await ops.syncDirectory(dir);
    const moved = recipePath === `${stem}.json` ? {} : { recipeMoved: `${stem}.json exists and is not a recipe of ${imageName}; it was left unchanged, and the recipe is ${recipePath}` };
    return { imagePath, recipePath, recipe, ...moved };
  } catch (error) {
    for (const temp of temporaries) await removeQuietly(temp, ops);
    if (publishedRecipe) await removeQuietly(publishedRecipe, ops);
    if (error instanceof FileWriteError) throw error;
    throw new FileWriteError(
      `Could not write the result ${imagePath} (${path.basename(current)}): ${describeWriteFailure(error)}. Nothing was written; the source is unchanged.`,
      errorCode(error),
      current,
      { cause: error },
    );
  }
}

/** Whether `file` is a result recipe whose result is `imageName` (what an earlier run to the same output wrote). */
async function isRecipeOf(file: string, imageName: string): Promise<boolean> {
  try {
    if ((await stat(file)).size > 16 * 1024 * 1024) return false;
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Recipe> | null;
    return typeof parsed?.recipeVersion === 'number' && parsed.result?.file === imageName;
  } catch {
    return false;
  }
}

/** The draft with what the writer decides: version, time and the result's file name and size. */
function completeRecipe(draft: RecipeDraft, imagePath: string, image: RgbImage, createdAt: string): Recipe {
  return {
    recipeVersion: RECIPE_VERSION,
    createdAt,
    ...draft,
    result: { file: path.basename(imagePath), width: image.width, height: image.height },
  };
}

async function discard(temp: string, temporaries: Set<string>, ops: FileOps): Promise<void> {
  temporaries.delete(temp);
  await removeQuietly(temp, ops);
}

/** Takes a just-published image back (its number is given up); a renamed temporary file is rewritten for the next number. */
async function unpublish(imagePath: string, published: string[], ops: FileOps): Promise<void> {
  published.splice(published.indexOf(imagePath), 1);
  await ops.unlink(imagePath);
}
