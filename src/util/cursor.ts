import { InstanceImagesError } from '../errors';

/** A keyset position: the sort value and the id of the last item of a page. */
export type CursorKey = [string | number, string];

/** Encodes a keyset position as an opaque cursor. */
export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor from {@link encodeCursor}.
 * @throws VALIDATION_FAILED when the cursor is not one of ours.
 */
export function decodeCursor(cursor: string): CursorKey {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      (typeof value[0] === 'string' || typeof value[0] === 'number') &&
      typeof value[1] === 'string'
    ) {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', {
    fields: [{ path: 'cursor', message: 'is not valid' }],
  });
}

/** Default and maximum page sizes. */
export const DEFAULT_PAGE_SIZE = 50;
/** The largest page a list call returns. */
export const MAX_PAGE_SIZE = 1000;

/**
 * Checks a requested page size: `undefined` means {@link DEFAULT_PAGE_SIZE}; anything else must be
 * an integer from 1 to {@link MAX_PAGE_SIZE}. It is never clamped: a caller asking for 5000 items
 * learns that it gets at most 1000 instead of silently receiving fewer.
 * @throws VALIDATION_FAILED naming `limit` (the page request's field) and the allowed range.
 */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    const message = `must be an integer from 1 to ${MAX_PAGE_SIZE} (the page size)`;
    throw new InstanceImagesError('VALIDATION_FAILED', `The page size is not valid: limit ${message}, got ${String(limit)}`, {
      fields: [{ path: 'limit', message }],
    });
  }
  return limit;
}
