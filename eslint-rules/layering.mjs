// @ts-check
/**
 * The layering of docs/architecture.md as a lint rule: `layering/imports` resolves every relative import (and
 * dynamic `import()` / `require()` of a string) against the importing file and reports it when it lands in a
 * folder that the importing folder must never depend on. Bare package names can be forbidden too (the native
 * modules the extension host must not load).
 *
 * Options: `{ zones: [{ from, forbid, packages?, reason }] }`, folders relative to the repository root.
 */
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

/** @param {string} file @param {string} folder */
function isInside(file, folder) {
  const rel = path.relative(path.join(ROOT, folder), file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** @type {import('eslint').Rule.RuleModule} */
const importsRule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports follow the layering of docs/architecture.md' },
    schema: [
      {
        type: 'object',
        properties: {
          zones: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                from: { type: 'string' },
                forbid: { type: 'array', items: { type: 'string' } },
                packages: { type: 'array', items: { type: 'string' } },
                reason: { type: 'string' },
              },
              required: ['from', 'forbid', 'reason'],
              additionalProperties: false,
            },
          },
        },
        required: ['zones'],
        additionalProperties: false,
      },
    ],
    messages: {
      folder: '{{from}} must not import {{target}} ({{reason}}; docs/architecture.md).',
      package: '{{from}} must not import the package {{target}} ({{reason}}; docs/architecture.md).',
    },
  },
  create(context) {
    const file = path.resolve(context.filename);
    /** @type {Array<{ from: string, forbid: string[], packages?: string[], reason: string }>} */
    const zones = (context.options[0]?.zones ?? []).filter((/** @type {{ from: string }} */ z) => isInside(file, z.from));
    if (zones.length === 0) return {};

    /** @param {import('estree').Node} node @param {unknown} source */
    function check(node, source) {
      if (typeof source !== 'string') return;
      for (const zone of zones) {
        if (source.startsWith('.')) {
          const target = path.resolve(path.dirname(file), source);
          const folder = zone.forbid.find((f) => isInside(target, f));
          if (folder) context.report({ node, messageId: 'folder', data: { from: zone.from, target: folder, reason: zone.reason } });
        } else if (zone.packages?.some((p) => source === p || source.startsWith(`${p}/`))) {
          context.report({ node, messageId: 'package', data: { from: zone.from, target: source, reason: zone.reason } });
        }
      }
    }

    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      CallExpression: (node) => {
        const [arg] = node.arguments;
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && arg?.type === 'Literal') check(node, arg.value);
      },
    };
  },
};

export default { rules: { imports: importsRule } };
