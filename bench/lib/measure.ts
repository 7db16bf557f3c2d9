/** Timing and memory helpers: the median of N timed repetitions after a warm-up, RSS now and at peak. */
import fs from 'node:fs';

export interface Timing {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly samplesMs: readonly number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs `fn` `warmup` times untimed, then `repeat` times timed (each repetition on its own), and returns
 * the median and range in milliseconds.
 */
export async function timeRepeated(fn: () => unknown, options: { repeat: number; warmup: number }): Promise<Timing> {
  if (!Number.isInteger(options.repeat) || options.repeat < 1) throw new RangeError(`repeat must be a positive integer, got ${options.repeat}`);
  for (let i = 0; i < options.warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < options.repeat; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples), samplesMs: samples };
}

/** Resident set size of this process now, in MB. */
export function rssMb(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/** The largest resident set size this process has had, in MB (native allocations included). */
export function peakRssMb(): number {
  return (process.resourceUsage().maxRSS * 1024) / 2 ** 20;
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * This process's resident memory split into anonymous (private allocations) and file-backed pages, in
 * MB; Linux only (undefined elsewhere). File-backed pages of a memory-mapped file are the page cache:
 * shared, and counted again in RSS for every mapping of the same file.
 */
export function residentSplitMb(): { anonMb: number; fileMb: number } | undefined {
  let status: string;
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 };
}
