import type { Page } from '../model/common';
import { decodeCursor, encodeCursor, pageSize, type CursorKey } from '../util/cursor';

function compareKeys(a: CursorKey, b: CursorKey): number {
  if (a[0] < b[0]) return -1;
  if (a[0] > b[0]) return 1;
  return a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/**
 * Keyset pagination over an in-memory array: sorts by `keyOf` (ascending or descending, id as the
 * tie-breaker in the same direction) and returns the page after `cursor`.
 */
export function paginate<T>(
  items: readonly T[],
  keyOf: (item: T) => CursorKey,
  direction: 'asc' | 'desc',
  cursor: string | null | undefined,
  limit: number | undefined,
): Page<T> {
  const size = pageSize(limit);
  const sign = direction === 'asc' ? 1 : -1;
  const sorted = [...items].sort((a, b) => sign * compareKeys(keyOf(a), keyOf(b)));
  const after = cursor ? decodeCursor(cursor) : null;
  const rest = after ? sorted.filter((item) => sign * compareKeys(keyOf(item), after) > 0) : sorted;
  const pageItems = rest.slice(0, size);
  const last = pageItems[pageItems.length - 1];
  return { items: pageItems, nextCursor: rest.length > size && last !== undefined ? encodeCursor(keyOf(last)) : null };
}
