// Resolving the paths an edit spec (or a DragBench pickle) names, without letting them reach outside the folder
// they belong to: no `..` escapes, no absolute paths elsewhere, no symbolic links that lead out.
import { realpath } from 'node:fs/promises';
import * as path from 'node:path';
import type { ErrorKind } from '../../shared/error-kind';

export type PathSafetyProblem = 'invalid' | 'outside' | 'not-found';

export class PathSafetyError extends Error {
  override readonly name = 'PathSafetyError';
  readonly kind: ErrorKind = 'invalid-input';
  constructor(
    readonly problem: PathSafetyProblem,
    message: string,
    /** The path as it was written. */
    readonly namedPath: string,
    readonly baseDir: string,
  ) {
    super(message);
  }
}

export interface ResolveInsideOptions {
  /** What the path is, for messages: "mask", "image", ... (default "file"). */
  what?: string;
  /** Where the path was written, for messages (a spec file name, a pickle). */
  namedBy?: string;
  /** The target must exist (default true). Otherwise its deepest existing ancestor is checked instead. */
  mustExist?: boolean;
}

/** True when `candidate` is `base` or lies below it (both absolute; compared as written, no link resolution). */
export function isPathInside(base: string, candidate: string): boolean {
  const relative = path.relative(base, candidate);
  if (relative === '') return true;
  if (path.isAbsolute(relative)) return false; // another drive on Windows
  return relative !== '..' && !relative.startsWith(`..${path.sep}`);
}

/**
 * Resolves `namedPath` (relative to `baseDir`, or absolute) and returns its real path (links resolved), provided it
 * stays inside `baseDir`'s real path. Throws a `PathSafetyError` that says what was refused and what to do.
 */
export async function resolveInsideFolder(baseDir: string, namedPath: string, options: ResolveInsideOptions = {}): Promise<string> {
  const what = options.what ?? 'file';
  const where = options.namedBy ? ` named by ${options.namedBy}` : '';
  const fail = (problem: PathSafetyProblem, detail: string): never => {
    throw new PathSafetyError(problem, `The ${what} "${namedPath}"${where} ${detail}`, namedPath, baseDir);
  };

  if (namedPath.length === 0) fail('invalid', 'is an empty path; name a file inside the folder.');
  if (namedPath.includes('\0')) fail('invalid', 'contains a NUL character; name a plain file path.');

  const base = path.resolve(baseDir);
  const candidate = path.resolve(base, namedPath);
  const outsideAdvice = `CLIPDrag only reads files inside ${base}: move the ${what} into that folder and name it relative to it.`;
  if (!isPathInside(base, candidate)) fail('outside', `points outside the folder. ${outsideAdvice}`);

  let realBase: string;
  try {
    realBase = await realpath(base);
  } catch (error) {
    return fail('not-found', `cannot be resolved: the folder ${base} is not accessible (${errorCode(error)}).`);
  }

  const realCandidate = await realPathOrAncestor(candidate, options.mustExist ?? true, () =>
    fail('not-found', `does not exist in ${path.dirname(candidate)}; check the name, or remove it from the spec.`),
  );
  if (!isPathInside(realBase, realCandidate)) {
    fail('outside', `leads through a symbolic link to ${realCandidate}, outside the folder. ${outsideAdvice}`);
  }
  return realCandidate;
}

/** The real path of `target`; when it does not exist and that is allowed, the real path of its deepest existing ancestor joined with the rest. */
async function realPathOrAncestor(target: string, mustExist: boolean, onMissing: () => never): Promise<string> {
  try {
    return await realpath(target);
  } catch (error) {
    if (!isMissing(error)) throw error;
    if (mustExist) onMissing();
  }
  const rest: string[] = [];
  let current = target;
  for (;;) {
    const parent = path.dirname(current);
    rest.unshift(path.basename(current));
    if (parent === current) return target;
    current = parent;
    try {
      return path.join(await realpath(current), ...rest);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }
}

function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? String(error);
}
