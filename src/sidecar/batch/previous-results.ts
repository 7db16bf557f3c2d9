// Results already next to an image: `<stem>.clipdrag[-n].json` recipes whose source is that image and whose result
// image is still there. A folder is listed once however many of its images are looked up. Recipes that are links
// leading out of the batch folder are not read.
import { readFile, readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { resolveInsideFolder } from '../io/paths';
import { recipeRunIdentity, runFingerprint } from './fingerprint';

export interface PreviousResult {
  recipePath: string;
  imagePath: string;
  /** The recipe as parsed (untrusted shape). */
  recipe: Record<string, unknown>;
  /** Its run fingerprint, or undefined when the recipe does not record enough to tell. */
  fingerprint: string | undefined;
}

const RECIPE_NAME = /^(.*)\.clipdrag(?:-(\d+))?\.json$/;

export class PreviousResults {
  private readonly folders = new Map<string, Promise<PreviousResult[]>>();

  /** `root`: the batch folder (a real path); nothing outside it is read. */
  constructor(private readonly root: string) {}

  /** The results of `imagePath` (an absolute path) found in its folder, oldest number first. */
  async of(imagePath: string): Promise<PreviousResult[]> {
    const dir = path.dirname(imagePath);
    let all = this.folders.get(dir);
    if (!all) {
      all = readFolder(this.root, dir);
      this.folders.set(dir, all);
    }
    const name = path.basename(imagePath);
    return (await all).filter((result) => (result.recipe.source as { file?: unknown }).file === name);
  }

  /** Every recipe read so far (for time estimates). */
  async all(): Promise<PreviousResult[]> {
    return (await Promise.all(this.folders.values())).flat();
  }

  /** Forgets a folder's listing (after a result was written there). */
  invalidate(imagePath: string): void {
    this.folders.delete(path.dirname(imagePath));
  }
}

async function readFolder(root: string, dir: string): Promise<PreviousResult[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const recipes = names
    .map((name) => ({ name, match: RECIPE_NAME.exec(name) }))
    .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
    .sort((a, b) => a.match[1]!.localeCompare(b.match[1]!) || Number(a.match[2] ?? 1) - Number(b.match[2] ?? 1));
  const results: PreviousResult[] = [];
  for (const { name } of recipes) {
    const recipePath = path.join(dir, name);
    const recipe = await readJson(root, recipePath);
    if (!recipe || typeof recipe.source !== 'object' || recipe.source === null || typeof recipe.result !== 'object' || recipe.result === null) continue;
    const resultFile = (recipe.result as { file?: unknown }).file;
    // Only a plain file name next to the recipe counts: a recipe cannot point the batch elsewhere.
    if (typeof resultFile !== 'string' || resultFile !== path.basename(resultFile) || !resultFile.toLowerCase().endsWith('.png')) continue;
    const imagePath = path.join(dir, resultFile);
    if (!(await isFile(imagePath))) continue;
    const identity = recipeRunIdentity(recipe);
    results.push({ recipePath, imagePath, recipe, fingerprint: identity ? runFingerprint(identity) : undefined });
  }
  return results;
}

async function readJson(root: string, file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(await resolveInsideFolder(root, file, { what: 'recipe' }), 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
