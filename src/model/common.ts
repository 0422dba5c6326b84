import { z } from 'zod';

/** An opaque id (the host's or ours): 1–200 printable characters. */
export const IdSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

/**
 * A display name: 1–100 characters, no control characters, and no leading or trailing whitespace
 * (refused, never trimmed: the name is stored and answered exactly as sent).
 */
export const NameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters')
  .refine((s) => s.length === 0 || s.trim() === s, 'must not start or end with whitespace (it is never trimmed)')
  .describe('1–100 characters; no control characters; no leading or trailing whitespace (refused, never trimmed); stored exactly as sent');

/**
 * A free-text description: up to 1000 characters, no control characters except newline and tab;
 * stored and answered exactly as sent (never trimmed).
 */
export const DescriptionSchema = z
  .string()
  .max(1000, 'must be at most 1000 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s), 'must not contain control characters')
  .describe('Up to 1000 characters; no control characters except newline and tab; stored exactly as sent (never trimmed)');

/** A non-negative decimal number written as a string, e.g. `"0.05"` (money and rates never use binary floats). */
export const DecimalStringSchema = z.string().regex(/^\d{1,18}(\.\d{1,18})?$/, 'must be a non-negative decimal like "0.05"');

/** A size in bytes (non-negative safe integer). */
export const BytesSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** A lowercase hex sha256 digest. */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256 digest');

/** Disk image file formats. */
export const DiskFormatSchema = z.enum(['qcow2', 'raw']);
/** A disk image file format. */
export type DiskFormat = z.infer<typeof DiskFormatSchema>;

/** A page of results and the cursor of the next one (`null` at the end). */
export interface Page<T> {
  /** The items of this page. */
  items: T[];
  /** Pass as `cursor` to get the next page; `null` when there is none. */
  nextCursor: string | null;
}

/** Paging input: an opaque cursor from a previous page and a page size (1–1000, default 50). */
export const PageRequestSchema = z.strictObject({
  cursor: z.string().max(1000).nullish(),
  limit: z.number().int().min(1).max(1000).default(50),
});
/** Paging input. */
export type PageRequest = z.input<typeof PageRequestSchema>;

/** A reason attached to a status: a stable code and a message a person can act on. */
export const StatusReasonSchema = z.object({ code: z.string(), message: z.string() });
/** A reason attached to a status. */
export type StatusReason = z.infer<typeof StatusReasonSchema>;
