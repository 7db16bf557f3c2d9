/**
 * The session folder of one serialised model: `<cacheDir>/<model hash>/` holds `model.onnx` and, for
 * every checkpoint file the model reads as external data, a hard link named by its `location`.
 *
 * onnxruntime resolves external data relative to the model file and refuses locations that are absolute,
 * contain `..` or are symlinks leading out of the folder. A hard link is none of these, so checkpoints
 * are read in place with no copy. Where a link cannot be made (another filesystem, no permission), the
 * file's bytes are handed to onnxruntime in memory instead, which costs the file's size in RAM while
 * the session is created.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { SerializedModel } from '../onnx/serialize';
import type { ExternalWeightsMode, ExternalWeightsReport } from './types';

export const MODEL_FILE = 'model.onnx';

export interface PreparedModelFolder {
  readonly folder: string;
  readonly modelPath: string;
  readonly weights: readonly ExternalWeightsReport[];
  /** External data to hand over in memory (for files that could not be linked). */
  readonly inMemory: readonly { readonly path: string; readonly data: Uint8Array }[];
  /** The real path of each entry of `weights`' checkpoint file. */
  readonly realPaths: readonly string[];
  /** Identity of the checkpoint files (real path, size, mtime), for keying derived caches. */
  readonly weightsFingerprint: string;
}

export class ExternalWeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExternalWeightsError';
  }
}

export function prepareModelFolder(cacheDir: string, model: SerializedModel, mode: ExternalWeightsMode): PreparedModelFolder {
  const folder = path.join(cacheDir, model.hash);
  fs.mkdirSync(folder, { recursive: true });
  const modelPath = path.join(folder, MODEL_FILE);
  if (!sameSize(modelPath, model.bytes.byteLength)) writeAtomically(modelPath, model.bytes);

  const weights: ExternalWeightsReport[] = [];
  const inMemory: { path: string; data: Uint8Array }[] = [];
  const identities: string[] = [];
  const realPaths: string[] = [];
  for (const { file, location } of model.externalFiles) {
    if (path.basename(location) !== location || location === '..') {
      throw new ExternalWeightsError(`external data location "${location}" must be a plain file name (it is resolved inside ${folder})`);
    }
    const source = checkpointStat(file);
    identities.push(`${source.realPath}|${source.stat.size}|${source.stat.mtimeMs}`);
    realPaths.push(source.realPath);
    const linkPath = path.join(folder, location);
    const linkProblem = mode === 'memory' ? undefined : ensureHardLink(source.realPath, source.stat, linkPath);
    if (mode !== 'memory' && linkProblem === undefined) {
      weights.push({ file, location, mode: 'link', bytes: source.stat.size });
      continue;
    }
    if (mode === 'link') {
      throw new ExternalWeightsError(
        `cannot hard-link the checkpoint ${file} into the session folder ${folder}: ${linkProblem}. ` +
          `Put the session cache on the same filesystem as the model files, or use externalWeights "auto" or "memory".`,
      );
    }
    // Bytes handed over in memory take precedence over a file of the same name in the folder.
    inMemory.push({ path: location, data: fs.readFileSync(source.realPath) });
    weights.push({ file, location, mode: 'memory', bytes: source.stat.size, ...(linkProblem ? { linkProblem } : {}) });
  }
  return { folder, modelPath, weights, inMemory, realPaths, weightsFingerprint: identities.join('\n') };
}

function checkpointStat(file: string): { realPath: string; stat: fs.Stats } {
  try {
    // Model stores (the Hugging Face cache) expose files as symlinks; link the file they point to.
    const realPath = fs.realpathSync(file);
    return { realPath, stat: fs.statSync(realPath) };
  } catch (error) {
    throw new ExternalWeightsError(`the checkpoint file ${file} that the model reads weights from cannot be opened: ${messageOf(error)}`);
  }
}

/**
 * Makes `linkPath` a hard link to `target`, replacing a link to anything else (a checkpoint re-downloaded
 * under the same path is a new file). Returns why it could not, or undefined on success.
 */
function ensureHardLink(target: string, targetStat: fs.Stats, linkPath: string): string | undefined {
  try {
    const existing = fs.statSync(linkPath, { throwIfNoEntry: false });
    if (existing && existing.ino === targetStat.ino && existing.dev === targetStat.dev) return undefined;
    // Link under a temporary name, then rename over: another process may be preparing the same folder.
    const temp = `${linkPath}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    fs.linkSync(target, temp);
    fs.renameSync(temp, linkPath);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EXDEV') return 'the checkpoint is on another filesystem';
    if (code === 'EPERM' || code === 'EACCES') return `no permission to hard-link it (${code})`;
    return messageOf(error);
  }
}

function sameSize(file: string, size: number): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.size === size;
}

/** Writes a file under a temporary name and renames it into place, so readers never see half a file. */
export function writeAtomically(file: string, bytes: Uint8Array): void {
  const temp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temp, bytes);
  fs.renameSync(temp, file);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
