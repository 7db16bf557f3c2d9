// The evaluation's LPIPS weights through the model store (a hub id, downloaded into the Hugging Face cache and checked
// against the published hashes, from the local fake hub), and `eval/run` through the real sidecar process as the
// extension sends it: progress, cancellation with the report of what was scored, a rerun that keeps it, and errors.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, ErrorCodes, ResponseError } from 'vscode-jsonrpc/node';
import { writeRandomEvalFolders } from '../../../scripts/bench-eval-models';
import { SidecarClient, type SidecarLog } from '../../../src/extension/sidecar/sidecar-client';
import type { EvalProgress } from '../../../src/shared/evaluation';
import { EvalRunRequestType, SidecarErrorCodes, type EvalRunParams } from '../../../src/shared/protocol';
import { EVAL_DEFAULT_MODELS, ensureModel } from '../../../src/sidecar/hub';
import { EVAL_REPORT_FILES } from '../../../src/sidecar/evaluation/report';
import type { EvalReportData } from '../../../src/sidecar/evaluation/runner';
import { EVAL_TEST_MODELS, makeEvalFolder } from '../../support/eval-folder';
import { isolateHubEnvironment } from '../../support/hub-env';
import { FakeHub, sha256Of } from '../../support/hub-server';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');
const quiet: SidecarLog = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };
/** The tiny LPIPS model of `make-bench-model -- eval --tiny`, published as one safetensors file. */
const TINY_REPO = 'clipdrag-tests/lpips-alex-tiny';

describe('LPIPS weights from the hub, and eval/run (real sidecar process)', () => {
  let dir: string;
  let hub: FakeHub;
  let restoreEnv: () => void;
  let tinyLpips: Buffer;
  let pthFiles: Map<string, Buffer>;

  before(async () => {
    restoreEnv = isolateHubEnvironment();
    dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'clipdrag-eval-hub-')));
    const tiny = await writeRandomEvalFolders(path.join(dir, 'tiny-models'), 0, true);
    tinyLpips = await fs.readFile(path.join(tiny.lpips, 'lpips-alex.safetensors'));
    hub = await FakeHub.start();
    hub.addRepo(TINY_REPO, new Map([['lpips-alex.safetensors', tinyLpips], ['README.md', Buffer.from('tiny random LPIPS-AlexNet\n')]]));
    // The default repo's layout: the published .pth files among other metrics' weights (here the fixture's tiny ones).
    pthFiles = new Map([
      ['LPIPS_v0.1_alex-df73285e.pth', await fs.readFile(path.join(EVAL_TEST_MODELS.lpips, 'alex.pth'))],
      ['alexnet-owt-7be5be79.pth', await fs.readFile(path.join(EVAL_TEST_MODELS.lpips, 'alexnet.pth'))],
      ['LPIPS_v0.1_vgg-a78928a0.pth', Buffer.from('other weights')],
      ['niqe_modelparameters.mat', Buffer.from('other data')],
    ]);
    hub.addRepo(EVAL_DEFAULT_MODELS.lpips, pthFiles);
  });
  after(async () => {
    await hub.stop();
    restoreEnv();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('downloads only the LPIPS-AlexNet files of a repo into the cache, verified by their published hashes', async () => {
    const cacheDir = path.join(dir, 'hf-pth');
    const model = await ensureModel({ source: EVAL_DEFAULT_MODELS.lpips, kind: 'lpips', endpoint: hub.url, cacheDir });
    assert.equal(model.origin, 'hub');
    assert.deepEqual(model.files.map((f) => f.path), ['alexnet-owt-7be5be79.pth', 'LPIPS_v0.1_alex-df73285e.pth']);
    for (const file of model.files) {
      assert.equal(file.sha256, sha256Of(pthFiles.get(file.path)!));
      assert.deepEqual(await fs.readFile(file.localPath), pthFiles.get(file.path));
    }
    const blobs = await fs.readdir(path.join(cacheDir, `models--${EVAL_DEFAULT_MODELS.lpips.replace('/', '--')}`, 'blobs'));
    assert.deepEqual(blobs.sort(), model.files.map((f) => f.sha256).sort());

    // A file whose bytes differ from the published hash is refused, as for every other download.
    hub.faults = { corrupt: { file: 'lpips-alex.safetensors', offset: 100 } };
    try {
      await assert.rejects(ensureModel({ source: TINY_REPO, kind: 'lpips', endpoint: hub.url, cacheDir: path.join(dir, 'hf-corrupt'), retries: 0 }), /sha256|hash|corrupt/i);
    } finally {
      hub.faults = {};
    }
    // A repo without LPIPS weights says which files it needs.
    hub.addRepo('clipdrag-tests/not-lpips', new Map([['model.safetensors', Buffer.from('x')]]));
    await assert.rejects(ensureModel({ source: 'clipdrag-tests/not-lpips', kind: 'lpips', endpoint: hub.url, cacheDir }), /no LPIPS-AlexNet weights: expected lpips-alex\.safetensors.*alexnet-owt-7be5be79\.pth/);
  });

  describe('eval/run', () => {
    let client: SidecarClient;
    let samples: string;
    let reference: string;
    let params: EvalRunParams;
    const saved = { cache: process.env.CLIPDRAG_CACHE_DIR, endpoint: process.env.HF_ENDPOINT };

    before(async () => {
      ({ samples, reference } = await makeEvalFolder(dir));
      // The sidecar inherits these: its pipeline cache, and the fake hub as the Hugging Face endpoint.
      process.env.CLIPDRAG_CACHE_DIR = path.join(dir, 'pipeline-cache');
      process.env.HF_ENDPOINT = hub.url;
      params = { folder: samples, results: [reference], diftModel: EVAL_TEST_MODELS.dift, clipModel: EVAL_TEST_MODELS.clip, lpipsModel: TINY_REPO, hubCacheDirectory: path.join(dir, 'hf-rpc') };
      client = new SidecarClient({ script: SIDECAR, execArgv: ['--import', 'tsx'], initializeParams: () => ({ client: 'rpc eval test', devicePreference: 'cpu' }), log: quiet });
    });
    after(async () => {
      await client.dispose();
      for (const [name, value] of [['CLIPDRAG_CACHE_DIR', saved.cache], ['HF_ENDPOINT', saved.endpoint]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });

    it('refuses bad parameters and a folder without samples with InvalidParams', async () => {
      for (const [bad, pattern] of [
        [{ folder: '' }, /eval\/run: folder must be the absolute path/],
        [{ ...params, device: 'gpu' }, /device must be one of/],
        [{ ...params, results: [] }, /results must be a non-empty list/],
        [{ ...params, seed: -1 }, /seed must be an integer/],
        [{ ...params, folder: path.join(dir, 'tiny-models', 'clip-vit-b32') }, /holds no DragBench samples/],
      ] as [EvalRunParams, RegExp][]) {
        await assert.rejects(client.sendRequest(EvalRunRequestType, bad), (error: unknown) => {
          assert.ok(error instanceof ResponseError, String(error));
          assert.equal(error.code, ErrorCodes.InvalidParams);
          assert.match(error.message, pattern);
          return true;
        });
      }
    });

    it('answers a model that cannot be had with ModelUnavailable and the store\'s reason', async () => {
      await assert.rejects(client.sendRequest(EvalRunRequestType, { ...params, lpipsModel: 'clipdrag-tests/no-such-repo' }), (error: unknown) => {
        assert.ok(error instanceof ResponseError, String(error));
        assert.equal(error.code, SidecarErrorCodes.ModelUnavailable);
        assert.match(error.message, /no-such-repo/);
        return true;
      });
    });

    it('is cancelled after the first entry with the report of what was scored, and a rerun keeps it and completes', async () => {
      const source = new CancellationTokenSource();
      const first: EvalProgress[] = [];
      const cancelled = await client.sendRequestWithProgress(EvalRunRequestType, params, (p: EvalProgress) => {
        first.push(p);
        source.cancel();
      }, source.token);
      assert.equal(cancelled.state, 'cancelled');
      assert.deepEqual(first.map((p) => [p.done, p.total, p.sample, p.reused]), [[1, 2, 'animals/sample_1', false]]);
      assert.equal(cancelled.entries, 1);
      const partial = JSON.parse(await fs.readFile(cancelled.reportFiles.json, 'utf8')) as EvalReportData;
      assert.equal(partial.cancelled, true);
      assert.match(await fs.readFile(cancelled.reportFiles.markdown, 'utf8'), /\*\*Cancelled:\*\*/);

      const progress: EvalProgress[] = [];
      const done = await client.sendRequestWithProgress(EvalRunRequestType, params, (p: EvalProgress) => progress.push(p));
      assert.equal(done.state, 'completed');
      assert.deepEqual(progress.map((p) => [p.done, p.sample, p.reused]), [[1, 'animals/sample_1', true], [2, 'art_work/sample_2', false]]);
      assert.deepEqual([done.entries, done.scored], [2, 2]);
      assert.equal(done.models.lpips, TINY_REPO);
      assert.deepEqual(Object.keys(done.reportFiles).sort(), Object.keys(EVAL_REPORT_FILES).sort());
      for (const file of Object.values(done.reportFiles)) await fs.access(file);
      const report = JSON.parse(await fs.readFile(done.reportFiles.json, 'utf8')) as EvalReportData;
      assert.equal(report.cancelled, undefined);
      // sample_1's reference result is its source: LPIPS 0 and CLIP similarity 1, with the hub's LPIPS weights.
      const identical = report.entries[0]!.score!;
      assert.equal(identical.lpips, 0);
      assert.ok(Math.abs(identical.clipSimilarity - 1) < 1e-6, String(identical.clipSimilarity));
      assert.ok(report.entries[1]!.score!.lpips > 0);
      // The weights came through the model store, into the given Hugging Face cache.
      const blobs = await fs.readdir(path.join(dir, 'hf-rpc', `models--${TINY_REPO.replace('/', '--')}`, 'blobs'));
      assert.deepEqual(blobs, [sha256Of(tinyLpips)]);
    });
  });
});
