import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULTS_SETTINGS_PREFIX, defaultsSettingsSchema } from '../../../src/shared/edit-parameter-settings';

test('package.json offers exactly the edit parameters, defaults and ranges the spec accepts', () => {
  const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
  const properties: Record<string, unknown> = manifest.contributes.configuration.properties;
  const declared = Object.fromEntries(Object.entries(properties).filter(([key]) => key.startsWith(DEFAULTS_SETTINGS_PREFIX)));
  assert.deepEqual(declared, JSON.parse(JSON.stringify(defaultsSettingsSchema(properties))), 'run `npm run sync:settings`');
});
