// Reading and writing the editor's files through VS Code's file system: the edit spec next to the image (written
// atomically: a temporary file in the same folder renamed over the target) and hot-exit backups of unsaved edits.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EDIT_SPEC_VERSION, formatSpecIssues, parseEditSpec, serializeEditSpec, specPathForImage, type EditSpec } from '../../shared/edit-spec';
import { modelFromSpec, parseEditorEdit, specFromModel, type EditorModel, type MaskStroke } from '../../shared/editor-model';

export type SpecFileState =
  | { kind: 'missing' }
  | { kind: 'ok'; spec: EditSpec; text: string }
  /** Present but not a usable spec; `message` lists every problem. */
  | { kind: 'invalid'; text: string; message: string };

export function specUriForImage(imageUri: vscode.Uri): vscode.Uri {
  return imageUri.with({ path: specPathForImage(imageUri.path) });
}

export async function readSpecFile(specUri: vscode.Uri): Promise<SpecFileState> {
  let bytes: Uint8Array;
  try {
    bytes = await vscode.workspace.fs.readFile(specUri);
  } catch (error) {
    if (error instanceof vscode.FileSystemError && error.code === 'FileNotFound') return { kind: 'missing' };
    throw new Error(`The edit spec ${specUri.fsPath} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = new TextDecoder().decode(bytes);
  const validation = parseEditSpec(text);
  if (!validation.ok) return { kind: 'invalid', text, message: formatSpecIssues(validation.issues, path.posix.basename(specUri.path)) };
  return { kind: 'ok', spec: validation.spec, text };
}

/** Writes `text` to `target` so that readers see the old file or the new one, never a part. */
export async function writeFileAtomic(target: vscode.Uri, text: string): Promise<void> {
  const name = path.posix.basename(target.path);
  const temporary = vscode.Uri.joinPath(target, '..', `.${name}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    await vscode.workspace.fs.writeFile(temporary, new TextEncoder().encode(text));
    await vscode.workspace.fs.rename(temporary, target, { overwrite: true });
  } catch (error) {
    await vscode.workspace.fs.delete(temporary).then(undefined, () => undefined);
    throw new Error(`Could not write ${target.fsPath}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function specText(spec: EditSpec): string {
  return serializeEditSpec(spec);
}

// ---------------------------------------------------------------------------------------------------------------
// Hot-exit backups: the whole model (strokes unrasterised), so restoring brings back exactly what was there.

const BACKUP_FORMAT = 'clipdrag-editor-backup';
const BACKUP_VERSION = 1;

interface BackupFile {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  /** The model with its mask base as the spec writes it (file path or inline RLE), without strokes. */
  spec: EditSpec;
  strokes: MaskStroke[];
}

export async function writeBackup(destination: vscode.Uri, model: EditorModel): Promise<void> {
  const base = model.mask.base;
  const backup: BackupFile = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    spec: specFromModel(model, base.kind === 'none' ? undefined : base.kind === 'file' ? base.path : base.mask),
    strokes: [...model.mask.strokes],
  };
  await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(destination, '..'));
  await vscode.workspace.fs.writeFile(destination, new TextEncoder().encode(JSON.stringify(backup)));
}

/** Reads a backup written by `writeBackup`; throws with a sentence saying what is wrong. */
export async function readBackup(source: vscode.Uri): Promise<EditorModel> {
  const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(source));
  const value = JSON.parse(text) as Partial<BackupFile>;
  if (value.format !== BACKUP_FORMAT || value.version !== BACKUP_VERSION) throw new Error(`${source.fsPath} is not a CLIPDrag editor backup of version ${BACKUP_VERSION}`);
  const validation = parseEditSpec(JSON.stringify(value.spec ?? null));
  if (!validation.ok || validation.spec.version !== EDIT_SPEC_VERSION) throw new Error(`The backup ${source.fsPath} holds an invalid spec`);
  const strokes: MaskStroke[] = [];
  for (const stroke of Array.isArray(value.strokes) ? value.strokes : []) {
    const edit = parseEditorEdit({ kind: 'maskStroke', stroke });
    if (typeof edit === 'string' || edit.kind !== 'maskStroke') throw new Error(`The backup ${source.fsPath} holds an invalid mask stroke: ${String(edit)}`);
    strokes.push(edit.stroke);
  }
  const model = modelFromSpec(validation.spec);
  return { ...model, mask: { base: model.mask.base, strokes } };
}
