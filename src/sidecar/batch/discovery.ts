// Finding the work in a folder: images with a saved edit spec (`cat.png` + `cat.png.clipdrag-edit.json`) and
// DragBench sample folders (`original_image.png` + `meta_data.pkl`), skipping CLIPDrag's own outputs. Paths are
// returned relative to the folder with `/` separators, in a stable order. Symbolic links to folders are not
// followed (a link could lead out of the folder or into a cycle); linked files are checked when they are read.
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { imagePathForSpec, isClipdragArtifactName, EDIT_SPEC_SUFFIX } from '../../shared/edit-spec';
import type { BatchItemSource } from '../../shared/batch';
import { DRAGBENCH_IMAGE, DRAGBENCH_META, dragBenchFiles } from './dragbench';

export interface DiscoveredItem {
  source: BatchItemSource;
  /** The source image, relative to the folder. */
  image: string;
  /** The spec file or meta_data.pkl, relative to the folder. */
  specFile: string;
}

/** Folders never searched: hidden ones (.git, .vscode, ...) and dependency trees. */
function isSkippedFolder(name: string): boolean {
  return name.startsWith('.') || name === 'node_modules';
}

/** Every item under `root` (an absolute, real folder path), sorted by image path. */
export async function discoverBatchItems(root: string): Promise<DiscoveredItem[]> {
  const items: DiscoveredItem[] = [];
  const pending: string[] = [''];
  while (pending.length > 0) {
    const relativeDir = pending.pop()!;
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(root, relativeDir), { withFileTypes: true });
    } catch (error) {
      // The top folder must be readable; a sub-folder that is not is left out (nothing in it can run anyway).
      if (relativeDir === '') throw error;
      continue;
    }
    const join = (name: string) => (relativeDir === '' ? name : `${relativeDir}/${name}`);
    const fileNames = new Set(entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name));
    const specImages = new Set<string>();

    for (const name of [...fileNames].sort()) {
      if (!name.endsWith(EDIT_SPEC_SUFFIX)) continue;
      const imageName = imagePathForSpec(name);
      // A spec saved for one of our own results (or a misnamed file) is not a batch item.
      if (imageName === undefined || isClipdragArtifactName(imageName)) continue;
      specImages.add(imageName);
      items.push({ source: 'spec', image: join(imageName), specFile: join(name) });
    }
    // A sample whose image also has a saved spec runs that spec (the user's edit wins over the benchmark's).
    if (fileNames.has(DRAGBENCH_META) && fileNames.has(DRAGBENCH_IMAGE) && !specImages.has(DRAGBENCH_IMAGE)) {
      const files = dragBenchFiles(relativeDir);
      items.push({ source: 'dragbench', image: files.image, specFile: files.meta });
    }
    for (const entry of entries) {
      if (entry.isDirectory() && !isSkippedFolder(entry.name)) pending.push(join(entry.name));
    }
  }
  return items.sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
}
