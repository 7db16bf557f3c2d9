// The samples of a DragBench-layout folder (`<root>/<category>/<sample>/original_image.png` + `meta_data.pkl`) and
// where each result set keeps its edited image: ours next to the sample (the batch runner's
// `original_image.clipdrag[-n].png`, the newest), or the reference layout of the official scripts
// (`<results>/<category>/<sample>/dragged_image.png`).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DRAGBENCH_IMAGE, DRAGBENCH_META } from '../batch/dragbench';

export interface DragBenchSample {
  /** `<category>/<sample>`, `/`-separated: the sample's name in reports. */
  readonly key: string;
  readonly category: string;
  readonly dir: string;
  readonly image: string;
  readonly meta: string;
}

/** Where one set of results lies. */
export type ResultSet = { readonly kind: 'ours'; readonly label: string } | { readonly kind: 'reference'; readonly label: string; readonly root: string };

export const REFERENCE_RESULT_NAME = 'dragged_image.png';
/** The batch runner's result names for a DragBench sample. */
const OURS = /^original_image\.clipdrag(-\d+)?\.png$/;

/** Every sample folder under `root` (at any depth), sorted by key; the category is the first folder below the root. */
export async function discoverSamples(root: string): Promise<DragBenchSample[]> {
  const samples: DragBenchSample[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    if (names.has(DRAGBENCH_IMAGE) && names.has(DRAGBENCH_META)) {
      const key = path.relative(root, dir).split(path.sep).join('/');
      const category = key.includes('/') ? key.slice(0, key.indexOf('/')) : '(root)';
      samples.push({ key, category, dir, image: path.join(dir, DRAGBENCH_IMAGE), meta: path.join(dir, DRAGBENCH_META) });
      return;
    }
    for (const entry of entries) {
      // Hidden folders (ours and editors') are not samples; links are not followed out of the folder.
      if (entry.isDirectory() && !entry.name.startsWith('.')) await visit(path.join(dir, entry.name));
    }
  };
  await visit(root);
  return samples.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The result image of `sample` in `set`, or null when that set has none for it. */
export async function resultFile(sample: DragBenchSample, set: ResultSet): Promise<string | null> {
  if (set.kind === 'reference') {
    const file = path.join(set.root, ...sample.key.split('/'), REFERENCE_RESULT_NAME);
    // The key comes from folder names under the sample root; still, never leave the results root.
    if (!file.startsWith(path.resolve(set.root) + path.sep)) return null;
    return (await isFile(file)) ? file : null;
  }
  const entries = await fs.readdir(sample.dir);
  let newest: { file: string; time: number } | null = null;
  for (const name of entries.filter((n) => OURS.test(n))) {
    const file = path.join(sample.dir, name);
    const info = await fs.stat(file);
    if (info.isFile() && (!newest || info.mtimeMs > newest.time)) newest = { file, time: info.mtimeMs };
  }
  return newest?.file ?? null;
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (info) => info.isFile(),
    () => false,
  );
}
