import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ENDPOINT, resolveHubSettings } from '../../../src/sidecar/hub';

describe('resolveHubSettings', () => {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'hub-settings-'));
  });
  after(() => rm(folder, { recursive: true, force: true }));

  it('defaults like huggingface_hub', () => {
    const settings = resolveHubSettings({}, {});
    assert.equal(settings.endpoint, DEFAULT_ENDPOINT);
    assert.equal(settings.cacheDir, path.join(homedir(), '.cache', 'huggingface', 'hub'));
    assert.equal(settings.offline, false);
  });

  it('follows the environment in huggingface_hub precedence', () => {
    assert.equal(resolveHubSettings({}, { XDG_CACHE_HOME: '/x' }).cacheDir, path.join('/x', 'huggingface', 'hub'));
    assert.equal(resolveHubSettings({}, { XDG_CACHE_HOME: '/x', HF_HOME: '/h' }).cacheDir, path.join('/h', 'hub'));
    assert.equal(resolveHubSettings({}, { HF_HOME: '/h', HUGGINGFACE_HUB_CACHE: '/old' }).cacheDir, '/old');
    assert.equal(resolveHubSettings({}, { HUGGINGFACE_HUB_CACHE: '/old', HF_HUB_CACHE: '/c' }).cacheDir, '/c');
    assert.equal(resolveHubSettings({}, { HF_HUB_CACHE: '~/hf' }).cacheDir, path.join(homedir(), 'hf'));
    assert.equal(resolveHubSettings({ cacheDir: '/setting' }, { HF_HUB_CACHE: '/c' }).cacheDir, '/setting');
    assert.equal(resolveHubSettings({}, { HF_ENDPOINT: 'https://mirror.example/' }).endpoint, 'https://mirror.example');
    assert.equal(resolveHubSettings({ endpoint: 'http://127.0.0.1:1' }, { HF_ENDPOINT: 'https://mirror.example' }).endpoint, 'http://127.0.0.1:1');
    assert.equal(resolveHubSettings({}, { HF_HUB_OFFLINE: '1' }).offline, true);
    assert.equal(resolveHubSettings({}, { HF_HUB_OFFLINE: 'false' }).offline, false);
    assert.equal(resolveHubSettings({ offline: false }, { HF_HUB_OFFLINE: 'yes' }).offline, false);
  });

  it('finds the token in the request, HF_TOKEN, or the stored login', async () => {
    const home = path.join(folder, 'hf-home');
    await rm(home, { recursive: true, force: true });
    await mkdir(home, { recursive: true });
    await writeFile(path.join(home, 'token'), 'hf_stored\n');
    assert.deepEqual(pick(resolveHubSettings({}, { HF_HOME: home })), { token: 'hf_stored', tokenSource: `the token file ${path.join(home, 'token')}` });
    assert.deepEqual(pick(resolveHubSettings({}, { HF_HOME: home, HF_TOKEN: 'hf_env' })), { token: 'hf_env', tokenSource: 'HF_TOKEN' });
    assert.deepEqual(pick(resolveHubSettings({ token: 'hf_param' }, { HF_TOKEN: 'hf_env' })), { token: 'hf_param', tokenSource: 'the request' });
    const tokenPath = path.join(folder, 'elsewhere-token');
    await writeFile(tokenPath, 'hf_path');
    assert.equal(resolveHubSettings({}, { HF_TOKEN_PATH: tokenPath }).token, 'hf_path');
    assert.deepEqual(pick(resolveHubSettings({}, { HF_HOME: path.join(folder, 'none') })), { token: undefined, tokenSource: undefined });
  });
});

function pick(settings: { token?: string; tokenSource?: string }): { token?: string; tokenSource?: string } {
  return { token: settings.token, tokenSource: settings.tokenSource };
}
