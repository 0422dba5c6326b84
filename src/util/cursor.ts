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
    if (Array.isArray(value) && value.length === 2 && (typeof value[0] === 'string' || typeof value[0] === 'number') && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {
    // fall through
  }
  throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', { fields: [{ path: 'cursor', message: 'is not valid' }] });
}

/** Default and maximum page sizes. */
export const DEFAULT_PAGE_SIZE = 50;
/** The largest page a list call returns. */
export const MAX_PAGE_SIZE = 1000;

/** Clamps a requested page size to 1..MAX_PAGE_SIZE. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InstanceImagesError('VALIDATION_FAILED', `The page size must be an integer from 1 to ${MAX_PAGE_SIZE}`, { fields: [{ path: 'limit', message: 'out of range' }] });
  }
  return limit;
}
