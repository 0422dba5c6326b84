/**
 * ESLint rule `layers/imports`: which folder of the repository may import which, checked on the
 * resolved path of every import, export-from, dynamic import() and require() with a literal
 * specifier (type-only imports included: a type is a dependency too). Self-references
 * (`instance-images/drivers/s3`) count as the folder they name. The zones are configured in
 * eslint.config.js; docs/architecture.md explains them.
 */
import { isBuiltin } from 'node:module';
import path from 'node:path';

/** `path/to/file` relative to root, without a source extension; `../x` when outside the root. */
function normalize(root, absolute) {
  return path
    .relative(root, absolute)
    .split(path.sep)
    .join('/')
    .replace(/\.(ts|tsx|mts|cts|js|mjs|cjs)$/, '');
}

/**
 * True when a repository path matches a zone pattern: `dir/` is a folder and everything below it,
 * anything else one file (`src/errors.ts` matches `src/errors`).
 */
function matches(file, pattern) {
  if (pattern.endsWith('/')) return file === pattern.slice(0, -1) || file.startsWith(pattern);
  return file === pattern.replace(/\.(ts|tsx|mts|cts|js|mjs|cjs)$/, '');
}

/** What an import specifier names: a repository path or a package (node builtins are packages). */
function resolveTarget(root, fromFile, specifier, selfName) {
  if (specifier.startsWith('.') || path.isAbsolute(specifier)) {
    return { kind: 'file', path: normalize(root, path.resolve(path.dirname(fromFile), specifier)) };
  }
  if (specifier === selfName || specifier.startsWith(`${selfName}/`)) {
    const subpath = specifier.slice(selfName.length + 1);
    if (subpath === 'http') return { kind: 'file', path: 'adapters/http' };
    return { kind: 'file', path: /^(drivers|adapters)\//.test(subpath) ? subpath : `src/${subpath}`.replace(/\/$/, '') };
  }
  if (isBuiltin(specifier)) return { kind: 'package', name: specifier };
  const parts = specifier.split('/');
  return { kind: 'package', name: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
}

const zoneSchema = {
  type: 'object',
  properties: {
    files: { type: 'array', items: { type: 'string' }, minItems: 1 },
    forbid: { type: 'array', items: { type: 'string' } },
    allow: { type: 'array', items: { type: 'string' } },
    allowPackages: { type: 'array', items: { type: 'string' } },
    forbidPackages: { type: 'array', items: { type: 'string' } },
    reason: { type: 'string' },
  },
  required: ['files', 'reason'],
  additionalProperties: false,
};

/** @type {import('eslint').Rule.RuleModule} */
const imports = {
  meta: {
    type: 'problem',
    docs: { description: 'Keep the layers: a zone of files may not import what it forbids, or anything it does not allow.' },
    schema: [
      {
        type: 'object',
        properties: { root: { type: 'string' }, packageName: { type: 'string' }, zones: { type: 'array', items: zoneSchema } },
        required: ['root', 'packageName', 'zones'],
        additionalProperties: false,
      },
    ],
    messages: { layer: '{{file}} may not import {{target}}: {{reason}}' },
  },
  create(context) {
    const { root, packageName, zones } = context.options[0];
    const file = normalize(root, context.filename);
    const shown = path.relative(root, context.filename).split(path.sep).join('/');
    const active = zones.filter((zone) => zone.files.some((pattern) => matches(file, pattern)));
    if (active.length === 0) return {};

    function check(node, specifier) {
      const target = resolveTarget(root, context.filename, specifier, packageName);
      for (const zone of active) {
        const forbidden =
          target.kind === 'file'
            ? (zone.forbid ?? []).some((pattern) => matches(target.path, pattern)) ||
              (zone.allow !== undefined && !zone.allow.some((pattern) => matches(target.path, pattern)))
            : (zone.forbidPackages ?? []).includes(target.name) ||
              (zone.allow !== undefined && !(zone.allowPackages ?? []).includes(target.name));
        if (forbidden) {
          context.report({
            node,
            messageId: 'layer',
            data: { file: shown, target: target.kind === 'file' ? target.path : `the package ${target.name}`, reason: zone.reason },
          });
          return;
        }
      }
    }
    const literal = (node) => (node && node.type === 'Literal' && typeof node.value === 'string' ? node.value : null);
    const checkSource = (node) => {
      const specifier = literal(node.source);
      if (specifier !== null) check(node.source, specifier);
    };
    return {
      ImportDeclaration: checkSource,
      ExportNamedDeclaration: checkSource,
      ExportAllDeclaration: checkSource,
      ImportExpression: checkSource,
      TSImportEqualsDeclaration(node) {
        const specifier = node.moduleReference.type === 'TSExternalModuleReference' ? literal(node.moduleReference.expression) : null;
        if (specifier !== null) check(node.moduleReference.expression, specifier);
      },
      TSImportType(node) {
        // typescript-eslint 8.x has `source`; older versions only `argument` (a TSLiteralType).
        const source = node.source ?? (node.argument.type === 'TSLiteralType' ? node.argument.literal : null);
        const specifier = literal(source);
        if (specifier !== null) check(source, specifier);
      },
      CallExpression(node) {
        const specifier = node.callee.type === 'Identifier' && node.callee.name === 'require' ? literal(node.arguments[0]) : null;
        if (specifier !== null) check(node.arguments[0], specifier);
      },
    };
  },
};

/** The local plugin: `layers/imports`. */
export default { meta: { name: 'layers' }, rules: { imports } };
