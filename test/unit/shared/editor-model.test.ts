import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMaskRle, encodeMaskRle, validateEditSpec, type EditSpec } from '../../../src/shared/edit-spec';
import {
  applyEdit,
  effectiveParameter,
  emptyModel,
  MaskNotDecodedError,
  maskBitmapOf,
  maskSpecOf,
  modelFromSpec,
  parametersProblem,
  parseEditorEdit,
  specFromModel,
  type EditOutcome,
  type EditorEdit,
  type EditorModel,
} from '../../../src/shared/editor-model';

const SIZE = { width: 64, height: 48 };

function changed(outcome: EditOutcome): { model: EditorModel; label: string } {
  assert.equal(outcome.kind, 'changed', JSON.stringify(outcome));
  return outcome as { kind: 'changed'; model: EditorModel; label: string };
}

function apply(model: EditorModel, ...edits: EditorEdit[]): EditorModel {
  return edits.reduce((current, edit) => changed(applyEdit(current, edit, SIZE)).model, model);
}

describe('editor model: edits', () => {
  it('adds, moves and deletes point pairs, with labels for the undo stack', () => {
    const start = emptyModel();
    const added = changed(applyEdit(start, { kind: 'addPair', pair: { handle: [10, 12], target: [30, 12] } }, SIZE));
    assert.equal(added.label, 'Add Point Pair 1');
    assert.deepEqual(added.model.points, [{ handle: [10, 12], target: [30, 12] }]);
    assert.deepEqual(start.points, [], 'the model before the edit is untouched');

    const moved = changed(applyEdit(added.model, { kind: 'movePoint', index: 0, end: 'target', to: [40, 20] }, SIZE));
    assert.equal(moved.label, 'Move Target 1');
    assert.deepEqual(moved.model.points[0], { handle: [10, 12], target: [40, 20] });
    assert.deepEqual(added.model.points[0]!.target, [30, 12], 'the earlier model keeps its point (undo restores it)');

    const two = apply(moved.model, { kind: 'addPair', pair: { handle: [1, 1], target: [2, 2] } });
    const deleted = changed(applyEdit(two, { kind: 'deletePair', index: 0 }, SIZE));
    assert.equal(deleted.label, 'Delete Point Pair 1');
    assert.deepEqual(deleted.model.points, [{ handle: [1, 1], target: [2, 2] }]);
  });

  it('rejects points outside the image and pairs that do not exist, saying why', () => {
    const model = apply(emptyModel(), { kind: 'addPair', pair: { handle: [1, 1], target: [2, 2] } });
    const outside = applyEdit(model, { kind: 'addPair', pair: { handle: [64, 0], target: [1, 1] } }, SIZE);
    assert.equal(outside.kind, 'rejected');
    assert.match((outside as { message: string }).message, /handle point \(64, 0\) is outside the image \(0–63, 0–47\)/);
    assert.equal(applyEdit(model, { kind: 'movePoint', index: 0, end: 'handle', to: [-1, 0] }, SIZE).kind, 'rejected');
    assert.match((applyEdit(model, { kind: 'deletePair', index: 3 }, SIZE) as { message: string }).message, /no point pair 4 \(the edit has 1\)/);
    // Without a known image size only negative coordinates are refused.
    assert.equal(applyEdit(model, { kind: 'addPair', pair: { handle: [5000, 1], target: [1, 1] } }).kind, 'changed');
  });

  it('reports edits that change nothing as unchanged (no undo step)', () => {
    const model = apply(emptyModel(), { kind: 'addPair', pair: { handle: [1, 1], target: [2, 2] } }, { kind: 'setPrompt', field: 'prompt', text: 'a cat' });
    assert.equal(applyEdit(model, { kind: 'movePoint', index: 0, end: 'handle', to: [1, 1] }, SIZE).kind, 'unchanged');
    assert.equal(applyEdit(model, { kind: 'setPrompt', field: 'prompt', text: 'a cat' }).kind, 'unchanged');
    assert.equal(applyEdit(model, { kind: 'setMode', mode: 'clipdrag' }).kind, 'unchanged');
    assert.equal(applyEdit(model, { kind: 'clearMask' }).kind, 'unchanged');
    assert.equal(applyEdit(model, { kind: 'setParameter', name: 'seed', value: undefined }).kind, 'unchanged');
    assert.equal(applyEdit(emptyModel(), { kind: 'clearAll' }).kind, 'unchanged');
  });

  it('appends mask strokes without copying the ones before, and clears points and mask together', () => {
    const first = apply(emptyModel(), { kind: 'maskStroke', stroke: { mode: 'paint', radius: 4, points: [[10, 10]] } });
    const second = changed(applyEdit(first, { kind: 'maskStroke', stroke: { mode: 'erase', radius: 2, points: [[10, 10], [12, 10]] } }));
    assert.equal(second.label, 'Erase Mask');
    assert.equal(second.model.mask.strokes.length, 2);
    assert.equal(second.model.mask.strokes[0], first.mask.strokes[0], 'earlier strokes are shared, not copied');
    const withPoints = apply(second.model, { kind: 'addPair', pair: { handle: [1, 1], target: [2, 2] } }, { kind: 'setPrompt', field: 'prompt', text: 'kept' });
    const cleared = changed(applyEdit(withPoints, { kind: 'clearAll' }));
    assert.equal(cleared.label, 'Clear Points and Mask');
    assert.deepEqual(cleared.model.points, []);
    assert.deepEqual(cleared.model.mask, { base: { kind: 'none' }, strokes: [] });
    assert.equal(cleared.model.prompt, 'kept', 'prompts stay');
  });

  it('validates parameters with the spec module and resets them to their defaults', () => {
    const model = apply(emptyModel(), { kind: 'setParameter', name: 'dragSteps', value: 120 });
    assert.equal(effectiveParameter(model, 'dragSteps'), 120);
    assert.equal(effectiveParameter(model, 'seed'), 42);
    const tooMany = applyEdit(model, { kind: 'setParameter', name: 'loraRank', value: 1000 });
    assert.equal(tooMany.kind, 'rejected');
    assert.match((tooMany as { message: string }).message, /^loraRank: expected an integer from 1 to 128/);
    const fraction = applyEdit(model, { kind: 'setParameter', name: 'dragSteps', value: 1.5 });
    assert.match((fraction as { message: string }).message, /^dragSteps: expected an integer/);
    // A combination the spec refuses: mutual self-attention starting after the last step.
    const combination = applyEdit(apply(model, { kind: 'setParameter', name: 'masaStartStep', value: 20 }), { kind: 'setParameter', name: 'inferenceSteps', value: 10 });
    assert.equal(combination.kind, 'rejected');
    assert.match((combination as { message: string }).message, /masaStartStep/);
    const reset = changed(applyEdit(model, { kind: 'setParameter', name: 'dragSteps', value: undefined }));
    assert.equal(reset.label, 'Reset dragSteps');
    assert.deepEqual(reset.model.parameters, {});
    assert.equal(parametersProblem({ fusionRule: 'projection' }, 'fusionRule'), undefined);
    assert.match(parametersProblem({ fusionRule: 'sideways' as never }, 'fusionRule')!, /^fusionRule: expected one of "official", "projection"/);
  });
});

describe('editor model: specs and masks', () => {
  const spec: EditSpec = {
    version: 1,
    mode: 'drag',
    prompt: 'a red ball',
    editPrompt: 'a blue ball',
    points: [{ handle: [3, 4], target: [9, 4] }],
    mask: encodeMaskRle({ width: 4, height: 2, data: Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 0]) }),
    parameters: { seed: 7 },
    model: 'owner/sd15',
  };

  it('round-trips a spec through the model', () => {
    const model = modelFromSpec(spec);
    assert.equal(model.mask.base.kind, 'rle');
    assert.deepEqual(specFromModel(model, maskSpecOf(model.mask, { width: 4, height: 2 })), spec);
    assert.deepEqual(specFromModel(emptyModel(), undefined), { version: 1, mode: 'clipdrag', prompt: '', points: [] });
  });

  it('rasterises strokes onto the base mask only when there are strokes, as a valid RLE spec mask', () => {
    const size = { width: 4, height: 2 };
    const model = modelFromSpec(spec);
    assert.equal(maskSpecOf(model.mask, size), spec.mask, 'no strokes: the base as it was');
    const painted = apply(model, { kind: 'maskStroke', stroke: { mode: 'paint', radius: 0.5, points: [[0, 1]] } }, { kind: 'maskStroke', stroke: { mode: 'erase', radius: 0.5, points: [[2, 0]] } });
    const mask = maskSpecOf(painted.mask, size);
    assert.ok(mask && typeof mask === 'object');
    assert.deepEqual([...decodeMaskRle(mask).data], [0, 1, 0, 0, 1, 0, 1, 0]);
    assert.ok(validateEditSpec(specFromModel(painted, mask)).ok);
  });

  it('drops a mask with nothing editable left, and keeps a PNG mask file by name until painted over', () => {
    const size = { width: 8, height: 8 };
    const erasedAll = apply(emptyModel(), { kind: 'maskStroke', stroke: { mode: 'paint', radius: 2, points: [[4, 4]] } }, { kind: 'maskStroke', stroke: { mode: 'erase', radius: 20, points: [[4, 4]] } });
    assert.equal(maskSpecOf(erasedAll.mask, size), undefined);

    const fromFile = modelFromSpec({ version: 1, mode: 'clipdrag', prompt: '', points: [], mask: 'cat.png.clipdrag-mask.png' });
    assert.equal(maskSpecOf(fromFile.mask, size), 'cat.png.clipdrag-mask.png');
    const paintedOverFile = apply(fromFile, { kind: 'maskStroke', stroke: { mode: 'paint', radius: 1, points: [[0, 0]] } });
    assert.throws(() => maskSpecOf(paintedOverFile.mask, size), MaskNotDecodedError);
    const decodedFile = { width: 8, height: 8, data: new Uint8Array(64).fill(1, 32) };
    const bitmap = maskBitmapOf(paintedOverFile.mask, size, decodedFile);
    assert.equal(bitmap.data[0], 1, 'the stroke');
    assert.equal(bitmap.data[63], 1, 'the file');
    assert.equal(bitmap.data[20], 0);
    assert.equal(decodedFile.data[0], 0, 'the decoded file is not modified');
    assert.throws(() => maskSpecOf(paintedOverFile.mask, size, { width: 4, height: 4, data: new Uint8Array(16) }), /is 4 × 4 pixels, but the image is 8 × 8/);
  });
});

describe('editor model: edits from the page', () => {
  it('accepts well-formed edits and returns clean copies', () => {
    const edit = parseEditorEdit({ kind: 'addPair', pair: { handle: [1, 2], target: [3, 4], extra: true }, junk: 1 });
    assert.deepEqual(edit, { kind: 'addPair', pair: { handle: [1, 2], target: [3, 4] } });
    assert.deepEqual(parseEditorEdit({ kind: 'maskStroke', stroke: { mode: 'erase', radius: 3, points: [[1, 1]] } }), { kind: 'maskStroke', stroke: { mode: 'erase', radius: 3, points: [[1, 1]] } });
    assert.deepEqual(parseEditorEdit({ kind: 'setParameter', name: 'seed' }), { kind: 'setParameter', name: 'seed', value: undefined });
    assert.deepEqual(parseEditorEdit({ kind: 'clearAll' }), { kind: 'clearAll' });
  });

  it('refuses malformed edits with a reason', () => {
    const bad: unknown[] = [
      null,
      { kind: 'addPair', pair: { handle: [1], target: [3, 4] } },
      { kind: 'movePoint', index: -1, end: 'handle', to: [1, 1] },
      { kind: 'movePoint', index: 0, end: 'middle', to: [1, 1] },
      { kind: 'maskStroke', stroke: { mode: 'paint', radius: 0, points: [[1, 1]] } },
      { kind: 'maskStroke', stroke: { mode: 'paint', radius: 3, points: [] } },
      { kind: 'maskStroke', stroke: { mode: 'smudge', radius: 3, points: [[1, 1]] } },
      { kind: 'maskStroke', stroke: { mode: 'paint', radius: 3, points: [[1, Number.NaN]] } },
      { kind: 'setPrompt', field: 'title', text: 'x' },
      { kind: 'setParameter', name: 'nonsense', value: 1 },
      { kind: 'setParameter', name: 'seed', value: Infinity },
      { kind: 'teleport' },
    ];
    for (const value of bad) assert.equal(typeof parseEditorEdit(value), 'string', JSON.stringify(value));
  });
});
