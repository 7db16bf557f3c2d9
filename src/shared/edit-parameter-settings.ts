/** The VS Code settings (`clipdrag.defaults.*`) that mirror the edit parameters' definitions. */
import { EDIT_PARAMETER_DEFINITIONS, EDIT_PARAMETER_NAMES, type EditParameterName } from './edit-parameters';

export const DEFAULTS_SETTINGS_PREFIX = 'clipdrag.defaults.';

export interface SettingSchema {
  type: 'integer' | 'number' | 'string';
  default: number | string;
  enum?: readonly string[];
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  description: string;
  order: number;
}

/** JSON-schema entries for package.json; `order` follows the settings that come before the defaults. */
export function defaultsSettingsSchema(otherSettings: Record<string, unknown> = {}): Record<string, SettingSchema> {
  const firstOrder = Object.keys(otherSettings).filter((k) => !k.startsWith(DEFAULTS_SETTINGS_PREFIX)).length + 1;
  const out: Record<string, SettingSchema> = {};
  EDIT_PARAMETER_NAMES.forEach((name: EditParameterName, index) => {
    const def = EDIT_PARAMETER_DEFINITIONS[name];
    const description = `${def.description[0]!.toUpperCase()}${def.description.slice(1)}. Default from ${def.source}.`;
    const order = firstOrder + index;
    if (def.kind === 'enum') {
      out[`${DEFAULTS_SETTINGS_PREFIX}${name}`] = { type: 'string', default: def.default, enum: def.values, description, order };
      return;
    }
    out[`${DEFAULTS_SETTINGS_PREFIX}${name}`] = {
      type: def.kind,
      default: def.default,
      ...(def.minExclusive ? { exclusiveMinimum: def.min } : { minimum: def.min }),
      maximum: def.max,
      description,
      order,
    };
  });
  return out;
}
