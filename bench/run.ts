/**
 * The bench runner: `npm run bench -- <name> [flags]` (or `node --import tsx bench/run.ts <name> [flags]`).
 *
 * Loads `bench/<name>.ts`, measures each of its configurations in a fresh child process (peak RSS per
 * configuration, native allocations included), writes one JSON per run to
 * `bench/results/<name>-<date>-<machine>.json`, and prints a table that compares with the previous run
 * on the same kind of machine.
 *
 * Runner flags: --repeat N (timed repetitions, default 5), --warmup N (default 1), --only a,b
 * (configurations by name), --json (print the run as one JSON object instead of the table),
 * --no-save (do not write the result file). Other flags go to the benchmark.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeMachine, machineSlug } from './lib/machine';
import { peakRssMb, round } from './lib/measure';
import { formatComparison, formatTable, previousRun, saveRun, type BenchmarkRun, type ConfigurationResult } from './lib/results';
import type { Benchmark, Configuration, Flags, MeasureContext, Metrics } from './lib/types';

const RESULTS_DIR = path.join(__dirname, 'results');
const RUNNER_FLAGS = new Set(['repeat', 'warmup', 'only', 'json', 'save', 'no-save', 'help']);

interface ChildTask {
  readonly benchmark: string;
  readonly configuration: Configuration;
  readonly context: MeasureContext;
}

type ChildReply = { readonly metrics: Metrics; readonly peakRssMb: number } | { readonly error: string };

/** `--key value`, `--key=value` and bare `--flag` (true). */
export function parseFlags(args: readonly string[]): Flags {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}": flags look like --name value`);
    const [key, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (inline !== undefined) flags[key] = inline;
    else if (i + 1 < args.length && !args[i + 1]!.startsWith('--')) flags[key] = args[++i]!;
    else flags[key] = true;
  }
  return flags;
}

function availableBenchmarks(): string[] {
  return fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    // Helper modules live here too: a benchmark is a module that exports one.
    .filter((f) => /^export const benchmark\b/m.test(fs.readFileSync(path.join(__dirname, f), 'utf8')))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function loadBenchmark(name: string): Promise<Benchmark> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || !availableBenchmarks().includes(name)) {
    throw new Error(`no benchmark named "${name}". Available: ${availableBenchmarks().join(', ') || 'none'}`);
  }
  const module = (await import(path.join(__dirname, `${name}.ts`))) as { benchmark?: Benchmark };
  if (!module.benchmark) throw new Error(`bench/${name}.ts does not export a "benchmark"`);
  return module.benchmark;
}

function positiveInteger(value: string | boolean | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < (flag === 'warmup' ? 0 : 1)) throw new Error(`--${flag} needs a ${flag === 'warmup' ? 'non-negative' : 'positive'} integer, got ${value}`);
  return n;
}

/** Measures one configuration in a child process running this file with `--child`. */
function measureInChild(task: ChildTask): Promise<{ metrics: Metrics; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    // --expose-gc lets a benchmark collect garbage before reading a steady-state RSS.
    const execArgv = [...(process.execArgv.includes('tsx') ? process.execArgv : [...process.execArgv, '--import', 'tsx']), '--expose-gc'];
    // The child's stdout goes to our stderr: our stdout is the table or the --json output.
    const child = fork(__filename, ['--child', JSON.stringify(task)], { execArgv, stdio: ['ignore', 2, 'inherit', 'ipc'] });
    let reply: ChildReply | undefined;
    child.on('message', (message: ChildReply) => (reply = message));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (reply && 'error' in reply) reject(new Error(`configuration ${task.configuration.name} failed: ${reply.error}`));
      else if (reply) resolve(reply);
      else reject(new Error(`configuration ${task.configuration.name}: the child process ended (${signal ?? `exit code ${code}`}) without a result`));
    });
  });
}

async function runChild(task: ChildTask): Promise<void> {
  let reply: ChildReply;
  try {
    const benchmark = await loadBenchmark(task.benchmark);
    const metrics = await benchmark.measure(task.configuration, task.context);
    reply = { metrics, peakRssMb: round(peakRssMb(), 1) };
  } catch (error) {
    reply = { error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
  await new Promise<void>((resolve) => process.send!(reply, () => resolve()));
  process.exit(0);
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv[0] === '--child') return runChild(JSON.parse(argv[1]!) as ChildTask);
  const [name, ...rest] = argv;
  if (!name || name.startsWith('--')) {
    console.error(`usage: npm run bench -- <name> [--repeat N] [--warmup N] [--only a,b] [--json] [--no-save] [benchmark flags]\navailable: ${availableBenchmarks().join(', ')}`);
    process.exitCode = name === '--help' ? 0 : 2;
    return;
  }
  const flags = parseFlags(rest);
  const benchmark = await loadBenchmark(name);
  const context: MeasureContext = {
    repeat: positiveInteger(flags.repeat, 5, 'repeat'),
    warmup: positiveInteger(flags.warmup, 1, 'warmup'),
    flags: Object.fromEntries(Object.entries(flags).filter(([key]) => !RUNNER_FLAGS.has(key))),
  };
  let configurations = await benchmark.configurations(context.flags);
  if (typeof flags.only === 'string') {
    const wanted = flags.only.split(',');
    const unknown = wanted.filter((w) => !configurations.some((c) => c.name === w));
    if (unknown.length > 0) throw new Error(`--only: no configuration ${unknown.join(', ')} (there are: ${configurations.map((c) => c.name).join(', ')})`);
    configurations = configurations.filter((c) => wanted.includes(c.name));
  }

  const machine = describeMachine();
  const results: ConfigurationResult[] = [];
  for (const configuration of configurations) {
    if (!flags.json) process.stderr.write(`[bench ${name}] ${configuration.name}...\n`);
    const started = performance.now();
    const { name: configurationName, ...params } = configuration;
    const wallS = () => round((performance.now() - started) / 1000, 1);
    try {
      const measured = await measureInChild({ benchmark: name, configuration, context });
      results.push({ configuration: configurationName, params, metrics: measured.metrics, peakRssMb: measured.peakRssMb, wallS: wallS() });
    } catch (error) {
      // A failed configuration (one the machine cannot fit, say) is a result too: the others are kept and saved.
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`${message}\n`);
      results.push({ configuration: configurationName, params, metrics: {}, peakRssMb: 0, wallS: wallS(), error: message.split('\n')[0]! });
      process.exitCode = 1;
    }
  }
  const run: BenchmarkRun = {
    benchmark: name,
    description: benchmark.description,
    date: new Date().toISOString(),
    machine,
    machineSlug: machineSlug(machine),
    settings: { repeat: context.repeat, warmup: context.warmup, flags: context.flags },
    results,
    ...(benchmark.compare ? { comparison: benchmark.compare(results.filter((r) => r.error === undefined)) } : {}),
  };
  const previous = previousRun(RESULTS_DIR, name, run.machineSlug);
  const saved = flags['no-save'] || flags.save === 'false' ? undefined : saveRun(RESULTS_DIR, run);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(run)}\n`);
    return;
  }
  const gpus = machine.gpus.length > 0 ? `, ${machine.gpus.join(', ')}` : '';
  console.log(`${name}: ${benchmark.description}`);
  console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb} GB${gpus}; node ${machine.node}, onnxruntime ${machine.onnxruntime}; ${run.date}`);
  console.log(`median of ${context.repeat} after ${context.warmup} warm-up\n`);
  console.log(formatTable(run, previous));
  for (const failed of results.filter((r) => r.error !== undefined)) console.log(`\n${failed.configuration}: ${failed.error}`);
  if (run.comparison && run.comparison.length > 0) console.log(`\n${formatComparison(run.comparison)}`);
  if (saved) console.log(`\nsaved ${path.relative(process.cwd(), saved)}`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
