// Which recorded runs a batch counts as the run it would make: the precision part of the run fingerprint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ResolvedEditSpec } from '../../../src/shared/edit-spec';
import type { Precision } from '../../../src/shared/protocol';
import { recipeRunIdentity, runFingerprint } from '../../../src/sidecar/batch/fingerprint';

const spec = { version: 1, mode: 'drag', prompt: 'a cat', points: [{ handle: [1, 2], target: [3, 4] }], parameters: { seed: 1 } } as unknown as ResolvedEditSpec;
const recipe = (pipeline: Record<string, unknown>) => ({ source: { sha256: 'abc' }, spec, models: [{ role: 'stable-diffusion', id: 'sd' }], pipeline: { workingWidth: 512, guidanceText: null, ...pipeline } });
const planned = (precision: Precision) => runFingerprint({ sourceSha256: 'abc', spec, model: 'sd', clipModel: null, workingWidth: 512, precision });
const recorded = (pipeline: Record<string, unknown>) => runFingerprint(recipeRunIdentity(recipe(pipeline))!);

test('an auto batch counts fp32 results and the ones the memory policy ran with float16 weights', () => {
  assert.equal(recorded({ precision: 'fp32' }), planned('fp32'));
  assert.equal(recorded({}), planned('fp32'), 'recipes from before the precision was recorded ran in fp32');
  assert.equal(recorded({ precision: 'fp16-weights', precisionByPolicy: true }), planned('fp32'));
});

test('an explicit precision counts only results of that precision', () => {
  assert.equal(recorded({ precision: 'fp16-weights' }), planned('fp16-weights'));
  assert.notEqual(recorded({ precision: 'fp16-weights' }), planned('fp32'));
  assert.equal(recorded({ precision: 'fp16' }), planned('fp16'));
  assert.notEqual(planned('fp16'), planned('fp16-weights'));
});
