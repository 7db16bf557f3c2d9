/**
 * onnxruntime's optimised model, kept in the session folder so that a later compile of the same graph
 * loads it instead of running the graph optimiser again (measured in docs/runtime.md).
 *
 * onnxruntime keeps unchanged external initializers as references to the same locations, so the file
 * is small and must live next to the weight links. At level `all`, though, the CPU provider's layout
 * pass copies convolution kernels, reordered, into it; when that copy is large the cache keeps level
 * `extended` instead (see sessions.ts). The file carries choices made for one provider and the
 * checkpoints it was built from, so its name holds a fingerprint of the onnxruntime version, provider,
 * level, CPU model and the checkpoint files' identities.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphOptimizationLevel } from './types';

const PREFIX = 'optimized-';

export function optimizedModelPath(folder: string, provider: string, level: GraphOptimizationLevel, weightsFingerprint: string): string {
  const fingerprint = createHash('sha256')
    .update([ort.env.versions.common, provider, level, process.arch, os.cpus()[0]?.model ?? '', weightsFingerprint].join('\n'))
    .digest('hex')
    .slice(0, 16);
  return path.join(folder, `${PREFIX}${provider}-${level}-${fingerprint}.onnx`);
}

/** Removes optimised models of this provider and level made for other weights, CPUs or versions. */
export function removeStaleOptimizedModels(current: string): void {
  const folder = path.dirname(current);
  const family = path.basename(current).replace(/[0-9a-f]{16}\.onnx$/, '');
  for (const name of fs.readdirSync(folder)) {
    if (name.startsWith(family) && name.endsWith('.onnx') && path.join(folder, name) !== current) {
      fs.rmSync(path.join(folder, name), { force: true });
    }
  }
}

let temporaryCounter = 0;

/**
 * A fresh temporary name for onnxruntime to write to, renamed into place once the session exists, so
 * that no other compile ever loads half a file.
 */
export function temporaryOptimizedModelPath(target: string): string {
  return target.replace(/\.onnx$/, `.${process.pid}-${++temporaryCounter}.tmp.onnx`);
}
