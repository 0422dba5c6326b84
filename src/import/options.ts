/**
 * The operator's options of URL imports (`createInstanceImages({ imports })`): destination rules,
 * limits and timeouts. Validated with zod; a bad network names its entry.
 * @module
 */
import { z } from 'zod';
import { parseNetwork, type DestinationRules } from './address';
import type { ResolveHost } from './download';

const GiB = 1024 ** 3;

const NetworkListSchema = z
  .array(z.string().min(1).max(100))
  .max(1000)
  .superRefine((list, context) => {
    list.forEach((entry, index) => {
      try {
        parseNetwork(entry);
      } catch (error) {
        context.addIssue({ code: 'custom', path: [index], message: (error as Error).message });
      }
    });
  });

/** The zod schema of {@link ImportOptions}. */
export const ImportOptionsSchema = z.strictObject({
  /**
   * Networks imports may reach although the defaults refuse them (loopback, private, link-local,
   * CGNAT, multicast, unspecified, reserved), in CIDR notation, e.g. `["10.20.0.0/16"]` for a
   * mirror inside the panel's network. @default []
   */
  allowNetworks: NetworkListSchema.default([]),
  /** Networks imports may never reach, besides the defaults; they win over `allowNetworks`. @default [] */
  denyNetworks: NetworkListSchema.default([]),
  /** Redirects followed at most (each one checked again). @default 5 */
  maxRedirects: z.number().int().min(0).max(20).default(5),
  /** The most bytes read from the source server (compressed size). @default 256 GiB */
  maxDownloadBytes: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(256 * GiB),
  /** The most bytes of the decompressed image. @default 1 TiB */
  maxImageBytes: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(1024 * GiB),
  /** Reconnections (with HTTP Range) after dropped connections, per import. @default 10 */
  maxResumes: z.number().int().min(0).max(1000).default(10),
  /** A connection without a byte for this long is dropped and resumed (ms). @default 60000 */
  idleTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
  /**
   * Imports into a path storage (local, NFS) fetch the URL on the hypervisor that writes the image,
   * with curl, instead of streaming every byte through the panel: the panel still resolves the host
   * and checks the address against the destination rules, pins curl to that address, follows
   * redirects itself (each checked again) and decides everything else; decompression, the checksum
   * and the conversion run on the hypervisor. Needs `curl`, `setsid` and `sha256sum` there (and the
   * decompressor of a compressed image). Object storages keep the panel path. @default false
   */
  fetchOnHypervisor: z.boolean().default(false),
  /** Resolves host names (default: the system resolver); a test or a host's own DNS policy may pass one. */
  resolveHost: z.custom<ResolveHost>((v) => typeof v === 'function', 'must be a function').optional(),
});

/** The operator's options of URL imports. */
export type ImportOptions = z.input<typeof ImportOptionsSchema>;
/** The options with their defaults applied. */
export type ResolvedImportOptions = z.output<typeof ImportOptionsSchema>;

/** The destination rules of the options. */
export function rulesOf(options: ResolvedImportOptions): DestinationRules {
  return { allow: options.allowNetworks.map(parseNetwork), deny: options.denyNetworks.map(parseNetwork) };
}
