// batch/plan and batch/run through the real sidecar process, as the extension's client sends them.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, ErrorCodes, ResponseError } from 'vscode-jsonrpc/node';
import { SidecarClient, type SidecarLog } from '../../../src/extension/sidecar/sidecar-client';
import type { BatchOptions, BatchProgress } from '../../../src/shared/batch';
import { serializeEditSpec } from '../../../src/shared/edit-spec';
import { BatchPlanRequestType, BatchRunRequestType, type BatchRunParams } from '../../../src/shared/protocol';
import { encodePng } from '../../../src/sidecar/io/image';
import { BATCH_TEST_PARAMETERS, DRAGBENCH_SAMPLE_PICKLE, batchSpec } from '../../support/batch-folder';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');
const quiet: SidecarLog = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

describe('batch/plan and batch/run (real sidecar process)', () => {
  let dir: string;
  let folder: string;
  let options: BatchRunParams;
  let client: SidecarClient;
  const savedCache = process.env.CLIPDRAG_CACHE_DIR;

  before(async () => {
    dir = await fs.realpath(await tempDir('rpc-batch'));
    folder = path.join(dir, 'work');
    const sample = path.join(folder, 'bench', 'sample_1');
    await fs.mkdir(sample, { recursive: true });
    const png = await encodePng(blobImage(64, 64, 20, 32, 8));
    await fs.writeFile(path.join(sample, 'original_image.png'), png);
    await fs.copyFile(DRAGBENCH_SAMPLE_PICKLE, path.join(sample, 'meta_data.pkl'));
    await fs.writeFile(path.join(folder, 'blob.png'), png);
    await fs.writeFile(path.join(folder, 'blob.png.clipdrag-edit.json'), serializeEditSpec(batchSpec([{ handle: [20, 32], target: [40, 32] }], { mode: 'drag' })));
    options = { folder, model: await tinySdWithTokenizer(dir), clipModel: TINY_CLIP, workingWidth: 64, dragBenchParameters: BATCH_TEST_PARAMETERS };
    process.env.CLIPDRAG_CACHE_DIR = path.join(dir, 'cache');
    client = new SidecarClient({ script: SIDECAR, execArgv: ['--import', 'tsx'], initializeParams: () => ({ client: 'rpc batch test', devicePreference: 'cpu' }), log: quiet });
  });
  after(async () => {
    await client.dispose();
    if (savedCache === undefined) delete process.env.CLIPDRAG_CACHE_DIR;
    else process.env.CLIPDRAG_CACHE_DIR = savedCache;
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('plans the folder', async () => {
    const plan = await client.sendRequest(BatchPlanRequestType, options);
    assert.equal(plan.folder, folder);
    assert.deepEqual(plan.items.map((i) => [i.image, i.source, i.state]), [
      ['bench/sample_1/original_image.png', 'dragbench', 'pending'],
      ['blob.png', 'spec', 'pending'],
    ]);
    assert.deepEqual(plan.counts, { total: 2, pending: 2, done: 0, invalid: 0 });
  });

  it('refuses bad parameters with InvalidParams', async () => {
    for (const [params, pattern] of [
      [{ folder: '' }, /batch\/plan: folder must be the absolute path/],
      [{ folder, device: 'gpu' }, /device must be one of/],
      [{ folder, workingWidth: 60 }, /workingWidth must be a positive multiple of 8/],
      [{ folder: 'relative' }, /must be an absolute path/],
    ] as const) {
      await assert.rejects(client.sendRequest(BatchPlanRequestType, params as unknown as BatchOptions), (error: unknown) => {
        assert.ok(error instanceof ResponseError);
        assert.equal(error.code, ErrorCodes.InvalidParams);
        assert.match(error.message, pattern);
        return true;
      });
    }
  });

  it('cancelled through $/cancelRequest: answers with the report, which says cancelled', async () => {
    const source = new CancellationTokenSource();
    const report = await client.sendRequestWithProgress(BatchRunRequestType, options, (progress: BatchProgress) => {
      if (progress.type === 'item-start') source.cancel();
    }, source.token);
    assert.equal(report.state, 'cancelled');
    assert.deepEqual(report.items.map((i) => i.status), ['cancelled', 'not-run']);
  });

  it('runs the folder with progress, then finds everything done', async () => {
    const progress: BatchProgress[] = [];
    const report = await client.sendRequestWithProgress(BatchRunRequestType, options, (p: BatchProgress) => progress.push(p));
    assert.equal(report.state, 'completed');
    assert.equal(report.device, 'cpu', 'the device given at initialize');
    assert.deepEqual(report.items.map((i) => [i.status, i.result]), [
      ['succeeded', 'bench/sample_1/original_image.clipdrag.png'],
      ['succeeded', 'blob.clipdrag.png'],
    ]);
    assert.deepEqual(progress.filter((p) => p.type !== 'item-progress').map((p) => `${p.type} ${p.index}`), ['item-start 0', 'item-end 0', 'item-start 1', 'item-end 1']);
    const stages = new Set(progress.flatMap((p) => (p.type === 'item-progress' ? [p.progress.stage] : [])));
    assert.deepEqual([...stages], ['decode', 'load', 'lora', 'encode', 'inversion', 'drag', 'denoise', 'write']);
    assert.ok(progress.every((p) => p.type !== 'item-progress' || !('previewPngBase64' in p.progress)), 'previews are not sent');

    const plan = await client.sendRequest(BatchPlanRequestType, options);
    assert.deepEqual(plan.counts, { total: 2, pending: 0, done: 2, invalid: 0 });
  });
});
