import type { z } from 'zod';
import { validationFailed, type FieldIssue } from '../errors';

/** Converts zod issues into {@link FieldIssue}s. */
export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

/**
 * Parses `input` with `schema`; on failure throws VALIDATION_FAILED naming every offending field.
 * @param what - what is being validated, for the message (e.g. "createInstanceImages options").
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw validationFailed(zodIssues(result.error), what);
  return result.data;
}
