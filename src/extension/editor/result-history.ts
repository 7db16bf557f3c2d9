// The results of one image: the `<stem>.clipdrag.png`, `<stem>.clipdrag-2.png`, ... files next to it (the names the
// engine writes), newest first. `cat.png` and `cat.jpg` share a stem, so a result whose recipe names another source
// file is left out. The recipe also says which mode made the result (the list shows it, to compare modes).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isEditMode, type EditMode } from '../../shared/edit-parameters';

export interface ResultFile {
  uri: vscode.Uri;
  name: string;
  /** `<stem>.clipdrag[-n].json`, when it exists. */
  recipeUri?: vscode.Uri;
  modified: number;
  /** 1 for `<stem>.clipdrag.png`, n for `<stem>.clipdrag-n.png`. */
  index: number;
  /** The mode its recipe names (`spec.mode`); absent without a readable recipe. */
  mode?: EditMode;
}

/** `<stem>.clipdrag.png` → 1, `<stem>.clipdrag-7.png` → 7, anything else → undefined. */
export function resultIndex(imageName: string, fileName: string): number | undefined {
  const stem = path.posix.parse(imageName).name;
  if (!fileName.startsWith(`${stem}.clipdrag`)) return undefined;
  const match = /^\.clipdrag(?:-([1-9]\d*))?\.png$/i.exec(fileName.slice(stem.length));
  if (!match) return undefined;
  return match[1] === undefined ? 1 : Number(match[1]);
}

export async function listResults(imageUri: vscode.Uri): Promise<ResultFile[]> {
  const folder = vscode.Uri.joinPath(imageUri, '..');
  const imageName = path.posix.basename(imageUri.path);
  let entries: [string, vscode.FileType][];
  try {
    entries = await vscode.workspace.fs.readDirectory(folder);
  } catch {
    return [];
  }
  const names = new Set(entries.filter(([, type]) => type === vscode.FileType.File).map(([name]) => name));
  const results: ResultFile[] = [];
  for (const name of names) {
    const index = resultIndex(imageName, name);
    if (index === undefined) continue;
    const uri = vscode.Uri.joinPath(folder, name);
    const recipeName = name.replace(/\.png$/i, '.json');
    const recipeUri = names.has(recipeName) ? vscode.Uri.joinPath(folder, recipeName) : undefined;
    const recipe = recipeUri ? await readRecipeFacts(recipeUri) : undefined;
    if (recipe?.sourceFile !== undefined && recipe.sourceFile !== imageName) continue;
    let modified = 0;
    try {
      modified = (await vscode.workspace.fs.stat(uri)).mtime;
    } catch {
      continue; // removed meanwhile
    }
    results.push({ uri, name, recipeUri, modified, index, ...(recipe?.mode ? { mode: recipe.mode } : {}) });
  }
  return results.sort((a, b) => b.modified - a.modified || b.index - a.index);
}

/**
 * The source file and mode a recipe names. A recipe that cannot be read is not evidence against the result: it is
 * kept, without a mode.
 */
async function readRecipeFacts(recipeUri: vscode.Uri): Promise<{ sourceFile?: string; mode?: EditMode }> {
  try {
    const recipe = JSON.parse(new TextDecoder().decode(await vscode.workspace.fs.readFile(recipeUri))) as { source?: { file?: unknown }; spec?: { mode?: unknown } };
    const sourceFile = recipe.source?.file;
    const mode = recipe.spec?.mode;
    return { ...(typeof sourceFile === 'string' ? { sourceFile } : {}), ...(isEditMode(mode) ? { mode } : {}) };
  } catch {
    return {};
  }
}
