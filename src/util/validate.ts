import type { z } from 'zod';
import { validationFailed, type FieldIssue } from '../errors';

/** A lone UTF-16 surrogate: a high one not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The message of a string that is not well-formed Unicode. */
export const ILL_FORMED_MESSAGE = 'must be well-formed Unicode (it contains a lone UTF-16 surrogate, e.g. "\\ud800")';

/** True when `text` is well-formed Unicode (no lone UTF-16 surrogates), so any store can keep it exactly. */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * Every string in `input` (plain objects and arrays, keys included, walked to a bounded depth)
 * that is not well-formed Unicode, as field issues. JSON lets a client send `"\ud800"`; such a
 * string cannot be encoded as UTF-8, so a database would store something else than was accepted.
 */
export function illFormedStrings(input: unknown): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const seen = new Set<object>();
  const walk = (value: unknown, path: string[], depth: number): void => {
    if (typeof value === 'string') {
      if (!isWellFormedText(value)) issues.push({ path: path.join('.'), message: ILL_FORMED_MESSAGE });
      return;
    }
    if (value === null || typeof value !== 'object' || depth > 32 || seen.has(value)) return;
    const proto = Object.getPrototypeOf(value) as unknown;
    if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return;
    seen.add(value);
    for (const [key, item] of Object.entries(value)) {
      const keyPath = [...path, isWellFormedText(key) ? key : key.replace(new RegExp(LONE_SURROGATE, 'g'), '\uFFFD')];
      if (!isWellFormedText(key)) issues.push({ path: keyPath.join('.'), message: `the key ${ILL_FORMED_MESSAGE}` });
      walk(item, keyPath, depth + 1);
    }
  };
  walk(input, [], 0);
  return issues;
}

/**
 * Converts zod issues into {@link FieldIssue}s. An unknown key of a strict object becomes an issue
 * of its own, named by its path (`config.foo: is not a known field`).
 */
export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'is not a known field' }));
    return [{ path: path.join('.'), message: issue.message }];
  });
}

/**
 * Parses `input` with `schema`; on failure throws VALIDATION_FAILED naming every offending field.
 * Every string in the input must be well-formed Unicode (no lone UTF-16 surrogates).
 * @param what - what is being validated, for the message (e.g. "createInstanceImages options").
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what?: string): z.output<S> {
  const illFormed = illFormedStrings(input);
  const result = schema.safeParse(input);
  if (!result.success || illFormed.length > 0) {
    const fromSchema = result.success ? [] : zodIssues(result.error);
    const known = new Set(illFormed.map((issue) => issue.path));
    throw validationFailed([...illFormed, ...fromSchema.filter((issue) => !known.has(issue.path))], what);
  }
  return result.data;
}
