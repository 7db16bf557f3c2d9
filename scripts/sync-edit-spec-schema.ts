/**
 * Writes the JSON Schema of `*.clipdrag-edit.json` (schemas/clipdrag-edit.schema.json, contributed through
 * package.json `jsonValidation`) from the edit spec's definition. The build runs it; a unit test checks the
 * committed file is current.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EDIT_SPEC_SCHEMA_FILE, editSpecJsonSchemaText } from '../src/shared/edit-spec-schema';

const file = path.resolve(__dirname, '..', EDIT_SPEC_SCHEMA_FILE);
const text = editSpecJsonSchemaText();
const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
if (current !== text) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  console.log(`wrote ${EDIT_SPEC_SCHEMA_FILE}`);
}
