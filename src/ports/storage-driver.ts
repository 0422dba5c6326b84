/**
 * The storage driver contract. Drivers implement raw primitives only; the core wrapper owns key
 * safety, checksums, progress, retries and events. Keys given to a driver are already normalized.
 * @module
 */
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Executor } from './executor';
import type { HostHypervisor } from './host-directory';

/** Capability flags of a storage driver. */
export interface StorageCapabilities {
  /** The same bytes are visible from every bound hypervisor (NFS, S3). `false`: per-hypervisor (local). */
  shared: boolean;
  /** Files have a path on a hypervisor that qemu-img can read/write directly (local, NFS). */
  pathAccess: boolean;
  /**
   * {@link StorageDriver.putBytes} with a `sha256` is checked by the storage itself (S3: the signed
   * payload hash): the core then does not hash those bytes again, nor read back what was stored.
   */
  verifiesSha256?: boolean;
}

/** Metadata of a stored object. */
export interface StoredObject {
  key: string;
  size: number;
  modifiedAt: Date;
}

/** An upload that never completed: a temp file or a multipart upload. */
export interface IncompleteUpload {
  /** The final key it was meant for (when known) or the temp key. */
  key: string;
  /** Driver-specific handle (temp file name, multipart upload id). */
  id: string;
  startedAt: Date | null;
}

/** Options of {@link StorageDriver.putBytes}. */
export interface PutBytesOptions {
  /**
   * The hex SHA-256 of the bytes, known to the caller. A driver that sends it to a storage which
   * checks it (S3's signed payload hash) returns `sha256Verified: true`: the storage stored nothing
   * unless the bytes it received hash to it.
   */
  sha256?: string;
  /** Cancels the put (CANCELLED); nothing is stored. */
  signal?: AbortSignal;
}

/** Options of {@link StorageDriver.put}. */
export interface PutOptions {
  /** The total size when known (lets S3 pick its part size). */
  size?: number;
  signal?: AbortSignal;
}

/** One storage backend, bound (for per-hypervisor drivers) to one hypervisor. */
export interface StorageDriver {
  /** The driver name (`local`, `nfs`, `s3`). */
  readonly name: string;
  readonly capabilities: StorageCapabilities;
  /**
   * Writes `body` under `key` atomically: readers see the old object or the complete new one, never
   * a partial one; on failure or abort nothing remains (temp file removed, multipart aborted).
   * Overwrites an existing object.
   * @throws STORAGE_FULL, STORAGE_UNAVAILABLE, CANCELLED.
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }>;
  /**
   * Optional: writes a small object held in memory in one request, atomically as {@link
   * StorageDriver.put} does, without a stream (chunks, manifests and leases of the chunked layout).
   * A driver leaves it out where a put of a one-buffer stream is as good; the core falls back to
   * that. A mismatch with `options.sha256`, where the storage checks it, stores nothing and throws
   * CHECKSUM_MISMATCH. @throws CHECKSUM_MISMATCH, STORAGE_FULL, STORAGE_UNAVAILABLE, CANCELLED.
   */
  putBytes?(key: string, bytes: Buffer, options?: PutBytesOptions): Promise<{ size: number; sha256Verified: boolean }>;
  /**
   * Reads the object as a stream; `range` is inclusive of `start` and `end`.
   * @throws NOT_FOUND when missing; STORAGE_UNAVAILABLE.
   */
  get(key: string, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<Readable>;
  /**
   * Optional: reads the whole object into the start of `into` and returns its length, or `null`
   * when it does not exist; for small objects read often (the chunks of a chunked image), where a
   * stream per object costs more than the bytes. An object longer than `into` throws
   * VALIDATION_FAILED (what `into` then holds is unspecified). Drivers without it are read through
   * {@link StorageDriver.get}. @throws VALIDATION_FAILED, STORAGE_UNAVAILABLE, CANCELLED.
   */
  getBytes?(key: string, into: Buffer, options?: { signal?: AbortSignal }): Promise<number | null>;
  /** Metadata, or `null` when missing. */
  stat(key: string): Promise<StoredObject | null>;
  /**
   * A page of objects under `prefix`, ordered by key. Temp files / incomplete uploads are not listed.
   * Must not load a whole directory or bucket into memory.
   */
  list(options?: {
    prefix?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<{ items: StoredObject[]; nextCursor: string | null }>;
  /** Removes the object; idempotent (a missing key is not an error). */
  delete(key: string): Promise<void>;
  /** Free bytes, or `null` when unlimited/unknown (S3). */
  freeSpace(): Promise<number | null>;
  /** Checks the backend; never throws. */
  health(): Promise<{ ok: boolean; message: string }>;
  /** Temp files and multipart uploads left behind, optionally only those older than `olderThan`. */
  listIncomplete(options?: { olderThan?: Date }): Promise<IncompleteUpload[]>;
  /** Removes one incomplete upload; idempotent. */
  abortIncomplete(upload: IncompleteUpload): Promise<void>;
  /** For `pathAccess` drivers: the absolute path of `key` on the bound hypervisor. */
  pathOf?(key: string): string;
  /**
   * Optional, for `pathAccess` drivers: makes the directory that `key` would be written into,
   * with the checks of a {@link StorageDriver.put} (no symbolic link below the root, a mounted
   * share), and writes nothing else; for tools on the hypervisor that write {@link pathOf} paths
   * themselves. In one command where the driver can. A driver without it gets a put and a delete
   * of an empty marker next to the key instead ({@link StorageDisk.prepareKey}).
   * @throws STORAGE_UNAVAILABLE (a link, an unmounted share), STORAGE_FULL.
   */
  prepareKey?(key: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * For `pathAccess` drivers: the root directory every {@link StorageDriver.pathOf} path lies
   * below. Hypervisor drivers refuse a path that is, or passes through, a symbolic link below it,
   * as the driver itself never follows one.
   */
  pathRoot?(): string;
  /**
   * Optional: a URL that lets anyone holding it GET the object (and only that, with Range) until
   * it expires, e.g. an S3 presigned URL. `filename` is what a browser saves it as
   * (Content-Disposition). Drivers that cannot issue one leave it out; exports then stream through
   * the panel. @throws STORAGE_UNAVAILABLE.
   */
  presignGet?(key: string, options: PresignGetOptions): Promise<string>;
  /** Releases clients/connections. */
  close?(): Promise<void>;
}

/** Options of {@link StorageDriver.presignGet}. */
export interface PresignGetOptions {
  /** Seconds the URL stays valid (1 to 604800, S3's limit). */
  expiresInSeconds: number;
  /** The file name a download is saved as. */
  filename: string;
}

/** What a driver factory receives besides its options. */
export interface StorageDriverContext {
  /** For per-hypervisor or path-capable drivers: the hypervisor the driver acts on. */
  hypervisor?: HostHypervisor;
  /** That hypervisor's executor. */
  executor?: Executor;
}

/** A registered storage driver: its name, config schema, secret fields and factory. */
export interface StorageDriverFactory<Options = unknown> {
  /** Registry name. */
  readonly name: string;
  /** Validates the storage's `config`; errors name the offending field. */
  readonly optionsSchema: z.ZodType<Options>;
  /** Config fields that are secrets: masked when a storage is returned and never logged. */
  readonly secretFields: readonly string[];
  /** Capabilities, known before creating an instance. */
  readonly capabilities: StorageCapabilities;
  /** Whether the driver needs a hypervisor context (local, NFS). */
  readonly needsHypervisor: boolean;
  /** Creates a driver instance. */
  create(options: Options, context: StorageDriverContext): StorageDriver;
}
