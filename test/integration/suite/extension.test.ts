// Runs inside a real VS Code (code-server under test/integration/run.mjs, or desktop VS Code under
// run-desktop.mjs), against the built extension in dist/.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import type { ClipdragApi } from '../../../src/extension/api';
import { InitializeRequest, type InitializeResult } from '../../../src/shared/protocol';
import { askRunner, delay, reportSidecarPid, runnerCanQueryPage, type WebviewImageInfo } from './runner-channel';

const EXTENSION_ID = 'clipdrag.clipdrag-vscode';
const SAMPLE = 'sample.png';

function pngSize(file: string): { width: number; height: number } {
  const header = fs.readFileSync(file).subarray(0, 24);
  assert.equal(header.toString('latin1', 12, 16), 'IHDR', `${file} is not a PNG`);
  return { width: header.readUInt32BE(16), height: header.readUInt32BE(20) };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; ; await delay(100)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

describe('CLIPDrag extension inside VS Code', function () {
  let api: ClipdragApi;
  let sampleUri: vscode.Uri;

  before(function () {
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the test run must open the sample folder as its workspace');
    sampleUri = vscode.Uri.joinPath(folder.uri, SAMPLE);
    assert.ok(fs.existsSync(sampleUri.fsPath), `${sampleUri.fsPath} is missing`);
  });

  after(function () {
    const pid = api?.sidecar.pid;
    if (pid !== undefined) reportSidecarPid(pid);
  });

  it('activates and returns its API', async function () {
    const extension = vscode.extensions.getExtension<ClipdragApi>(EXTENSION_ID);
    assert.ok(extension, `extension ${EXTENSION_ID} is not installed in this VS Code`);
    api = await extension.activate();
    assert.equal(extension.isActive, true);
    assert.equal(typeof api?.sidecar?.start, 'function', 'activate() must return { sidecar, editor }');
    assert.equal(typeof api?.editor?.whenImageSettled, 'function', 'activate() must return { sidecar, editor }');
  });

  it('registers all of its commands', async function () {
    const commands = await vscode.commands.getCommands(true);
    const contributed = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { contributes: { commands: { command: string }[] } }).contributes.commands;
    assert.ok(contributed.length >= 6);
    for (const { command } of contributed) assert.ok(commands.includes(command), `command ${command} is contributed but not registered`);
  });

  it('starts the sidecar process, which answers initialize', async function () {
    const result = await api.sidecar.start();
    reportSidecarPid(result.pid);
    const packageVersion = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON as { version: string }).version;
    assert.equal(result.version, packageVersion);
    assert.equal(result.pid, api.sidecar.pid);
    assert.notEqual(result.pid, process.pid, 'the engine must run in its own process');
    assert.ok(isAlive(result.pid), `sidecar pid ${result.pid} is not a live process`);
    assert.match(result.onnxruntimeVersion, /^\d+\.\d+\.\d+/);
    const cpu = result.executionProviders.find((p) => p.name === 'cpu');
    assert.ok(cpu?.usable, `the CPU provider must be usable: ${JSON.stringify(result.executionProviders)}`);
    // The default preference is auto: it must resolve to a provider that is usable here.
    assert.equal(result.executionProvider.preference, 'auto');
    assert.ok(result.executionProvider.ok, `auto found no provider: ${JSON.stringify(result.executionProvider)}`);
    const chosen = result.executionProviders.find((p) => p.name === (result.executionProvider.ok ? result.executionProvider.provider : ''));
    assert.ok(chosen?.usable, `auto chose ${JSON.stringify(result.executionProvider)}, which is not usable`);
  });

  it("leaves VS Code's image preview the default editor, with an Open in CLIPDrag Editor button that works", async function () {
    await vscode.commands.executeCommand('vscode.open', sampleUri);
    const preview = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    assert.ok(preview instanceof vscode.TabInputCustom, `expected VS Code's image preview, got ${JSON.stringify(preview)}`);
    assert.equal(preview.viewType, 'imagePreview.previewEditor', 'CLIPDrag must not take over as the default image editor');
    if (!runnerCanQueryPage()) this.skip();

    const title = 'Open in CLIPDrag Editor';
    const actions = await waitFor('the title-bar button', async () => {
      const labels = await askRunner({ kind: 'editorActions' });
      return labels.some((label) => label.startsWith(title)) ? labels : undefined;
    });
    assert.ok(actions.some((label) => label.startsWith(title)));
    await askRunner({ kind: 'clickEditorAction', label: title });
    await waitFor('the CLIPDrag editor to become active', () => {
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return input instanceof vscode.TabInputCustom && input.viewType === 'clipdrag.editor' && input.uri.toString() === sampleUri.toString() ? true : undefined;
    });
    // Once it is the CLIPDrag editor, the button is gone (it only opens it).
    await waitFor('the button to leave the title bar', async () => ((await askRunner({ kind: 'editorActions' })).some((label) => label.startsWith(title)) ? undefined : true));
  });

  it('opens the CLIPDrag editor on a sample image, and its webview shows the image', async function () {
    const expected = pngSize(sampleUri.fsPath);
    await vscode.commands.executeCommand('clipdrag.openEditor', sampleUri);
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    assert.ok(input instanceof vscode.TabInputCustom, `active tab is not a custom editor: ${JSON.stringify(input)}`);
    assert.equal(input.viewType, 'clipdrag.editor');
    assert.equal(input.uri.toString(), sampleUri.toString());

    // What the webview reported to the extension...
    const state = await api.editor.whenImageSettled(sampleUri);
    assert.deepEqual(state, { kind: 'shown', ...expected });

    // ...and, independently, what its DOM holds (the runner reads the webview frame through Playwright).
    if (!runnerCanQueryPage()) {
      console.log('      (webview DOM check skipped: this runner cannot look at the page)');
      return;
    }
    const image = await waitFor<WebviewImageInfo>('the webview image element to load', async () =>
      (await askRunner({ kind: 'webviewImages' })).find((info) => info.complete && info.naturalWidth > 0),
    );
    assert.equal(image.naturalWidth, expected.width);
    assert.equal(image.naturalHeight, expected.height);
    assert.ok(image.frameUrl.includes('fake.html'), `image found outside the webview frame: ${image.frameUrl}`);
    assert.ok(decodeURIComponent(image.src).includes(SAMPLE), `the webview shows ${image.src}, not ${SAMPLE}`);
    assert.match(image.status, new RegExp(`${expected.width} × ${expected.height}`));
    // The page runs under the strict policy: nothing by default, scripts only with the per-load nonce.
    assert.match(image.contentSecurityPolicy, /^default-src 'none'; img-src [^;]+ blob: data:; style-src [^;]+; script-src 'nonce-[A-Za-z0-9+/=]{24}'$/);
  });

  it('restarts the sidecar with the new preference when the device setting changes', async function () {
    const nextStart = () =>
      new Promise<InitializeResult>((resolve) => {
        const subscription = api.sidecar.onDidStart((result) => {
          subscription.dispose();
          resolve(result);
        });
      });
    const before = await api.sidecar.start();
    const settings = vscode.workspace.getConfiguration('clipdrag');
    const restarted = nextStart();
    await settings.update('device', 'cpu', vscode.ConfigurationTarget.Global);
    const after = await restarted;
    reportSidecarPid(after.pid);
    assert.notEqual(after.pid, before.pid);
    assert.equal(isAlive(before.pid), false, 'the old sidecar must have been stopped');
    assert.deepEqual(after.executionProvider, { ok: true, preference: 'cpu', provider: 'cpu', reason: 'requested explicitly' });

    // Back to the default; wait for that restart too, so it cannot overlap the next test.
    const restartedAgain = nextStart();
    await settings.update('device', undefined, vscode.ConfigurationTarget.Global);
    const reset = await restartedAgain;
    reportSidecarPid(reset.pid);
    assert.equal(reset.executionProvider.preference, 'auto');
  });

  it('fails a pending request clearly when the sidecar dies, and restarts it on the next request', async function () {
    const first = await api.sidecar.start();
    const exited = new Promise<void>((resolve) => api.sidecar.onDidExit((event) => event.pid === first.pid && resolve()));
    const pending = api.sidecar.sendRequest(InitializeRequest, { client: 'integration test', devicePreference: 'cpu' });
    process.kill(first.pid, 'SIGKILL');
    await assert.rejects(pending, (error: unknown) => {
      // The extension's bundle has its own copy of the class, so compare by name rather than instanceof.
      assert.ok(error instanceof Error && error.name === 'SidecarExitedError', `unexpected error: ${String(error)}`);
      assert.match((error as Error).message, /killed by SIGKILL during "initialize"/);
      return true;
    });
    await exited;
    assert.equal(api.sidecar.pid, undefined, 'a dead sidecar must not be reported as running');
    assert.equal(isAlive(first.pid), false);

    const second = await api.sidecar.sendRequest(InitializeRequest, { client: 'integration test', devicePreference: 'cpu' });
    reportSidecarPid(second.pid);
    assert.notEqual(second.pid, first.pid, 'a new sidecar process must have been started');
    assert.ok(isAlive(second.pid));
    assert.deepEqual(second.executionProvider, { ok: true, preference: 'cpu', provider: 'cpu', reason: 'requested explicitly' });
  });
});
