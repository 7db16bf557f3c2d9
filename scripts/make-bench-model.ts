/**
 * Writes a seeded random-weight UNet in the diffusers layout for benchmarks:
 *
 *     npm run make-bench-model -- quarter            # → .cache/bench-models/unet-quarter
 *     npm run make-bench-model -- full --seed 1 --out some/dir [--fp16]
 *
 * `quarter` is SD-1.5's UNet at a quarter of its widths (≈57 M parameters), `full` is SD-1.5's config.
 * The output folder is git-ignored; an existing complete folder with the same config and seed is kept.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BENCH_UNET_CONFIGS, writeRandomUNet, type BenchUNetKind } from '../src/sidecar/models/unet/random-weights';

interface Args {
  kind: BenchUNetKind;
  seed: number;
  out: string;
  fp16: boolean;
}

function usage(problem: string): never {
  console.error(`${problem}\nusage: make-bench-model <${Object.keys(BENCH_UNET_CONFIGS).join('|')}> [--seed N] [--out DIR] [--fp16]`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const [kind, ...rest] = argv;
  if (!kind || !(kind in BENCH_UNET_CONFIGS)) usage(`unknown model kind ${JSON.stringify(kind ?? '')}`);
  const args: Args = { kind: kind as BenchUNetKind, seed: 0, out: path.join('.cache', 'bench-models', `unet-${kind}`), fp16: false };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    if (flag === '--fp16') args.fp16 = true;
    else if (flag === '--seed' && rest[i + 1] !== undefined) args.seed = Number(rest[++i]);
    else if (flag === '--out' && rest[i + 1] !== undefined) args.out = rest[++i]!;
    else usage(`unknown or incomplete argument ${flag}`);
  }
  if (!Number.isSafeInteger(args.seed) || args.seed < 0) usage('--seed must be a non-negative integer');
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = BENCH_UNET_CONFIGS[args.kind];
  const stamp = path.join(args.out, '.bench-model.json');
  const wanted = JSON.stringify({ config, seed: args.seed, fp16: args.fp16 });
  const existing = await fs.readFile(stamp, 'utf8').catch(() => null);
  if (existing === wanted) {
    console.log(`${args.out}: up to date`);
    return;
  }
  const started = performance.now();
  const result = await writeRandomUNet(args.out, config, { seed: args.seed, dtype: args.fp16 ? 'F16' : 'F32' });
  await fs.writeFile(stamp, wanted);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${result.dir}: ${(result.parameters / 1e6).toFixed(1)} M parameters, ${(result.bytes / 2 ** 20).toFixed(0)} MiB, ${seconds} s`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
