import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyModel } from '../../../src/shared/editor-model';
import { describeRejectedEdit, documentView, parseFromWebviewMessage } from '../../../src/shared/webview-messages';

describe('webview → extension messages', () => {
  it('accepts the well-formed messages, dropping unknown fields', () => {
    assert.deepEqual(parseFromWebviewMessage({ type: 'ready', extra: 1 }), { type: 'ready' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'imageLoaded', src: 's', width: 512, height: 384 }), { type: 'imageLoaded', src: 's', width: 512, height: 384 });
    assert.deepEqual(parseFromWebviewMessage({ type: 'imageFailed', src: 's', message: 'm' }), { type: 'imageFailed', src: 's', message: 'm' });
  });

  it('rejects anything malformed', () => {
    for (const bad of [null, 'ready', 42, {}, { type: 'nope' }, { type: 'imageLoaded', src: 's', width: 0, height: 1 }, { type: 'imageLoaded', src: 's', width: 1.5, height: 1 }, { type: 'imageLoaded', width: 1, height: 1 }, { type: 'imageFailed', src: 's' }]) {
      assert.equal(parseFromWebviewMessage(bad), undefined, JSON.stringify(bad));
    }
  });
});

describe('editor messages', () => {
  it('accepts edits, commands, run, results and actions from the page', () => {
    assert.deepEqual(parseFromWebviewMessage({ type: 'edit', edit: { kind: 'deletePair', index: 2 } }), { type: 'edit', edit: { kind: 'deletePair', index: 2 } });
    assert.deepEqual(parseFromWebviewMessage({ type: 'edit', edit: { kind: 'clearMask' }, strokeId: 's1' }), { type: 'edit', edit: { kind: 'clearMask' }, strokeId: 's1' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'command', command: 'undo' }), { type: 'command', command: 'undo' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'run' }), { type: 'run' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'cancelRun', extra: 1 }), { type: 'cancelRun' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'result', action: 'reveal', file: 'a.clipdrag.png' }), { type: 'result', action: 'reveal', file: 'a.clipdrag.png' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'userAction', action: 'chooseDevice' }), { type: 'userAction', action: 'chooseDevice' });
    assert.deepEqual(parseFromWebviewMessage({ type: 'maskFileDecoded', path: 'm.png', mask: { width: 2, height: 1, rle: [1, 1] } }), { type: 'maskFileDecoded', path: 'm.png', mask: { width: 2, height: 1, rle: [1, 1] } });
  });

  it('drops malformed editor messages, and says why for edits', () => {
    for (const bad of [
      { type: 'edit', edit: { kind: 'addPair' } },
      { type: 'command', command: 'format' },
      { type: 'result', action: 'delete', file: 'x.png' },
      { type: 'userAction', action: 'rm' },
      { type: 'maskFileDecoded', path: 'm.png', mask: { width: 2, height: 1, rle: [-1] } },
    ]) {
      assert.equal(parseFromWebviewMessage(bad), undefined, JSON.stringify(bad));
    }
    assert.match(describeRejectedEdit({ type: 'edit', edit: { kind: 'addPair' } })!, /addPair needs pair/);
    assert.equal(describeRejectedEdit({ type: 'ready' }), undefined);
  });

  it('builds the page view of a model as a copy', () => {
    const model = { ...emptyModel(), points: [{ handle: [1, 2] as [number, number], target: [3, 4] as [number, number] }], parameters: { seed: 1 }, model: 'a/b' };
    const view = documentView(model, 5, 2);
    assert.deepEqual(view, { revision: 5, mode: 'clipdrag', prompt: '', editPrompt: '', points: [{ handle: [1, 2], target: [3, 4] }], parameters: { seed: 1 }, maskRevision: 2, model: 'a/b' });
    view.points[0]!.handle[0] = 99;
    assert.equal(model.points[0]!.handle[0], 1);
  });
});
