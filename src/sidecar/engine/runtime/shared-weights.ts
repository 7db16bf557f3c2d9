/**
 * Checkpoint tensors held once per process and fed to every session that takes them as inputs
 * (`externalWeights: 'shared'`). Each tensor is read from its file the first time a session needs it and
 * dropped when the last session that uses it is released, so the weights of a model are resident once
 * however many graphs over it are alive, and not at all between stages that release every graph.
 */
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { WeightInput } from '../onnx/weight-inputs';
import { ExternalWeightsError } from './model-folder';

interface HeldTensor {
  readonly tensor: ort.Tensor;
  readonly realPath: string;
  readonly bytes: number;
  users: number;
}

/** The tensors one session feeds, and the keys to give back when it is released. */
export interface WeightFeeds {
  readonly tensors: Readonly<Record<string, ort.Tensor>>;
  readonly keys: readonly string[];
}

const ARRAY_FOR: Partial<Record<WeightInput['dtype'], (buffer: ArrayBuffer) => ort.Tensor['data']>> = {
  float32: (b) => new Float32Array(b),
  float16: (b) => new Uint16Array(b),
  float64: (b) => new Float64Array(b),
  int64: (b) => new BigInt64Array(b),
  int32: (b) => new Int32Array(b),
  uint8: (b) => new Uint8Array(b),
  bool: (b) => new Uint8Array(b),
};

export class SharedWeights {
  private readonly held = new Map<string, HeldTensor>();

  /** Takes (reading where not yet held) every weight of one session. */
  acquire(inputs: readonly WeightInput[]): WeightFeeds {
    const tensors: Record<string, ort.Tensor> = {};
    const keys: string[] = [];
    // Each checkpoint is opened once per acquire, and its identity read from the open file.
    const files = new Map<string, OpenCheckpoint>();
    try {
      for (const input of inputs) {
        let file = files.get(input.file);
        if (file === undefined) {
          file = openCheckpoint(input.file);
          files.set(input.file, file);
        }
        const { realPath } = file;
        // The file's identity is part of the key: a checkpoint replaced under the same path is read anew.
        const key = `${file.identity}|${input.offset}|${input.length}|${input.dtype}|${input.shape.join('x')}`;
        let entry = this.held.get(key);
        if (!entry) {
          entry = { tensor: readTensor(file, input), realPath, bytes: input.length, users: 0 };
          this.held.set(key, entry);
        }
        entry.users++;
        keys.push(key);
        tensors[input.name] = entry.tensor;
      }
    } catch (error) {
      this.release(keys);
      throw error;
    } finally {
      for (const { fd } of files.values()) fs.closeSync(fd);
    }
    return { tensors, keys };
  }

  /** Gives back one session's weights; a tensor no session uses any more is dropped. */
  release(keys: readonly string[]): void {
    for (const key of keys) {
      const entry = this.held.get(key);
      if (!entry) continue;
      if (--entry.users === 0) this.held.delete(key);
    }
  }

  /** Bytes held per checkpoint file (real path). */
  heldBytes(): Map<string, number> {
    const byFile = new Map<string, number>();
    for (const { realPath, bytes } of this.held.values()) byFile.set(realPath, (byFile.get(realPath) ?? 0) + bytes);
    return byFile;
  }
}

interface OpenCheckpoint {
  readonly fd: number;
  readonly realPath: string;
  readonly identity: string;
}

function openCheckpoint(file: string): OpenCheckpoint {
  try {
    const realPath = fs.realpathSync(file);
    const fd = fs.openSync(realPath, 'r');
    const stat = fs.fstatSync(fd);
    return { fd, realPath, identity: `${realPath}|${stat.dev}:${stat.ino}|${stat.size}|${stat.mtimeMs}` };
  } catch (error) {
    throw new ExternalWeightsError(`the checkpoint file ${file} that the model reads weights from cannot be opened: ${messageOf(error)}`);
  }
}

function readTensor({ fd, realPath }: OpenCheckpoint, input: WeightInput): ort.Tensor {
  const wrap = ARRAY_FOR[input.dtype];
  if (!wrap) throw new ExternalWeightsError(`weight ${input.name} has element type ${input.dtype}, which the engine does not feed`);
  // A buffer of its own per tensor: aligned for its element type wherever the tensor lies in the file.
  const buffer = new ArrayBuffer(input.length);
  const view = new Uint8Array(buffer);
  let done = 0;
  while (done < input.length) {
    const n = fs.readSync(fd, view, done, input.length - done, input.offset + done);
    if (n === 0) {
      throw new ExternalWeightsError(
        `the checkpoint ${realPath} ends before weight ${input.name} (bytes ${input.offset}–${input.offset + input.length}); the file is truncated or changed since the model was opened`,
      );
    }
    done += n;
  }
  return new ort.Tensor(input.dtype as ort.Tensor.Type, wrap(buffer) as never, [...input.shape]);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
