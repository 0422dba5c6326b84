/**
 * Query strings: every value arrives as text, so numbers and booleans are coerced first (by the
 * type the schema expects for that key) and then validated with the core's zod schema.
 * @module
 */
import type { z } from 'zod';
import { validationFailed, type FieldIssue } from '../../src/errors';
import { parseOrThrow } from '../../src/util/validate';

type Leaf = 'number' | 'boolean' | 'other';

/** The scalar type a (possibly optional, nullable or defaulted) schema expects. */
function leafType(schema: z.core.$ZodType): Leaf {
  let current: z.core.$ZodType = schema;
  for (let depth = 0; depth < 10; depth++) {
    const def = current._zod.def;
    if (def.type === 'number') return 'number';
    if (def.type === 'boolean') return 'boolean';
    if (
      (def.type === 'optional' ||
        def.type === 'nullable' ||
        def.type === 'default' ||
        def.type === 'prefault' ||
        def.type === 'readonly') &&
      'innerType' in def
    ) {
      current = def.innerType as z.core.$ZodType;
      continue;
    }
    return 'other';
  }
  return 'other';
}

function coerce(value: string, leaf: Leaf): unknown {
  if (leaf === 'number') return /^-?\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
  if (leaf === 'boolean') {
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
  }
  return value;
}

function knownKeys(shape: Record<string, unknown>): string {
  const keys = Object.keys(shape);
  return keys.length === 0 ? ' (this route takes none)' : ` (known: ${keys.join(', ')})`;
}

/**
 * Parses a query object with `schema`: each key may appear once; numbers and booleans are coerced
 * when they look like one (otherwise the schema reports the field). A key the schema does not
 * define is refused, never ignored: a mistyped or unsupported filter must not silently return
 * everything. Keys are looked up as own properties only (`constructor`, `__proto__` and
 * `toString` are unknown keys like any other).
 * @param ignored - query parameters that belong to the host (read by its `resolveActor`), skipped.
 * @throws VALIDATION_FAILED naming every offending field.
 */
export function parseQuery<S extends z.ZodObject>(schema: S, query: unknown, ignored: readonly string[] = []): z.output<S> {
  const raw = (query && typeof query === 'object' ? query : {}) as Record<string, unknown>;
  const shape = schema.shape as Record<string, z.core.$ZodType>;
  const input: Record<string, unknown> = {};
  const issues: FieldIssue[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (field === undefined && ignored.includes(key)) continue;
    if (field === undefined) {
      issues.push({ path: key, message: `is not a known query parameter${knownKeys(shape)}` });
      continue;
    }
    if (typeof value !== 'string') {
      issues.push({ path: key, message: 'must be given once, as a plain value' });
      continue;
    }
    input[key] = coerce(value, leafType(field));
  }
  if (issues.length > 0) throw validationFailed(issues, 'The query');
  return parseOrThrow(schema, input, 'The query');
}
