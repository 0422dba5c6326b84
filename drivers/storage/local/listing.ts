/**
 * The metadata reads of a path storage: stat, paged listing (with opaque cursors) and the temp
 * files of unfinished writes.
 * @module
 */
import { posix } from 'node:path';
import { InstanceImagesError } from '../../../src/errors';
import type { IncompleteUpload, StoredObject } from '../../../src/ports/storage-driver';
import { LIST_SCRIPT, LIST_TEMP_SCRIPT, STAT_SCRIPT, TEMP_NAME, commandFailure, shArgv } from './commands';
import type { PathContext } from './path-context';

function parseMtime(value: string | undefined): Date {
  const seconds = Number(value);
  return new Date(Number.isFinite(seconds) ? Math.round(seconds * 1000) : 0);
}

function encodeListCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeListCursor(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  // eslint-disable-next-line no-control-regex -- a key never holds control characters; they would break the listing
  if (key === '' || encodeListCursor(key) !== cursor || /[\u0000-\u001f\u007f]/.test(key)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', {
      fields: [{ path: 'cursor', message: 'is not valid' }],
    });
  }
  return key;
}

/** The metadata of `key`, or `null` when there is no such file: the path storage's `stat`. */
export async function statFile(ctx: PathContext, key: string): Promise<StoredObject | null> {
  const result = await ctx.exec(shArgv(STAT_SCRIPT, ctx.root, key), `stat ${key}`);
  if (result.exitCode !== 0) {
    if (/No such file or directory|Not a directory/.test(result.stderr)) return null;
    throw commandFailure(result, `stat ${key}`, ctx.where);
  }
  const [size, mtime] = result.stdout.trim().split('\t');
  if (size === undefined || size === '') return null;
  return { key, size: Number(size), modifiedAt: parseMtime(mtime) };
}

/** A page of files under `prefix`, in byte order of their key: the path storage's `list`. */
export async function listFiles(
  ctx: PathContext,
  options: { prefix?: string; cursor?: string | null; limit?: number } = {},
): Promise<{ items: StoredObject[]; nextCursor: string | null }> {
  const prefix = options.prefix ?? '';
  const limit = options.limit ?? 50;
  const after = options.cursor ? decodeListCursor(options.cursor) : '';
  const slash = prefix.lastIndexOf('/');
  const start = slash < 0 ? '.' : `./${prefix.slice(0, slash)}`;
  // The window variables travel as environment assignments of `env`, quoted like any argument.
  const argv = ['env', `II_PREFIX=${prefix}`, `II_AFTER=${after}`, `II_LIMIT=${limit}`, ...shArgv(LIST_SCRIPT, ctx.root, start)];
  const result = await ctx.must(argv, 'list files');
  const items: StoredObject[] = [];
  for (const line of result.stdout.split('\n')) {
    if (line === '') continue;
    const [key, size, mtime] = line.split('\t');
    if (key === undefined || size === undefined) continue;
    items.push({ key, size: Number(size), modifiedAt: parseMtime(mtime) });
  }
  const page = items.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page, nextCursor: items.length > limit && last ? encodeListCursor(last.key) : null };
}

/** The temp files of unfinished writes, sorted by id: the path storage's `listIncomplete`. */
export async function listTempFiles(ctx: PathContext, options: { olderThan?: Date } = {}): Promise<IncompleteUpload[]> {
  const result = await ctx.must(shArgv(LIST_TEMP_SCRIPT, ctx.root), 'list temp files');
  const uploads: IncompleteUpload[] = [];
  for (const line of result.stdout.split('\n')) {
    const [relative, mtime] = line.split('\t');
    if (!relative) continue;
    const base = posix.basename(relative);
    const match = TEMP_NAME.exec(base);
    if (!match) continue;
    const stamp = parseInt(match[2] ?? '', 36);
    const startedAt = Number.isFinite(stamp) ? new Date(stamp) : parseMtime(mtime);
    if (options.olderThan && startedAt >= options.olderThan) continue;
    const dir = posix.dirname(relative);
    uploads.push({ key: dir === '.' ? (match[1] ?? '') : `${dir}/${match[1] ?? ''}`, id: relative, startedAt });
  }
  return uploads.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
