/**
 * Which execution provider ran each node, read from onnxruntime's profile of one run. A session created
 * on a GPU provider can still place nodes that provider lacks kernels for on the CPU; profiling is the
 * only place onnxruntime-node exposes that (its placement log goes to the native stderr).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NodePlacement } from './types';

interface ProfileEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly args?: { readonly provider?: string };
}

const KERNEL_SUFFIX = '_kernel_time';

/** Counts the distinct nodes per provider in a Chrome-trace profile written by onnxruntime. */
export function countNodePlacement(events: readonly ProfileEvent[]): NodePlacement {
  const nodes = new Map<string, Set<string>>();
  for (const event of events) {
    const provider = event.args?.provider;
    if (event.cat !== 'Node' || !provider || !event.name?.endsWith(KERNEL_SUFFIX)) continue;
    let names = nodes.get(provider);
    if (!names) nodes.set(provider, (names = new Set()));
    names.add(event.name);
  }
  return Object.fromEntries([...nodes].map(([provider, names]) => [provider, names.size]));
}

/**
 * Reads and deletes the profile files onnxruntime wrote for `prefix` (it appends a timestamp to the
 * prefix and does not tell the Node binding the name), and returns the placement they record.
 */
export function collectNodePlacement(prefix: string): NodePlacement {
  const folder = path.dirname(prefix);
  const start = path.basename(prefix);
  const files = fs.readdirSync(folder).filter((name) => name.startsWith(start) && name.endsWith('.json'));
  if (files.length === 0) throw new Error(`onnxruntime wrote no profile for ${prefix}`);
  const events: ProfileEvent[] = [];
  for (const name of files) {
    const file = path.join(folder, name);
    events.push(...(JSON.parse(fs.readFileSync(file, 'utf8')) as ProfileEvent[]));
    fs.rmSync(file, { force: true });
  }
  return countNodePlacement(events);
}
