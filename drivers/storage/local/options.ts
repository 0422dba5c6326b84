/**
 * Options of the `local` storage driver (importable without any I/O library).
 * @module
 */
import { posix } from 'node:path';
import { z } from 'zod';

/** An absolute directory path on a hypervisor, normalized (no trailing slash, no `.`/`..`). */
export const AbsoluteDirectorySchema = z
  .string()
  .min(2, 'must be an absolute directory path other than "/"')
  .max(1024)
  .refine((value) => value.startsWith('/'), 'must be an absolute path (start with "/")')
  // eslint-disable-next-line no-control-regex -- control characters are what is rejected
  .refine((value) => !/[\u0000-\u001f\u007f]/.test(value), 'must not contain control characters')
  .refine((value) => !value.split('/').some((segment) => segment === '.' || segment === '..'), 'must not contain "." or ".." segments')
  .transform((value) => posix.normalize(value).replace(/\/+$/, ''))
  .refine((value) => value !== '', 'must not be "/"');

/** Config of a `local` image storage: a directory on each bound hypervisor. */
export const LocalStorageOptionsSchema = z.strictObject({
  /** The directory holding the images, e.g. `/var/lib/instance-images`. Created on first write. */
  path: AbsoluteDirectorySchema,
  /**
   * Write image files with direct I/O (O_DIRECT) where the filesystem supports it (default true):
   * an image passing through does not evict the guests' cached data from the hypervisor's page
   * cache, and nothing is left to write back at the final fsync. Set false for buffered writes
   * with a background write-back. Files are fsynced before they are renamed into place either way.
   */
  directIo: z.boolean().optional(),
});

/** Config of a `local` image storage. */
export type LocalStorageOptions = z.output<typeof LocalStorageOptionsSchema>;
