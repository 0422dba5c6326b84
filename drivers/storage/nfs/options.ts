/**
 * Options of the `nfs` storage driver (importable without any I/O library).
 * @module
 */
import { z } from 'zod';
import { AbsoluteDirectorySchema } from '../local/options';

/** Mount options as `mount -o` takes them: comma-separated, no spaces or shell-special surprises. */
const MountOptionsSchema = z
  .string()
  .min(1)
  .max(500)
  .regex(/^[A-Za-z0-9_.=:/,@+-]+$/, 'must be comma-separated mount options (letters, digits and _ . = : / , @ + -)');

/** Config of an `nfs` image storage: an export mounted at the same mount point on each bound hypervisor. */
export const NfsStorageOptionsSchema = z.strictObject({
  /** The NFS server: host name, IPv4 or IPv6 address (brackets optional). */
  server: z
    .string()
    .min(1)
    .max(255)
    .regex(
      /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]+|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/,
      'must be a host name or an IP address',
    ),
  /** The exported path on the server, e.g. `/export/images`. */
  exportPath: z
    .string()
    .min(1)
    .max(1024)
    .refine((value) => value.startsWith('/'), 'must be an absolute path (start with "/")')
    // eslint-disable-next-line no-control-regex -- control characters are what is rejected
    .refine((value) => !/[\u0000-\u001f\u007f\s]/.test(value), 'must not contain whitespace or control characters'),
  /** Where the export is mounted on each hypervisor, e.g. `/mnt/instance-images`. */
  mountPoint: AbsoluteDirectorySchema,
  /** Options for `mount -o` when the driver mounts, e.g. `vers=4.2,hard,timeo=600`. */
  mountOptions: MountOptionsSchema.optional(),
  /** Mount the export when it is not mounted (needs root on the hypervisor). Default false: report it instead. */
  autoMount: z.boolean().default(false),
  /**
   * Write image files with direct I/O (O_DIRECT) instead of buffered writes with a background
   * write-back. Default false: each direct write waits for the server, and it has not been
   * measured against a real NFS server; the local driver's default is true.
   */
  directIo: z.boolean().optional(),
});

/** Config of an `nfs` image storage. */
export type NfsStorageOptions = z.output<typeof NfsStorageOptionsSchema>;
