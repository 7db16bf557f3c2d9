/** Benchmark results: the JSON written per run, the previous run to compare with, and the table. */
import fs from 'node:fs';
import path from 'node:path';
import type { MachineDescription } from './machine';
import type { ComparisonRow, Configuration, Flags, Metrics } from './types';

export interface ConfigurationResult {
  readonly configuration: string;
  readonly params: Omit<Configuration, 'name'>;
  readonly metrics: Metrics;
  /** Peak resident set size of the child process that measured this configuration. */
  readonly peakRssMb: number;
  readonly wallS: number;
  /** Why the configuration has no metrics: its measurement failed (e.g. the child was killed for memory). */
  readonly error?: string;
}

export interface BenchmarkRun {
  readonly benchmark: string;
  readonly description: string;
  /** ISO date and time of the run. */
  readonly date: string;
  readonly machine: MachineDescription;
  readonly machineSlug: string;
  readonly settings: { readonly repeat: number; readonly warmup: number; readonly flags: Flags };
  readonly results: readonly ConfigurationResult[];
  /** The benchmark's rows derived from the results (`Benchmark.compare`), when it has any. */
  readonly comparison?: readonly ComparisonRow[];
}

/** `<dir>/<name>-<YYYY-MM-DD>-<machine>.json`, numbered `-2`, `-3`... when that day already has one. */
export function resultPath(dir: string, run: BenchmarkRun): string {
  const base = `${run.benchmark}-${run.date.slice(0, 10)}-${run.machineSlug}`;
  for (let n = 1; ; n++) {
    const file = path.join(dir, n === 1 ? `${base}.json` : `${base}-${n}.json`);
    if (!fs.existsSync(file)) return file;
  }
}

export function saveRun(dir: string, run: BenchmarkRun): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = resultPath(dir, run);
  fs.writeFileSync(file, `${JSON.stringify(run, null, 2)}\n`);
  return file;
}

/** The most recent earlier run of the same benchmark on the same kind of machine, if any. */
export function previousRun(dir: string, benchmark: string, machineSlug: string): BenchmarkRun | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const runs: BenchmarkRun[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(`${benchmark}-`) || !name.endsWith('.json')) continue;
    try {
      const run = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as BenchmarkRun;
      if (run.benchmark === benchmark && run.machineSlug === machineSlug) runs.push(run);
    } catch {
      // Not a result file of ours: ignore it.
    }
  }
  return runs.sort((a, b) => a.date.localeCompare(b.date)).at(-1);
}

function formatValue(value: number | string | boolean): string {
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  return value.toFixed(magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3);
}

function change(now: number | string | boolean, before: number | string | boolean | undefined): string {
  if (typeof now !== 'number' || typeof before !== 'number' || before === 0) return '';
  const percent = ((now - before) / Math.abs(before)) * 100;
  return ` (${percent >= 0 ? '+' : ''}${percent.toFixed(0)}%)`;
}

/**
 * One row per configuration, one column per metric (and the peak RSS); configurations that report
 * different metrics get tables of their own. With a previous run, each number is followed by its
 * change against it.
 */
export function formatTable(run: BenchmarkRun, previous?: BenchmarkRun): string {
  const groups: ConfigurationResult[][] = [];
  // A failed configuration has no metrics; the runner prints its error after the table.
  for (const result of run.results.filter((r) => r.error === undefined)) {
    const last = groups.at(-1);
    const signature = (r: ConfigurationResult) => Object.keys(r.metrics).join('|');
    if (last && signature(last[0]!) === signature(result)) last.push(result);
    else groups.push([result]);
  }
  const tables = groups.map((results) => formatGroup(results, previous));
  if (previous) tables.push(`(changes against the run of ${previous.date})`);
  return tables.join('\n\n');
}

function formatGroup(results: readonly ConfigurationResult[], previous: BenchmarkRun | undefined): string {
  const metricNames = Object.keys(results[0]!.metrics);
  const header = ['configuration', ...metricNames, 'peakRssMb'];
  const rows = results.map((result) => {
    const before = previous?.results.find((r) => r.configuration === result.configuration);
    const cell = (value: number | string | boolean | undefined, old: number | string | boolean | undefined) =>
      value === undefined ? '' : `${formatValue(value)}${change(value, old)}`;
    return [
      result.configuration,
      ...metricNames.map((name) => cell(result.metrics[name], before?.metrics[name])),
      cell(result.peakRssMb, before?.peakRssMb),
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The rows of `Benchmark.compare`: one per row, one column per metric (rows with other metrics get their own table). */
export function formatComparison(rows: readonly ComparisonRow[]): string {
  const groups: ComparisonRow[][] = [];
  for (const row of rows) {
    const last = groups.at(-1);
    if (last && Object.keys(last[0]!.metrics).join('|') === Object.keys(row.metrics).join('|')) last.push(row);
    else groups.push([row]);
  }
  return groups
    .map((group) => {
      const names = Object.keys(group[0]!.metrics);
      const header = ['comparison', ...names];
      const cells = group.map((row) => [row.name, ...names.map((name) => formatValue(row.metrics[name]!))]);
      const widths = header.map((title, i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)));
      const line = (c: string[]) => c.map((text, i) => (i === 0 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!))).join('  ');
      return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
    })
    .join('\n\n');
}
