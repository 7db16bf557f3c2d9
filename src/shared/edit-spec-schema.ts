// The JSON Schema of `*.clipdrag-edit.json`, built from the same tables the validator checks against (fields, modes,
// version, parameter definitions). VS Code reads the generated file (package.json `jsonValidation`) to offer
// completion and flag mistakes while a spec is edited by hand; `validateEditSpec` stays the authority, with its
// precise messages and the checks a schema cannot state (see EDIT_SPEC_SCHEMA_LIMITS). No Node- or DOM-only code.
import { EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type NumericParameterDefinition } from './edit-parameters';
import { EDIT_MODES, EDIT_MODE_DESCRIPTIONS, EDIT_SPEC_FIELDS, EDIT_SPEC_VERSION, MASK_RLE_FIELDS, POINT_PAIR_FIELDS } from './edit-spec';

/** Where the generated schema lives in the package (package.json `jsonValidation` points at it). */
export const EDIT_SPEC_SCHEMA_FILE = 'schemas/clipdrag-edit.schema.json';

/** What the validator checks and the schema cannot: the schema accepts these, the validator refuses them. */
export const EDIT_SPEC_SCHEMA_LIMITS = [
  'parameters that depend on each other (round(inversionStrength × inferenceSteps) ≥ 1, masaStartStep ≤ inferenceSteps)',
  'an inline mask whose runs do not add up to width × height',
  'a mask path that leaves the folder further down the path ("a/../../m.png"; a leading "../" is refused by both)',
  'points and masks against the image size, and at least one point pair for a run (the image is not known to a schema)',
] as const;

type Schema = Record<string, unknown>;

const point = (what: string): Schema => ({
  type: 'array',
  description: `${what} [x, y] in pixels of the source image (x to the right, y down)`,
  items: { type: 'number', minimum: 0 },
  minItems: 2,
  maxItems: 2,
});

/** A model id: not blank, no control characters (the validator's rule). */
const MODEL_ID_PATTERN = '^(?=.*\\S)[^\\u0000-\\u001f]*$';
/** A relative `/`-separated path to a .png that does not start outside the folder (see maskPathProblem). */
const MASK_PATH_PATTERN = '^(?![/]|[A-Za-z]:|\\.\\.(?:/|$))[^\\\\\\u0000]*\\.[pP][nN][gG]$';

function parameterSchema(): Schema {
  const properties: Record<string, Schema> = {};
  for (const name of EDIT_PARAMETER_NAMES) {
    const definition = EDIT_PARAMETER_DEFINITIONS[name];
    const description = `${definition.description[0]!.toUpperCase()}${definition.description.slice(1)}. Default ${definition.default} (${definition.source}).`;
    if (definition.kind === 'enum') {
      properties[name] = { type: 'string', enum: [...definition.values], default: definition.default, description };
      continue;
    }
    const numeric = definition as NumericParameterDefinition;
    properties[name] = {
      type: numeric.kind,
      ...(numeric.minExclusive ? { exclusiveMinimum: numeric.min } : { minimum: numeric.min }),
      maximum: numeric.max,
      default: numeric.default,
      description,
    };
  }
  return { type: 'object', description: EDIT_SPEC_FIELDS.parameters.description, additionalProperties: false, properties };
}

/** The schema (JSON Schema draft-07, the dialect VS Code's JSON language service reads best). */
export function editSpecJsonSchema(): Schema {
  const field = (name: keyof typeof EDIT_SPEC_FIELDS) => ({ description: EDIT_SPEC_FIELDS[name].description });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'CLIPDrag edit spec',
    description: 'One CLIPDrag edit of the image this file is named after (<image>.clipdrag-edit.json).',
    type: 'object',
    additionalProperties: false,
    required: Object.entries(EDIT_SPEC_FIELDS).filter(([, f]) => f.required).map(([name]) => name),
    properties: {
      version: { ...field('version'), const: EDIT_SPEC_VERSION },
      mode: { ...field('mode'), type: 'string', enum: [...EDIT_MODES], enumDescriptions: EDIT_MODES.map((m) => EDIT_MODE_DESCRIPTIONS[m]) },
      prompt: { ...field('prompt'), type: 'string' },
      editPrompt: { ...field('editPrompt'), type: 'string' },
      points: {
        ...field('points'),
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: [...POINT_PAIR_FIELDS],
          properties: { handle: point('The point to move:'), target: point('Where the handle should end up:') },
        },
      },
      mask: {
        ...field('mask'),
        oneOf: [
          { type: 'string', pattern: MASK_PATH_PATTERN, description: 'A PNG mask next to the spec (white or any non-zero colour = editable), path relative to the spec with "/" separators.' },
          {
            type: 'object',
            additionalProperties: false,
            required: [...MASK_RLE_FIELDS],
            description: 'An inline mask: run lengths alternating keep (0) and editable (1) pixels, row-major, starting with keep.',
            properties: {
              width: { type: 'integer', minimum: 1, description: "The image's width in pixels." },
              height: { type: 'integer', minimum: 1, description: "The image's height in pixels." },
              rle: { type: 'array', items: { type: 'integer', minimum: 0 }, description: 'Run lengths; they add up to width × height.' },
            },
          },
        ],
      },
      parameters: parameterSchema(),
      model: { ...field('model'), type: 'string', pattern: MODEL_ID_PATTERN },
      clipModel: { ...field('clipModel'), type: 'string', pattern: MODEL_ID_PATTERN },
    },
  };
}

/** The schema file's text as written into the package. */
export function editSpecJsonSchemaText(): string {
  return `${JSON.stringify(editSpecJsonSchema(), null, 2)}\n`;
}
