import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFromWebviewMessage } from '../../../src/shared/webview-messages';

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
