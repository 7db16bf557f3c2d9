// edit/run and models/ensure through the real sidecar process, as the extension's client sends them.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import { SidecarClient, type SidecarLog } from '../../../src/extension/sidecar/sidecar-client';
import type { EditSpec } from '../../../src/shared/edit-spec';
import {
  EditRunRequestType,
  ModelsEnsureRequestType,
  SidecarErrorCodes,
  type EditProgress,
  type EditRunParams,
  type ModelsProgress,
} from '../../../src/shared/protocol';
import { encodePng } from '../../../src/sidecar/io/image';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');
const quiet: SidecarLog = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

describe('edit/run and models/ensure (real sidecar process)', () => {
  let dir: string;
  let model: string;
  let client: SidecarClient;
  const savedCache = process.env.CLIPDRAG_CACHE_DIR;

  before(async () => {
    dir = await tempDir('rpc-edit');
    model = await tinySdWithTokenizer(dir);
    // The sidecar inherits the environment: keep its LoRA and session caches in the test folder.
    process.env.CLIPDRAG_CACHE_DIR = path.join(dir, 'cache');
    client = new SidecarClient({ script: SIDECAR, execArgv: ['--import', 'tsx'], initializeParams: () => ({ client: 'rpc edit test', devicePreference: 'cpu' }), log: quiet });
  });
  after(async () => {
    await client.dispose();
    if (savedCache === undefined) delete process.env.CLIPDRAG_CACHE_DIR;
    else process.env.CLIPDRAG_CACHE_DIR = savedCache;
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function image(name: string, bytes?: Uint8Array): Promise<string> {
    const folder = path.join(dir, name);
    await fs.mkdir(folder, { recursive: true });
    const file = path.join(folder, 'blob.png');
    await fs.writeFile(file, bytes ?? (await encodePng(blobImage(64, 64, 20, 32, 8))));
    return file;
  }

  const spec = (dragSteps: number): EditSpec => ({
    version: 1,
    mode: 'clipdrag',
    prompt: 'a bright blob',
    points: [{ handle: [20, 32], target: [40, 32] }],
    model,
    clipModel: TINY_CLIP,
    parameters: { loraSteps: 1, loraBatchSize: 1, loraRank: 4, dragSteps, previewInterval: 0 },
  });
  const params = (imagePath: string, dragSteps = 3): EditRunParams => ({ imagePath, spec: spec(dragSteps), workingWidth: 64 });

  async function rejection(promise: Promise<unknown>): Promise<ResponseError<unknown>> {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof ResponseError, `expected a ResponseError, got ${String(error)}`);
      return error;
    }
    assert.fail('the request succeeded');
  }

  it('reports model folders with hashing progress', async () => {
    const updates: ModelsProgress[] = [];
    const result = await client.sendRequestWithProgress(ModelsEnsureRequestType, { model, clipModel: TINY_CLIP, verify: true }, (p: ModelsProgress) => updates.push(p));
    assert.deepEqual(result.models.map((m) => [m.role, m.origin, m.folder]), [['stable-diffusion', 'local', model], ['clip', 'local', TINY_CLIP]]);
    assert.ok(result.models.every((m) => m.fileCount > 0 && m.totalBytes > 0 && m.corruptFiles?.length === 0));
    assert.ok(updates.some((u) => u.role === 'stable-diffusion' && u.phase === 'hash' && u.totalBytes! > 0));
    assert.deepEqual(updates.filter((u) => u.phase === 'done').map((u) => u.role), ['stable-diffusion', 'clip']);
  });

  it('takes the precision for models/ensure: fp16 on fp32-only folders falls back with notes; an unknown one is refused', async () => {
    const updates: ModelsProgress[] = [];
    const result = await client.sendRequestWithProgress(ModelsEnsureRequestType, { model, clipModel: TINY_CLIP, precision: 'fp16' }, (p: ModelsProgress) => updates.push(p));
    assert.deepEqual(result.models.map((m) => m.weightsPrecision), ['fp32', 'fp32']);
    assert.match(result.models[0]!.notes.join('\n'), /unet: no fp16 weights in the folder .*; using the fp32 files instead/);
    assert.ok(updates.some((u) => u.role === 'clip' && /model: no fp16 weights/.test(u.message ?? '')));
    const refused = await rejection(client.sendRequest(ModelsEnsureRequestType, { model, precision: 'fp8' as never }));
    assert.equal(refused.code, -32602);
    assert.match(refused.message, /precision must be one of auto, fp32, fp16/);
  });

  it('answers a failed edit with a clear error and serves the next request', async () => {
    const corrupt = await image('corrupt', new TextEncoder().encode('GIF89a but not really'));
    const failed = await rejection(client.sendRequest(EditRunRequestType, params(corrupt)));
    assert.equal(failed.code, SidecarErrorCodes.InvalidEditInput);
    assert.match(failed.message, /blob\.png/);

    const outside = await image('invalid');
    const invalid = await rejection(client.sendRequest(EditRunRequestType, { ...params(outside), spec: { ...spec(3), points: [{ handle: [20, 32], target: [400, 32] }] } }));
    assert.equal(invalid.code, SidecarErrorCodes.InvalidEditInput);
    assert.match(invalid.message, /\$\.points\[0\]\.target\[0\]/);
    assert.ok(Array.isArray((invalid.data as { issues?: unknown }).issues));

    const good = await image('good');
    const stages: string[] = [];
    const result = await client.sendRequestWithProgress(EditRunRequestType, params(good), (p: EditProgress) => stages.push(p.stage));
    assert.equal(result.imagePath, path.join(path.dirname(good), 'blob.clipdrag.png'));
    assert.equal(result.executionProvider, 'cpu');
    assert.equal(result.iterations, 3);
    await fs.access(result.recipePath);
    assert.deepEqual([...new Set(stages)], ['decode', 'load', 'lora', 'encode', 'inversion', 'drag', 'denoise', 'write']);
  });

  it('cancels a running edit through $/cancelRequest, writing nothing', async () => {
    const imagePath = await image('cancel');
    const source = new CancellationTokenSource();
    const cancelled = await rejection(
      client.sendRequestWithProgress(EditRunRequestType, params(imagePath, 200), (p: EditProgress) => {
        if (p.stage === 'drag' && p.step === 2) source.cancel();
      }, source.token),
    );
    assert.equal(cancelled.code, SidecarErrorCodes.RequestCancelled);
    assert.match(cancelled.message, /cancelled during dragging/);
    assert.deepEqual(await fs.readdir(path.dirname(imagePath)), ['blob.png']);
  });
});
