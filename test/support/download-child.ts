/**
 * A process that resolves one hub model into a given cache (the model store's real download code), then reads every
 * file of the snapshot and prints `{ path: sha256 }` as JSON: what a worker would load.
 * Usage: node --import tsx download-child.ts <endpoint> <cacheDir> <repoId>
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ensureModel } from '../../src/sidecar/hub';

async function main(): Promise<void> {
  const [endpoint, cacheDir, repoId] = process.argv.slice(2);
  const model = await ensureModel({ source: repoId!, kind: 'stable-diffusion', endpoint: endpoint!, cacheDir: cacheDir!, progressIntervalMs: 0 });
  const loaded: Record<string, string> = {};
  for (const file of model.files) loaded[file.path] = createHash('sha256').update(await readFile(file.localPath)).digest('hex');
  process.stdout.write(`${JSON.stringify(loaded)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
