import type { Page } from '../model/common';

/**
 * Walks a paged list one page at a time (never holding more than one page), following
 * `nextCursor` until it is null.
 */
export async function* eachPage<T>(fetch: (cursor: string | null) => Promise<Page<T>>): AsyncGenerator<T[]> {
  let cursor: string | null = null;
  do {
    const page = await fetch(cursor);
    yield page.items;
    cursor = page.nextCursor;
  } while (cursor !== null);
}

/** Every item of a paged list (for lists known to be small, like a catalog). */
export async function collectPages<T>(fetch: (cursor: string | null) => Promise<Page<T>>): Promise<T[]> {
  const all: T[] = [];
  for await (const items of eachPage(fetch)) all.push(...items);
  return all;
}
