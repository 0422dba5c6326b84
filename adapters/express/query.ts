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
    if ((def.type === 'optional' || def.type === 'nullable' || def.type === 'default' || def.type === 'prefault' || def.type === 'readonly') && 'innerType' in def) {
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

/**
 * Parses a query object with `schema`: each key may appear once; numbers and booleans are coerced
 * when they look like one (otherwise the schema reports the field).
 * @throws VALIDATION_FAILED naming every offending field.
 */
export function parseQuery<S extends z.ZodObject>(schema: S, query: unknown): z.output<S> {
  const raw = (query && typeof query === 'object' ? query : {}) as Record<string, unknown>;
  const shape = schema.shape as Record<string, z.core.$ZodType>;
  const input: Record<string, unknown> = {};
  const repeated: FieldIssue[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in shape)) continue;
    if (typeof value !== 'string') {
      repeated.push({ path: key, message: 'must be given once, as a plain value' });
      continue;
    }
    input[key] = coerce(value, leafType(shape[key] as z.core.$ZodType));
  }
  if (repeated.length > 0) throw validationFailed(repeated, 'The query');
  return parseOrThrow(schema, input, 'The query');
}
