// The JSON Schema VS Code uses for *.clipdrag-edit.json and the spec validator come from one definition: the schema
// accepts and refuses the same specs as the validator (apart from the checks a schema cannot state, listed in
// EDIT_SPEC_SCHEMA_LIMITS), and the file in the package is the one the definition generates.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import Ajv from 'ajv';
import { EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type NumericParameterDefinition } from '../../../src/shared/edit-parameters';
import { validateEditSpec } from '../../../src/shared/edit-spec';
import { EDIT_SPEC_SCHEMA_FILE, editSpecJsonSchema, editSpecJsonSchemaText } from '../../../src/shared/edit-spec-schema';

const repo = path.resolve(__dirname, '..', '..', '..');
// enumDescriptions is VS Code's addition to JSON Schema (hover texts for enum values).
const ajv = new Ajv({ strict: true, allErrors: true, keywords: ['enumDescriptions'] });
const schemaAccepts = ajv.compile(editSpecJsonSchema());

const base = () => ({ version: 1, mode: 'clipdrag', prompt: 'a cat', points: [{ handle: [10, 20], target: [30, 20.5] }] });
const withField = (key: string, value: unknown) => ({ ...base(), [key]: value });
const withParameters = (parameters: unknown) => withField('parameters', parameters);
const without = (key: string) => Object.fromEntries(Object.entries(base()).filter(([k]) => k !== key));

/** Hand-written specs, good and bad, each named by what it tries. */
const CASES: [string, unknown][] = [
  ['minimal', base()],
  ['drag mode, no points (a draft)', { version: 1, mode: 'drag', prompt: '', points: [] }],
  ['every field', { ...base(), editPrompt: 'a dog', mask: 'cat.png.clipdrag-mask.png', parameters: { dragSteps: 40, fusionRule: 'projection' }, model: 'owner/sd@main', clipModel: '../clip' }],
  ['inline mask', withField('mask', { width: 2, height: 2, rle: [1, 2, 1] })],
  ['mask in a sub-folder', withField('mask', './masks/cat.PNG')],
  ['not an object', [base()]],
  ['null', null],
  ['missing version', without('version')],
  ['version 2', withField('version', 2)],
  ['version "1"', withField('version', '1')],
  ['missing mode', without('mode')],
  ['unknown mode', withField('mode', 'freeform')],
  ['missing prompt', without('prompt')],
  ['prompt a number', withField('prompt', 3)],
  ['editPrompt null', withField('editPrompt', null)],
  ['missing points', without('points')],
  ['points an object', withField('points', { handle: [1, 2] })],
  ['a bare point', withField('points', [[1, 2]])],
  ['pair without target', withField('points', [{ handle: [1, 2] }])],
  ['pair with extra field', withField('points', [{ handle: [1, 2], target: [3, 4], weight: 1 }])],
  ['point of three numbers', withField('points', [{ handle: [1, 2, 3], target: [3, 4] }])],
  ['negative coordinate', withField('points', [{ handle: [-1, 2], target: [3, 4] }])],
  ['coordinate a string', withField('points', [{ handle: ['1', 2], target: [3, 4] }])],
  ['misspelt field', { ...base(), promt: 'x' }],
  ['mask absolute', withField('mask', '/tmp/m.png')],
  ['mask with drive letter', withField('mask', 'C:/m.png')],
  ['mask with backslashes', withField('mask', 'masks\\m.png')],
  ['mask leaving the folder', withField('mask', '../m.png')],
  ['mask not a png', withField('mask', 'm.jpg')],
  ['mask empty', withField('mask', '')],
  ['mask a number', withField('mask', 5)],
  ['inline mask without rle', withField('mask', { width: 2, height: 2 })],
  ['inline mask zero width', withField('mask', { width: 0, height: 2, rle: [] })],
  ['inline mask negative run', withField('mask', { width: 2, height: 2, rle: [1, -2, 5] })],
  ['inline mask fractional run', withField('mask', { width: 2, height: 2, rle: [1.5, 2.5] })],
  ['inline mask extra field', withField('mask', { width: 1, height: 1, rle: [1], invert: true })],
  ['parameters an array', withParameters([])],
  ['unknown parameter', withParameters({ dragStep: 3 })],
  ['parameter a string', withParameters({ dragSteps: '40' })],
  ['fusion rule unknown', withParameters({ fusionRule: 'sum' })],
  ['model blank', withField('model', '  ')],
  ['model with a newline', withField('model', 'owner/\nname')],
  ['clipModel a number', withField('clipModel', 1)],
];

/** Refused by the validator, accepted by the schema: the EDIT_SPEC_SCHEMA_LIMITS. */
const BEYOND_SCHEMA: [string, unknown][] = [
  ['no inversion step', withParameters({ inferenceSteps: 1, inversionStrength: 0.2 })],
  ['MasaCtrl start after the last step', withParameters({ inferenceSteps: 10, masaStartStep: 11 })],
  ['runs not adding up', withField('mask', { width: 2, height: 2, rle: [1, 2] })],
  ['mask leaving the folder further down', withField('mask', 'a/../../m.png')],
];

/** For every parameter: its limits, just past them, a fraction where integers are expected, the wrong type. */
function parameterCases(): [string, unknown][] {
  const cases: [string, unknown][] = [];
  for (const name of EDIT_PARAMETER_NAMES) {
    const definition = EDIT_PARAMETER_DEFINITIONS[name];
    const values: unknown[] = [null, true, {}];
    if (definition.kind === 'enum') values.push(...definition.values, 'other', 1);
    else {
      const { min, max, kind } = definition as NumericParameterDefinition;
      values.push(min, max, min - 1, max + 1, min + 0.5, kind === 'integer' ? max - 0.5 : max / 2, String(max));
    }
    // MasaCtrl's start step is checked against the number of steps: give it enough.
    const context = name === 'masaStartStep' ? { inferenceSteps: 1000 } : name === 'inferenceSteps' ? { inversionStrength: 1, masaStartStep: 0 } : {};
    for (const value of values) cases.push([`${name} = ${JSON.stringify(value)}`, withParameters({ ...context, [name]: value })]);
  }
  return cases;
}

describe('edit spec JSON Schema', () => {
  it('accepts and refuses the same hand-written specs as the validator', () => {
    let refused = 0;
    for (const [what, spec] of [...CASES, ...parameterCases()]) {
      const validator = validateEditSpec(spec);
      assert.equal(schemaAccepts(spec), validator.ok, `${what}: validator ${validator.ok ? 'accepts' : `refuses (${JSON.stringify(validator.issues)})`}, schema ${validator.ok ? 'refuses' : 'accepts'} (${ajv.errorsText(schemaAccepts.errors)})`);
      if (!validator.ok) refused++;
    }
    assert.ok(refused > 60, `the cases include bad specs (${refused})`);
  });

  it('leaves to the validator only the checks a schema cannot state', () => {
    for (const [what, spec] of BEYOND_SCHEMA) {
      assert.equal(validateEditSpec(spec).ok, false, what);
      assert.equal(schemaAccepts(spec), true, what);
    }
  });

  it('is the file in the package, and package.json contributes it for *.clipdrag-edit.json', () => {
    assert.equal(readFileSync(path.join(repo, EDIT_SPEC_SCHEMA_FILE), 'utf8'), editSpecJsonSchemaText(), 'run `npm run sync:schema`');
    const manifest = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { contributes: { jsonValidation: { fileMatch: string; url: string }[] } };
    assert.deepEqual(manifest.contributes.jsonValidation, [{ fileMatch: '*.clipdrag-edit.json', url: `./${EDIT_SPEC_SCHEMA_FILE}` }]);
  });

  it('describes every parameter with its default and range', () => {
    const parameters = (editSpecJsonSchema().properties as { parameters: { properties: Record<string, { default: unknown; maximum?: number }> } }).parameters.properties;
    assert.deepEqual(Object.keys(parameters), EDIT_PARAMETER_NAMES);
    for (const name of EDIT_PARAMETER_NAMES) assert.equal(parameters[name]!.default, EDIT_PARAMETER_DEFINITIONS[name].default, name);
  });
});
