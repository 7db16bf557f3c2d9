/**
 * Conformance runner: runs every golden case of a fixture set through its
 * handler in `cases/` and compares each output tensor with the reference
 * (relative L2 error against the tolerance in index.json).
 *
 *   npm run conformance -- [DIR] [--allow-skips] [--bpe DIR] [--case NAME]...
 *
 * DIR defaults to test/fixtures. A case or output that was not checked (no
 * handler, or the handler could not run here) is reported as SKIP and fails
 * the run: what was not compared did not pass. `--allow-skips` (for work in
 * progress) lets skips through; `--strict` is the default and accepted.
 * Exit status: 0 every output compared and passed, 1 a tensor failed, a
 * handler broke or something was skipped, 2 bad usage.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SkipCase, type CaseHandlerModule, type CaseResult, type RunnerOptions } from './case';
import { compareTensors, GoldenTensors, readGoldenIndex, toleranceOf, type GoldenCase, type HostTensor } from './golden';

const REPO_ROOT = path.resolve(__dirname, '../..');
const CASES_DIR = path.join(__dirname, 'cases');

interface CliOptions extends RunnerOptions {
  readonly fixtureDir: string;
  /** Skipped cases and outputs fail the run (default). */
  readonly strict: boolean;
  readonly only: readonly string[];
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run conformance -- [DIR] [--allow-skips] [--bpe DIR] [--case NAME]...\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): CliOptions {
  let fixtureDir: string | undefined;
  let bpeDir: string | undefined;
  let strict = true;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--strict') strict = true;
    else if (arg === '--allow-skips') strict = false;
    else if (arg === '--bpe') bpeDir = argv[++i] ?? usage('--bpe needs a folder');
    else if (arg === '--case') only.push(argv[++i] ?? usage('--case needs a name'));
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else if (fixtureDir === undefined) fixtureDir = arg;
    else usage(`unexpected argument ${arg}`);
  }
  return {
    fixtureDir: path.resolve(fixtureDir ?? path.join(REPO_ROOT, 'test/fixtures')),
    bpeDir: bpeDir === undefined ? undefined : path.resolve(bpeDir),
    strict,
    only,
  };
}

/** Loads every handler module of cases/ and maps case names to them. */
async function loadHandlers(): Promise<Map<string, CaseHandlerModule & { file: string }>> {
  const handlers = new Map<string, CaseHandlerModule & { file: string }>();
  const files = (await fs.readdir(CASES_DIR)).filter((f) => f.endsWith('.ts')).sort();
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(CASES_DIR, file)).href)) as Partial<CaseHandlerModule>;
    if (!Array.isArray(mod.cases) || typeof mod.run !== 'function') {
      throw new Error(`cases/${file} must export "cases" (case names) and "run"`);
    }
    for (const name of mod.cases) {
      const other = handlers.get(name);
      if (other) throw new Error(`case ${name} is handled by both cases/${other.file} and cases/${file}`);
      handlers.set(name, { cases: mod.cases, run: mod.run, file });
    }
  }
  return handlers;
}

type Status = 'PASS' | 'FAIL' | 'SKIP';

class Report {
  readonly counts: Record<Status, number> = { PASS: 0, FAIL: 0, SKIP: 0 };

  line(status: Status, label: string, detail: string): void {
    this.counts[status]++;
    process.stdout.write(`${status}  ${label.padEnd(52)} ${detail}\n`);
  }
}

function formatError(x: number): string {
  return x === 0 ? '0' : x.toExponential(2);
}

async function compareCase(entry: GoldenCase, result: CaseResult, golden: GoldenTensors, report: Report): Promise<void> {
  for (const [name, spec] of Object.entries(entry.outputs)) {
    const label = `${entry.name}/${name}`;
    const mine = result.outputs[name];
    if (mine === undefined) {
      report.line('SKIP', label, '(not implemented)');
      continue;
    }
    let ref: HostTensor | undefined = result.references?.[name];
    if (ref === undefined && golden.has(name)) ref = await golden.read(name);
    if (ref === undefined) {
      report.line('FAIL', label, 'no reference tensor (not in the golden file and not supplied by the handler)');
      continue;
    }
    // Wildcard entries (one entry for many tensors) keep their numeric tolerance; prose outputs are exact.
    const tolerance = toleranceOf(spec);
    const { error, problem } = compareTensors(mine, ref);
    const detail = `rel_err=${problem ? 'n/a' : formatError(error)}  tol=${formatError(tolerance)}${problem ? `  ${problem}` : ''}`;
    report.line(!problem && error <= tolerance ? 'PASS' : 'FAIL', label, detail);
  }
  for (const name of Object.keys(result.outputs)) {
    if (!(name in entry.outputs)) process.stdout.write(`note  ${entry.name}/${name}: produced but not listed in index.json (ignored)\n`);
  }
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const index = await readGoldenIndex(options.fixtureDir);
  const handlers = await loadHandlers();
  const known = new Set(index.cases.map((c) => c.name));
  for (const name of options.only) if (!known.has(name)) usage(`no case named ${name} in ${options.fixtureDir}`);

  process.stdout.write(`conformance: ${options.fixtureDir} (${index.cases.length} cases)\n`);
  const report = new Report();
  let skippedCases = 0;
  let brokenCases = 0;
  for (const entry of index.cases) {
    if (options.only.length > 0 && !options.only.includes(entry.name)) continue;
    const handler = handlers.get(entry.name);
    if (!handler) {
      report.line('SKIP', entry.name, '(not implemented)');
      skippedCases++;
      continue;
    }
    const golden = await GoldenTensors.open(path.join(options.fixtureDir, entry.file));
    try {
      const started = performance.now();
      const result = await handler.run(entry, golden, options.fixtureDir, options);
      const ms = performance.now() - started;
      await compareCase(entry, result, golden, report);
      if (ms > 1000) process.stdout.write(`note  ${entry.name}: ${(ms / 1000).toFixed(1)} s\n`);
    } catch (err) {
      if (err instanceof SkipCase) {
        report.line('SKIP', entry.name, err.message);
        skippedCases++;
      } else {
        report.line('FAIL', entry.name, `handler error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        brokenCases++;
      }
    } finally {
      await golden.close();
    }
  }

  const { PASS, FAIL, SKIP } = report.counts;
  process.stdout.write(
    `\nsummary: ${PASS} passed, ${FAIL} failed, ${SKIP} skipped` +
      ` (${skippedCases} whole cases skipped, ${brokenCases} handler errors)${options.strict ? '' : ' [--allow-skips]'}\n`,
  );
  const failed = FAIL > 0 || (options.strict && SKIP > 0);
  if (options.strict && SKIP > 0) process.stdout.write('skipped cases and outputs were not checked and count as failures (--allow-skips lets them through)\n');
  process.exitCode = failed ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`conformance: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
