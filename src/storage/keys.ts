/**
 * Storage key safety. Every key passes {@link normalizeStorageKey} in the core wrapper before a
 * driver sees it, so drivers can join keys to paths and object names without re-checking.
 * @module
 */
import { InstanceImagesError } from '../errors';

/** The longest key accepted, in UTF-8 bytes (S3's own limit). */
export const MAX_STORAGE_KEY_BYTES = 1024;

/** The longest single path segment accepted, in UTF-8 bytes (a common filesystem limit). */
export const MAX_STORAGE_KEY_SEGMENT_BYTES = 255;

function rejectKey(field: string, message: string): InstanceImagesError {
  return new InstanceImagesError('VALIDATION_FAILED', `The storage key is not valid: ${message}`, { fields: [{ path: field, message }] });
}

/**
 * Returns the canonical form of a storage key (Unicode NFC) or throws.
 *
 * A key is a relative, `/`-separated path: not empty, no leading `/`, no empty segments (`a//b`,
 * trailing `/`), no `.` or `..` segments, no backslashes, no control characters (C0, DEL, C1),
 * at most {@link MAX_STORAGE_KEY_BYTES} bytes and {@link MAX_STORAGE_KEY_SEGMENT_BYTES} per segment.
 * @param field - the field name used in the error (default `key`).
 * @throws VALIDATION_FAILED naming `field`, before any I/O happens.
 */
export function normalizeStorageKey(key: unknown, field = 'key'): string {
  if (typeof key !== 'string') throw rejectKey(field, 'must be a string');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is rejected
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) throw rejectKey(field, 'must not contain control characters');
  const normalized = key.normalize('NFC');
  if (normalized === '') throw rejectKey(field, 'must not be empty');
  if (normalized.startsWith('/')) throw rejectKey(field, 'must be relative (no leading "/")');
  if (normalized.includes('\\')) throw rejectKey(field, 'must not contain backslashes');
  if (Buffer.byteLength(normalized, 'utf8') > MAX_STORAGE_KEY_BYTES)
    throw rejectKey(field, `must be at most ${MAX_STORAGE_KEY_BYTES} bytes`);
  for (const segment of normalized.split('/')) {
    if (segment === '') throw rejectKey(field, 'must not contain empty path segments ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') throw rejectKey(field, 'must not contain "." or ".." segments');
    if (Buffer.byteLength(segment, 'utf8') > MAX_STORAGE_KEY_SEGMENT_BYTES)
      throw rejectKey(field, `path segments must be at most ${MAX_STORAGE_KEY_SEGMENT_BYTES} bytes`);
  }
  return normalized;
}

/**
 * Normalizes a list prefix: empty means "everything"; otherwise the same rules as a key, except
 * that a trailing `/` is allowed (a "directory" prefix).
 * @throws VALIDATION_FAILED naming `prefix`.
 */
export function normalizeStoragePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === null || prefix === '') return '';
  if (typeof prefix !== 'string') throw rejectKey('prefix', 'must be a string');
  if (prefix.endsWith('/')) return `${normalizeStorageKey(prefix.slice(0, -1), 'prefix')}/`;
  return normalizeStorageKey(prefix, 'prefix');
}
