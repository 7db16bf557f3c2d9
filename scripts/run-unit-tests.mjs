#!/usr/bin/env node
// `npm run test:unit`: Node's built-in test runner on every test/unit/**/*.test.ts, through tsx.
// (Node 20's --test does not expand glob patterns itself, and npm's shell has no `**`.)
// Extra arguments are passed to `node --test`, e.g. `npm run test:unit -- --test-name-pattern=tokenizer`;
// arguments naming files or folders restrict the run to those.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('-') && fs.existsSync(a));
const flags = args.filter((a) => !roots.includes(a));

function testFiles(root) {
  if (fs.statSync(root).isFile()) return [root];
  return fs
    .readdirSync(root, { recursive: true })
    .map((name) => path.join(root, String(name)))
    .filter((file) => file.endsWith('.test.ts'))
    .sort();
}

const files = (roots.length > 0 ? roots : [path.join(repo, 'test', 'unit')]).flatMap(testFiles);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...flags, ...files], { cwd: repo, stdio: 'inherit' });
process.exit(result.status ?? 1);
