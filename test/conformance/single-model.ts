/** For handlers of single-model cases: the one model folder a case's `model` field names. */
import { modelFolders } from './case';
import type { GoldenCase } from './golden';

export function singleModelFolder(entry: GoldenCase, fixtureDir: string): string {
  const [folder, ...rest] = modelFolders(entry, fixtureDir);
  if (!folder || rest.length > 0) throw new Error(`case ${entry.name}: expected one model folder, "model" is "${entry.model}"`);
  return folder;
}
