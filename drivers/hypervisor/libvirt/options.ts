/**
 * Options of the libvirt driver (zod schema + type); importable without any I/O.
 * @module
 */
import { z } from 'zod';

/** How a running domain is captured. `auto` picks the best method the hypervisor supports. */
export const CaptureMethodSchema = z.enum(['auto', 'pull-backup', 'push-backup', 'snapshot-commit']);
/** How a running domain is captured. */
export type CaptureMethod = z.infer<typeof CaptureMethodSchema>;

/** Test and diagnostics hooks; called at fixed points of a capture. */
export interface LibvirtDriverHooks {
  /** Called right after the marker overlay of a snapshot-commit capture was created (crash tests). */
  afterSnapshot?(info: { domainName: string; overlayPath: string }): void | Promise<void>;
  /** Called when the live copy has started (the backup job or overlay exists). */
  afterJobStart?(info: { domainName: string; method: string }): void | Promise<void>;
  /**
   * Called when a capture's output has been written (converter exited, backup job completed) and
   * before it is checked and sealed (tests of completeness detection).
   */
  afterOutputWritten?(info: { path: string; method: string }): void | Promise<void>;
  /** Called when a stage of a capture (inspect, preflight, start-job, copy, release, check, hash, fsync, transfer, publish) starts and ends (the bench's timeline). */
  stage?(info: { stage: string; phase: 'start' | 'end' }): void;
  /** Called when a deploy has checked its source and is about to copy it (race tests). */
  beforeDeployConvert?(info: { sourcePath: string; targetPath: string }): void | Promise<void>;
}

/** Options of {@link createLibvirtDriver}. */
export const LibvirtDriverOptionsSchema = z.object({
  /** Capture method for running domains. @default 'auto' */
  method: CaptureMethodSchema.default('auto'),
  /** Timeout of a guest-agent filesystem freeze, in ms. @default 10000 */
  freezeTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /**
   * Prove each capture complete without reading it twice (`qemu-img check` of a qcow2 output's
   * metadata, its virtual size and byte counts, next to the converter's own result), and compare
   * each deployed disk with its image (`qemu-img compare`). @default true
   */
  verify: z.boolean().default(true),
  /**
   * NBD connections a chunked capture reads the disk's export over, and a chunked deploy writes
   * the new disk over, each its own channel (over SSH, a stream-local channel on the pooled
   * connection, so keep it below the pool's channels per connection); the reads or writes are
   * spread over them. @default 4
   */
  nbdConnections: z.number().int().min(1).max(8).default(4),
  /**
   * Start and end a chunked capture's backup job by speaking libvirt's own RPC protocol to the
   * daemon's socket (`/var/run/libvirt/libvirt-sock`, or `virtqemud-sock`) over the executor's
   * unix-socket channel, instead of starting `virsh` processes: on the test hypervisor the
   * inspection before the job took 5–11 ms instead of about 100 ms. Only for `qemu:///system`;
   * when the socket cannot be opened the capture uses `virsh`, as with `false`. @default true
   */
  libvirtRpc: z.boolean().default(true),
  /** Extra free bytes required beyond the disk's allocation before a capture starts. @default 16 MiB */
  spaceMarginBytes: z
    .number()
    .int()
    .nonnegative()
    .default(16 * 1024 * 1024),
});

/** Options of {@link createLibvirtDriver} as accepted (defaults applied by the driver). */
export type LibvirtDriverOptions = z.input<typeof LibvirtDriverOptionsSchema> & {
  /** Test and diagnostics hooks. */
  hooks?: LibvirtDriverHooks;
};
