import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addPair, deletePair, drawnPoints, INITIAL_EDITOR_STATE, movePoint, revertToDocument, showDocument } from '../../../src/webview/editor-state';
import { Store } from '../../../src/webview/store';
import type { DocumentView } from '../../../src/shared/webview-messages';

describe('editor store', () => {
  it('draws the current state on subscribing, then once per change, and nothing for a change that keeps the state', () => {
    const store = new Store({ count: 0 });
    const drawn: [number, number | undefined][] = [];
    const stop = store.subscribe((state, previous) => drawn.push([state.count, previous?.count]));
    store.update((s) => ({ count: s.count + 1 }));
    store.update((s) => s);
    stop();
    store.update((s) => ({ count: s.count + 1 }));
    assert.deepEqual(drawn, [
      [0, undefined],
      [1, 0],
    ]);
    assert.equal(store.state.count, 2);
  });

  it('keeps a dragged point on the canvas only until the drag lands, and a document replaces the page points', () => {
    const view = { revision: 3, points: [{ handle: [1, 2], target: [3, 4] }] } as unknown as DocumentView;
    let state = showDocument({ ...INITIAL_EDITOR_STATE, selected: { index: 4, end: 'handle' } }, view);
    assert.equal(state.selected, undefined, 'a selection past the points is dropped');
    assert.notEqual(state.points[0], view.points[0], 'the page edits a copy of the document points');

    state = addPair(state, { handle: [5, 6], target: [7, 8] });
    assert.deepEqual(state.selected, { index: 1, end: 'target' });
    state = { ...state, moving: { ref: { index: 1, end: 'target' }, to: [9, 9] } };
    assert.deepEqual(state.points[1], { handle: [5, 6], target: [7, 8] }, 'the list keeps the point until the drag lands');
    assert.deepEqual(drawnPoints(state)[1], { handle: [5, 6], target: [9, 9] });

    const landed = movePoint(state, { index: 1, end: 'target' }, [9, 9]);
    assert.deepEqual(landed.points[1], { handle: [5, 6], target: [9, 9] });
    assert.equal(landed.moving, undefined);
    assert.deepEqual(revertToDocument(state).points, [{ handle: [1, 2], target: [3, 4] }]);
    assert.deepEqual(deletePair(landed, 0), { ...landed, points: [{ handle: [5, 6], target: [9, 9] }], selected: undefined });
  });
});
