// What the editor tells the user when a run fails for want of a model, from a real engine's answer: offline, a
// model that is not cached cannot be downloaded, so the message names the setting to change and offers to open it.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRunFailure } from '../../../src/extension/editor/run-failure';
import { SidecarClient, type SidecarLog } from '../../../src/extension/sidecar/sidecar-client';
import { EditRunRequestType, type EditRunParams } from '../../../src/shared/protocol';
import { encodePng } from '../../../src/sidecar/io/image';
import { blobImage, tempDir, TINY_CLIP, tinySdWithTokenizer } from '../../support/tiny-pipeline';

const repo = path.resolve(__dirname, '..', '..', '..');
const SIDECAR = path.join(repo, 'src', 'sidecar', 'main.ts');
const quiet: SidecarLog = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

describe('run failures (real sidecar, offline hub)', () => {
  let dir: string;
  let imagePath: string;
  let localModel: string;
  let client: SidecarClient;
  const saved = { offline: process.env.HF_HUB_OFFLINE, cache: process.env.HF_HUB_CACHE };

  before(async () => {
    dir = await tempDir('run-failure');
    localModel = await tinySdWithTokenizer(dir);
    imagePath = path.join(dir, 'blob.png');
    await fs.writeFile(imagePath, await encodePng(blobImage(64, 64, 20, 32, 8)));
    // The sidecar inherits the environment: offline, with an empty hub cache.
    process.env.HF_HUB_OFFLINE = '1';
    process.env.HF_HUB_CACHE = path.join(dir, 'hub');
    client = new SidecarClient({ script: SIDECAR, execArgv: ['--import', 'tsx'], initializeParams: () => ({ client: 'run failure test', devicePreference: 'cpu' }), log: quiet });
  });
  after(async () => {
    await client.dispose();
    for (const [key, value] of [['HF_HUB_OFFLINE', saved.offline], ['HF_HUB_CACHE', saved.cache]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function failedRun(model: string, clipModel: string): Promise<unknown> {
    const params: EditRunParams = {
      imagePath,
      spec: { version: 1, mode: 'clipdrag', prompt: 'a bright blob', points: [{ handle: [20, 32], target: [40, 32] }], model, clipModel, parameters: { loraSteps: 0, dragSteps: 1 } },
      workingWidth: 64,
    };
    return client.sendRequest(EditRunRequestType, params).then(
      () => assert.fail('the run succeeded'),
      (error: unknown) => error,
    );
  }

  it('names clipdrag.model and offers to open it when the Stable Diffusion model is not cached', async () => {
    const models = { model: 'someone/sd-not-cached', clipModel: TINY_CLIP };
    const failure = describeRunFailure(await failedRun(models.model, models.clipModel), models);
    assert.equal(failure.cancelled, false);
    assert.ok(!failure.cancelled);
    assert.match(failure.message, /someone\/sd-not-cached/);
    assert.match(failure.message, /To edit now, set CLIPDrag: Model \(`clipdrag\.model`\) to a model already in the cache or to a local model folder\.$/);
    assert.deepEqual(failure.actions, ['openModelSetting', 'showLogs'], 'Download Models cannot help offline');
  });

  it('names clipdrag.clipModel when it is the CLIP model that is not cached', async () => {
    const models = { model: localModel, clipModel: 'someone/clip-not-cached' };
    const failure = describeRunFailure(await failedRun(models.model, models.clipModel), models);
    assert.ok(!failure.cancelled);
    assert.match(failure.message, /someone\/clip-not-cached.*set CLIPDrag: Clip Model \(`clipdrag\.clipModel`\)/s);
    assert.deepEqual(failure.actions, ['openClipModelSetting', 'showLogs']);
  });
});
