import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { staleBundleReason } from '../../../bench/lib/webview-build';

describe('staleBundleReason (is dist/webview.js older than its sources?)', () => {
  let dir: string;
  let bundle: string;
  const setTime = (file: string, seconds: number) => fs.utimesSync(file, seconds, seconds);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webview-build-'));
    fs.mkdirSync(path.join(dir, 'src'));
    fs.mkdirSync(path.join(dir, 'dist'));
    fs.writeFileSync(path.join(dir, 'src', 'main.ts'), 'export {};\n');
    fs.writeFileSync(path.join(dir, 'src', 'view.ts'), 'export {};\n');
    bundle = path.join(dir, 'dist', 'webview.js');
    fs.writeFileSync(bundle, '(() => {})();\n');
    fs.writeFileSync(`${bundle}.map`, JSON.stringify({ version: 3, sources: ['../src/main.ts', '../src/view.ts'], mappings: '' }));
    for (const file of ['src/main.ts', 'src/view.ts']) setTime(path.join(dir, file), 1_000);
    setTime(bundle, 2_000);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is current when every source is older than the bundle', () => {
    assert.equal(staleBundleReason(bundle), undefined);
  });

  it('names a source changed after the build', () => {
    setTime(path.join(dir, 'src', 'view.ts'), 3_000);
    assert.equal(staleBundleReason(bundle), `its source ${path.join('..', 'src', 'view.ts')} changed since the build`);
  });

  it('skips sources that do not exist (packages\' maps name sources they do not ship)', () => {
    fs.rmSync(path.join(dir, 'src', 'main.ts'));
    assert.equal(staleBundleReason(bundle), undefined);
    setTime(path.join(dir, 'src', 'view.ts'), 3_000);
    assert.match(staleBundleReason(bundle)!, /view\.ts changed since the build$/);
  });

  it('is stale without a bundle, or without a source map to tell its sources', () => {
    fs.rmSync(`${bundle}.map`);
    assert.equal(staleBundleReason(bundle), 'webview.js has no source map to tell its sources');
    fs.rmSync(bundle);
    assert.equal(staleBundleReason(bundle), 'webview.js does not exist');
  });
});
