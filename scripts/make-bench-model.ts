/**
 * Writes a seeded random-weight UNet in the diffusers layout for benchmarks:
 *
 *     npm run make-bench-model -- quarter            # → .cache/bench-models/unet-quarter
 *     npm run make-bench-model -- full --seed 1 --out some/dir [--fp16]
 *     npm run make-bench-model -- pipeline           # → .cache/bench-models/pipeline/{sd15,clip-vit-b16}
 *     npm run make-bench-model -- eval [--tiny]      # → .cache/bench-models/eval[-tiny]/{sd21,clip-vit-b32,lpips-alex}
 *
 * `quarter` is SD-1.5's UNet at a quarter of its widths (≈57 M parameters), `full` is SD-1.5's config.
 * `pipeline` writes every model an edit needs with the real architectures (SD-1.5 folder with UNet,
 * VAE, text encoder, scheduler, a small BPE tokenizer; CLIP ViT-B/16 folder), always float32.
 * `eval` writes the models `clipdrag eval` reads (SD-2.1 for DIFT, CLIP ViT-B/32, LPIPS-AlexNet); `--tiny` at small
 * widths, for tests. The output folder is git-ignored; an existing complete folder with the same config and seed is kept.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { BENCH_UNET_CONFIGS, writeRandomUNet, type BenchUNetKind } from '../src/sidecar/models/unet/random-weights';
import { writeRandomEvalFolders } from './bench-eval-models';
import { CLIP_VIT_B16_CONFIG, SD15_TEXT_ENCODER_CONFIG, SD15_VAE_CONFIG, writeRandomPipelineFolders } from './bench-pipeline-models';

type Kind = BenchUNetKind | 'pipeline' | 'eval';
const KINDS: readonly Kind[] = [...(Object.keys(BENCH_UNET_CONFIGS) as BenchUNetKind[]), 'pipeline', 'eval'];

interface Args {
  kind: Kind;
  seed: number;
  out: string;
  fp16: boolean;
  tiny: boolean;
}

function usage(problem: string): never {
  console.error(`${problem}\nusage: make-bench-model <${KINDS.join('|')}> [--seed N] [--out DIR] [--fp16] [--tiny]`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const [kind, ...rest] = argv;
  if (!kind || !KINDS.includes(kind as Kind)) usage(`unknown model kind ${JSON.stringify(kind ?? '')}`);
  const tiny = rest.includes('--tiny');
  const defaultName = kind === 'pipeline' ? 'pipeline' : kind === 'eval' ? (tiny ? 'eval-tiny' : 'eval') : `unet-${kind}`;
  const args: Args = { kind: kind as Kind, seed: 0, out: path.join('.cache', 'bench-models', defaultName), fp16: false, tiny };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    if (flag === '--fp16') args.fp16 = true;
    else if (flag === '--tiny') continue;
    else if (flag === '--seed' && rest[i + 1] !== undefined) args.seed = Number(rest[++i]);
    else if (flag === '--out' && rest[i + 1] !== undefined) args.out = rest[++i]!;
    else usage(`unknown or incomplete argument ${flag}`);
  }
  if (!Number.isSafeInteger(args.seed) || args.seed < 0) usage('--seed must be a non-negative integer');
  if ((args.kind === 'pipeline' || args.kind === 'eval') && args.fp16) usage('--fp16 is only for the UNet kinds');
  if (args.tiny && args.kind !== 'eval') usage('--tiny is only for eval');
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.kind === 'eval') {
    const stamp = path.join(args.out, '.bench-model.json');
    const wanted = JSON.stringify({ kind: 'eval', tiny: args.tiny, seed: args.seed });
    if ((await fs.readFile(stamp, 'utf8').catch(() => null)) === wanted) {
      console.log(`${args.out}: up to date`);
      return;
    }
    const started = performance.now();
    const folders = await writeRandomEvalFolders(args.out, args.seed, args.tiny);
    await fs.writeFile(stamp, wanted);
    console.log(`${folders.dift} + ${folders.clip} + ${folders.lpips}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return;
  }
  const config =
    args.kind === 'pipeline'
      ? { unet: BENCH_UNET_CONFIGS.full, vae: SD15_VAE_CONFIG, textEncoder: SD15_TEXT_ENCODER_CONFIG, clip: CLIP_VIT_B16_CONFIG }
      : BENCH_UNET_CONFIGS[args.kind];
  const stamp = path.join(args.out, '.bench-model.json');
  const wanted = JSON.stringify({ config, seed: args.seed, fp16: args.fp16 });
  const existing = await fs.readFile(stamp, 'utf8').catch(() => null);
  if (existing === wanted) {
    console.log(`${args.out}: up to date`);
    return;
  }
  const started = performance.now();
  if (args.kind === 'pipeline') {
    const folders = await writeRandomPipelineFolders(args.out, args.seed);
    await fs.writeFile(stamp, wanted);
    console.log(`${folders.stableDiffusion} + ${folders.clip}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return;
  }
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
