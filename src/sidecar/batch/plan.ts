// The plan of a batch: every item found in the folder, read and checked as it will run (image, spec or DragBench
// sample, mask, models), its run fingerprint compared with the recipes already next to it, and a time estimate.
// Nothing an item's files say can make the batch read outside the folder: every path goes through
// resolveInsideFolder, and model folders named by a spec must lie inside the folder too.
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { BATCH_REPORT_NAME, type BatchOptions, type BatchPlan, type BatchPlanItem } from '../../shared/batch';
import { assertEditSpec, withDefaults, type EditMode, type EditSpec, type ImagePoint } from '../../shared/edit-spec';
import { DEFAULT_MODELS, parseModelSource } from '../hub';
import { readImageInfo } from '../io/image';
import { resolveInsideFolder } from '../io/paths';
import { loadSpecMask, readEditSpecFile, specWithInlineMask } from '../io/spec-file';
import { guidanceTextFor } from '../pipeline/edit/edit';
import { discoverBatchItems, type DiscoveredItem } from './discovery';
import { dragBenchSpec, readDragBenchMeta } from './dragbench';
import { DEFAULT_STAGE_RATES, estimateItemSeconds, ratesFromRecipes } from './estimate';
import { resolvePrecision } from '../pipeline/runtime/precision';
import { runFingerprint } from './fingerprint';
import { PreviousResults } from './previous-results';

/** The batch folder itself cannot be used. */
export class BatchFolderError extends Error {
  override readonly name = 'BatchFolderError';
}

/** What the runner needs to run an item. */
export interface RunnableItem {
  /** The source image and the spec's location, inside the folder (absolute). */
  imagePath: string;
  specPath: string;
  /** The spec to run, as checked (folder models replaced by their real paths inside the folder). */
  spec: EditSpec;
  fingerprint: string;
  /** Stable Diffusion model id the run will use. */
  model: string;
  /** The targets, for the final distances. */
  targets: ImagePoint[];
}

export interface PlannedItem {
  item: BatchPlanItem;
  /** Present unless the item is invalid. */
  run?: RunnableItem;
}

export interface BatchPlanning {
  plan: BatchPlan;
  items: PlannedItem[];
  /** The results found, kept for the runner (it checks again before each item). */
  previous: PreviousResults;
  /** The folder's real path. */
  root: string;
}

/** The working width when the batch gives none (the reference's). */
export const DEFAULT_BATCH_WORKING_WIDTH = 512;

export async function planBatch(options: BatchOptions): Promise<BatchPlanning> {
  const root = await batchRoot(options.folder);
  const previous = new PreviousResults(root);
  const items: PlannedItem[] = [];
  for (const found of await discoverBatchItems(root)) {
    if (!options.modes) items.push(await planItem(root, found, options, previous));
    else for (const mode of options.modes) items.push(await planItem(root, found, options, previous, mode));
  }

  const recipes = (await previous.all()).map((result) => result.recipe);
  let estimateSeconds = 0;
  let basedOn = 0;
  for (const planned of items) {
    if (!planned.run) continue;
    const sameModel = recipes.filter((recipe) => recipeModelId(recipe) === planned.run!.model);
    const fromRecipes = ratesFromRecipes(sameModel);
    // Done items count too: their results are the earlier results an estimate is based on.
    basedOn = Math.max(basedOn, fromRecipes?.recipes ?? 0);
    if (planned.item.state !== 'pending') continue;
    const seconds = Math.round(estimateItemSeconds(withDefaults(planned.run.spec).parameters, fromRecipes?.rates ?? DEFAULT_STAGE_RATES));
    planned.item.estimateSeconds = seconds;
    estimateSeconds += seconds;
  }

  const count = (state: BatchPlanItem['state']) => items.filter((p) => p.item.state === state).length;
  const plan: BatchPlan = {
    folder: root,
    items: items.map((p) => p.item),
    counts: { total: items.length, pending: count('pending'), done: count('done'), invalid: count('invalid') },
    estimate: { seconds: estimateSeconds, basis: basedOn > 0 ? 'previous-results' : 'default', recipes: basedOn },
    models: { model: options.model ?? DEFAULT_MODELS.stableDiffusion, clipModel: options.clipModel ?? DEFAULT_MODELS.clip },
    reportFiles: batchReportFiles(root),
  };
  return { plan, items, previous, root };
}

export function batchReportFiles(root: string): { markdown: string; json: string } {
  return { markdown: path.join(root, `${BATCH_REPORT_NAME}.md`), json: path.join(root, `${BATCH_REPORT_NAME}.json`) };
}

async function batchRoot(folder: string): Promise<string> {
  if (!path.isAbsolute(folder)) throw new BatchFolderError(`The batch folder must be an absolute path, got "${folder}".`);
  try {
    const real = await realpath(folder);
    if (!(await stat(real)).isDirectory()) throw new BatchFolderError(`${folder} is not a folder; name the folder whose images should run.`);
    return real;
  } catch (error) {
    if (error instanceof BatchFolderError) throw error;
    throw new BatchFolderError(`The batch folder ${folder} cannot be opened (${(error as NodeJS.ErrnoException).code ?? String(error)}); check that it exists and is readable.`);
  }
}

async function planItem(root: string, found: DiscoveredItem, options: BatchOptions, previous: PreviousResults, mode?: EditMode): Promise<PlannedItem> {
  const item: BatchPlanItem = { image: found.image, source: found.source, specFile: found.specFile, state: 'pending', ...(mode ? { mode } : {}) };
  let run: RunnableItem;
  try {
    run = await loadItem(root, found, options, mode);
  } catch (error) {
    item.state = 'invalid';
    item.problem = error instanceof Error ? error.message : String(error);
    return { item };
  }
  if (!options.force) {
    const match = await matchingResult(run, previous);
    if (match) {
      item.state = 'done';
      item.result = path.relative(root, match).split(path.sep).join('/');
    }
  }
  return { item, run };
}

/** The result of a previous run with the same fingerprint, if one is still there. */
export async function matchingResult(run: RunnableItem, previous: PreviousResults): Promise<string | undefined> {
  const results = await previous.of(run.imagePath);
  return results.find((result) => result.fingerprint === run.fingerprint)?.imagePath;
}

/** Reads and checks an item as it will run. Throws with a message that names the file and the problem. */
async function loadItem(root: string, found: DiscoveredItem, options: BatchOptions, mode?: EditMode): Promise<RunnableItem> {
  const imagePath = path.join(root, ...found.image.split('/'));
  const specPath = path.join(root, ...found.specFile.split('/'));
  const what = found.source === 'spec' ? 'edit spec' : 'DragBench meta data';
  // Both must be real files inside the folder (a link may point anywhere).
  const realImage = await resolveInsideFolder(root, found.image, { what: 'image', namedBy: found.specFile });
  const realSpec = await resolveInsideFolder(root, found.specFile, { what });
  const imageSize = await readImageInfo(realImage);

  let spec: EditSpec;
  if (found.source === 'spec') {
    spec = await readEditSpecFile(realSpec, { imageSize, forRun: mode === undefined });
    const specDir = path.dirname(specPath);
    const model = await modelInsideFolder(root, spec.model, specDir, found.specFile, 'Stable Diffusion model');
    const clipModel = await modelInsideFolder(root, spec.clipModel, specDir, found.specFile, 'CLIP model');
    if (model !== undefined) spec.model = model;
    if (clipModel !== undefined) spec.clipModel = clipModel;
  } else {
    spec = dragBenchSpec(await readDragBenchMeta(realSpec, found.specFile), imageSize, found.specFile, options.dragBenchParameters);
  }
  if (mode !== undefined) spec = assertEditSpec({ ...spec, mode }, { imageSize, forRun: true }, `${found.specFile} in ${mode} mode`);
  // The mask is read as the pipeline will read it (a PNG path relative to the spec, inside its folder).
  const mask = await loadSpecMask(spec, specPath, imageSize);
  const resolved = specWithInlineMask(withDefaults(spec), mask?.mask);

  const model = spec.model ?? options.model ?? DEFAULT_MODELS.stableDiffusion;
  const usesClip = guidanceTextFor(spec) !== null;
  const clipModel = usesClip ? (spec.clipModel ?? options.clipModel ?? DEFAULT_MODELS.clip) : null;
  const sourceSha256 = createHash('sha256').update(await readFile(realImage)).digest('hex');
  const fingerprint = runFingerprint({
    sourceSha256,
    spec: resolved,
    model,
    clipModel,
    workingWidth: options.workingWidth ?? DEFAULT_BATCH_WORKING_WIDTH,
    precision: resolvePrecision(options.precision),
  });
  return { imagePath, specPath, spec, fingerprint, model, targets: spec.points.map((pair) => pair.target) };
}

/**
 * A model a spec names: hub ids are fine (they come from the model cache); a folder must lie inside the batch folder,
 * and is returned as its real path so the run and its recipe name the same folder.
 */
async function modelInsideFolder(root: string, id: string | undefined, specDir: string, specFile: string, what: string): Promise<string | undefined> {
  if (id === undefined) return undefined;
  const source = parseModelSource(id, { baseDir: specDir });
  if (source.type === 'hub') return id;
  return resolveInsideFolder(root, source.path, { what: `${what} folder`, namedBy: specFile });
}

function recipeModelId(recipe: Record<string, unknown>): string | undefined {
  const spec = recipe.spec as { model?: unknown } | undefined;
  if (typeof spec?.model === 'string') return spec.model;
  const models = Array.isArray(recipe.models) ? (recipe.models as { role?: unknown; id?: unknown }[]) : [];
  const id = models.find((m) => m?.role === 'stable-diffusion')?.id;
  return typeof id === 'string' ? id : undefined;
}
