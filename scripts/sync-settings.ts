/**
 * Writes the `clipdrag.defaults.*` settings of package.json from the edit-parameter definitions, so the
 * settings UI offers exactly the parameters, defaults and ranges the edit spec accepts.
 * Run `npm run sync:settings` after changing src/shared/edit-parameters.ts (a unit test checks they agree).
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultsSettingsSchema } from '../src/shared/edit-parameter-settings';

const manifestPath = path.resolve(__dirname, '..', 'package.json');
const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
const properties: Record<string, unknown> = manifest.contributes.configuration.properties;
for (const key of Object.keys(properties)) if (key.startsWith('clipdrag.defaults.')) delete properties[key];
Object.assign(properties, defaultsSettingsSchema(properties));
fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`updated ${Object.keys(defaultsSettingsSchema(properties)).length} clipdrag.defaults.* settings`);
