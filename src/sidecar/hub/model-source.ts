// Where a model comes from: a folder on disk, or a Hugging Face hub repo at a revision.
// A folder path is accepted anywhere a repo id is, so settings and edit recipes hold one plain string.
import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ModelStoreError } from './errors';

export type ModelSource =
  | {
      type: 'hub';
      /** `owner/name`. */
      repoId: string;
      /** Branch, tag or commit; `main` when the string had no `@revision`. */
      revision: string;
    }
  | {
      type: 'local';
      /** Absolute path of the model folder, or of a single-file checkpoint (`file`). */
      path: string;
      /** A single-file Stable Diffusion checkpoint (`.safetensors`, original layout) rather than a folder. */
      file?: true;
    };

/** Endings of Python pickle checkpoints: loading one can run any code it carries, so they are never opened. */
const PICKLE_ENDINGS = ['.ckpt', '.pt', '.pth', '.bin', '.pkl', '.pickle'];

export const DEFAULT_REVISION = 'main';

/** Hub rule: a repo name (and owner) has at most 96 characters. */
const MAX_REPO_PART_LENGTH = 96;

export interface ParseModelSourceOptions {
  /** Folder that relative paths are resolved against (the workspace folder); default: the process's cwd. */
  baseDir?: string;
  /** Replaces `~`; default: the user's home folder. */
  homeDir?: string;
}

/**
 * Parses `owner/name`, `owner/name@revision`, or a folder path (absolute, `~/...`, `./...`, or any relative path
 * that names an existing folder; a folder shadows a repo id of the same spelling, as in diffusers).
 */
export function parseModelSource(spec: string, options: ParseModelSourceOptions = {}): ModelSource {
  const text = spec.trim();
  if (text === '') throw new ModelStoreError('INVALID_SOURCE', 'No model given: expected a hub repo id (owner/name[@revision]) or a folder path.');
  const baseDir = options.baseDir ?? process.cwd();
  const home = options.homeDir ?? homedir();

  if (looksLikePath(text)) {
    const absolute = resolveUserPath(text, baseDir, home);
    if (isFile(absolute)) return singleFileSource(absolute);
    if (!isDirectory(absolute)) {
      throw new ModelStoreError('INVALID_SOURCE', `Model folder not found: ${absolute} (from "${text}").`);
    }
    return { type: 'local', path: absolute };
  }

  const relativeFolder = path.resolve(baseDir, text);
  if (isDirectory(relativeFolder)) return { type: 'local', path: relativeFolder };
  if (isFile(relativeFolder)) return singleFileSource(relativeFolder);

  const at = text.indexOf('@');
  const repoId = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : text.slice(at + 1);
  const repoProblem = repoIdProblem(repoId);
  if (repoProblem) {
    throw new ModelStoreError(
      'INVALID_SOURCE',
      `"${text}" is neither a model folder (nothing at ${relativeFolder}) nor a valid hub repo id: ${repoProblem}. ` +
        'Expected owner/name, optionally @branch, @tag or @commit (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5@main).',
    );
  }
  validateRevision(revision, repoId);
  return { type: 'hub', repoId, revision };
}

/** Throws INVALID_SOURCE with the broken rule when `repoId` is not a valid hub model id `owner/name`. */
export function validateRepoId(repoId: string): void {
  const problem = repoIdProblem(repoId);
  if (problem) throw new ModelStoreError('INVALID_SOURCE', `Invalid hub repo id "${repoId}": ${problem}.`);
}

/** Throws INVALID_SOURCE when `revision` cannot be a branch, tag or commit (it also names a file in the cache). */
export function validateRevision(revision: string, repoId = 'the repo'): void {
  const problem = revisionProblem(revision);
  if (problem) throw new ModelStoreError('INVALID_SOURCE', `Invalid revision "${revision}" for ${repoId}: ${problem}.`);
}

export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** The string form that parses back to the same source: `owner/name@revision` or the folder path. */
export function formatModelSource(source: ModelSource): string {
  return source.type === 'local' ? source.path : `${source.repoId}@${source.revision}`;
}

/** Expands `~` and resolves relative paths; used for folder settings as well (cache folder). */
export function resolveUserPath(text: string, baseDir: string, home: string = homedir()): string {
  if (text === '~') return home;
  if (text.startsWith('~/') || text.startsWith('~\\')) return path.join(home, text.slice(2));
  return path.resolve(baseDir, text);
}

function looksLikePath(text: string): boolean {
  return (
    path.isAbsolute(text) ||
    path.win32.isAbsolute(text) ||
    text === '.' ||
    text === '..' ||
    text.startsWith('~') ||
    text.startsWith('./') ||
    text.startsWith('../') ||
    text.includes('\\')
  );
}

/** A checkpoint file: `.safetensors` is read in place; a pickle is refused, saying why and what to use. */
function singleFileSource(file: string): ModelSource {
  const lower = file.toLowerCase();
  if (lower.endsWith('.safetensors')) return { type: 'local', path: file, file: true };
  if (PICKLE_ENDINGS.some((ending) => lower.endsWith(ending))) {
    throw new ModelStoreError(
      'INVALID_SOURCE',
      `${file} is a PyTorch pickle checkpoint, which CLIPDrag never loads: unpickling can run any code the file carries. ` +
        'Use the .safetensors version of this model, or convert the checkpoint once with a tool you trust and save it as .safetensors.',
    );
  }
  throw new ModelStoreError('INVALID_SOURCE', `${file} is a file, not a model: expected a model folder, a single-file .safetensors checkpoint or a hub repo id.`);
}

function isFile(candidate: string): boolean {
  try {
    return statSync(candidate).isFile();
  } catch {
    return false;
  }
}

function isDirectory(candidate: string): boolean {
  try {
    return statSync(candidate).isDirectory();
  } catch {
    return false;
  }
}

function repoIdProblem(repoId: string): string | undefined {
  const parts = repoId.split('/');
  if (parts.length !== 2) return 'it must have exactly one "/" between owner and name';
  const [owner, name] = parts as [string, string];
  for (const [label, part] of [['owner', owner], ['name', name]] as const) {
    if (part === '') return `the ${label} is empty`;
    if (part.length > MAX_REPO_PART_LENGTH) return `the ${label} is longer than ${MAX_REPO_PART_LENGTH} characters`;
    if (!/^[A-Za-z0-9_.-]+$/.test(part)) return `the ${label} may only contain letters, digits, "-", "_" and "."`;
    if (!/^\w/.test(part) || !/\w$/.test(part)) return `the ${label} must start and end with a letter, digit or "_"`;
    if (part.includes('--') || part.includes('..')) return `the ${label} may not contain "--" or ".."`;
  }
  if (name.endsWith('.git')) return 'the name may not end with ".git"';
  return undefined;
}

function revisionProblem(revision: string): string | undefined {
  if (revision === '') return 'it is empty (nothing after "@")';
  if (revision.length > 255) return 'it is longer than 255 characters';
  if (!/^[A-Za-z0-9._/+-]+$/.test(revision)) return 'it may only contain letters, digits and "-", "_", ".", "/", "+"';
  if (revision.includes('..') || revision.includes('//')) return 'it may not contain ".." or "//"';
  if (revision.startsWith('/') || revision.endsWith('/') || revision.startsWith('.') || revision.endsWith('.')) {
    return 'it may not start or end with "/" or "."';
  }
  return undefined;
}
