/**
 * The hypervisor driver contract: inspect a domain, capture its primary disk, materialize disks
 * for new instances, mount ISOs. One instance acts on one hypervisor.
 * @module
 */
import type { Readable } from 'node:stream';
import type { Consistency, DiskFormat, OsType } from '../model';
import type { Executor } from './executor';
import type { HostHypervisor } from './host-directory';

/** A domain's power state. */
export type DomainState = 'running' | 'paused' | 'shutoff' | 'other';

/** The primary disk of a domain. */
export interface PrimaryDisk {
  /** Target device, e.g. `vda`. */
  target: string;
  path: string;
  format: DiskFormat | string;
  virtualSizeBytes: number;
  allocationBytes: number;
}

/** What {@link HypervisorDriver.inspect} reports. */
export interface DomainInfo {
  name: string;
  state: DomainState;
  primaryDisk: PrimaryDisk;
  hasGuestAgent: boolean;
  /** Optional: the firmware the domain boots with (`<os firmware>`/`<loader>`), null when unknown. */
  firmware?: 'bios' | 'uefi' | null;
  /** Optional: the domain's CPU architecture (`<os><type arch>`), null when unknown. */
  architecture?: string | null;
  /**
   * Optional: the guest's OS family as the domain's definition records it (libvirt: the libosinfo
   * metadata `<libosinfo:os id>`), null when it does not say. Never probed inside the guest.
   */
  osType?: OsType | null;
  /**
   * Optional: `true` when the domain's definition hands the guest a cloud-init datasource (libvirt:
   * an SMBIOS system serial `ds=nocloud…`); null when it does not say (not a "no").
   */
  cloudInit?: boolean | null;
}

/** Progress of a long operation. */
export interface ByteProgress {
  step: string;
  bytesDone: number;
  bytesTotal: number | null;
}

/**
 * A file of a path storage on the hypervisor. `root` is the storage's root directory: below it no
 * component of `path` may be a symbolic link (someone with write access to a shared storage could
 * otherwise point a root-run tool at any file of the host); the driver refuses such a path.
 */
export interface StoragePath {
  kind: 'path';
  /** Absolute path of the file. */
  path: string;
  /** The storage root `path` lies below; without it, links are not checked. */
  root?: string;
}

/** Where a capture writes: a path on that hypervisor, or a stream handed to a consumer (S3, another host). */
export type CaptureOutput =
  | StoragePath
  | ChunkCaptureOutput
  | {
      kind: 'stream';
      /**
       * Receives the image bytes; must consume the stream fully; its rejection aborts the capture.
       * The bytes may be streamed while the capture is still being verified: when the capture then
       * rejects (even after `consume` resolved), the consumer must discard what it stored.
       */
      consume(stream: Readable, sizeBytes: number): Promise<void>;
    };

/**
 * One fixed-size chunk of a disk, read for a chunked capture. Chunks are aligned to guest offsets
 * (`offset = index * chunkSizeBytes`); only the last one may be shorter.
 */
export type CapturedChunk = { index: number; offset: number; length: number } & (
  | {
      /** Every byte reads as zero: never stored. */
      kind: 'zero';
    }
  | {
      /** Not written since the checkpoint the capture is incremental to: taken from that image. */
      kind: 'unchanged';
    }
  | {
      kind: 'data';
      /** The chunk's bytes, uncompressed (owned by the consumer). */
      bytes: Buffer;
      /** SHA-256 of `bytes`, lowercase hex. */
      sha256: string;
      /**
       * Optional: the consumer calls it once it no longer needs `bytes` (and never touches them
       * again), so that the source may read a later chunk into the same memory.
       */
      release?(): void;
    }
);

/** What the driver tells a chunk consumer before the first chunk. */
export interface ChunkSourceInfo {
  virtualSizeBytes: number;
  chunkSizeBytes: number;
  /**
   * The checkpoint the read is incremental to (chunks not written since are `unchanged`), or null
   * for a full read (every chunk is `zero` or `data`).
   */
  incrementalSince: string | null;
}

/**
 * A chunked capture: the driver reads the disk (allocated extents only, through the backup job's
 * NBD export) and hands its chunks in order to `consume`, which stores them.
 */
export interface ChunkCaptureOutput {
  kind: 'chunks';
  /** Chunk size in bytes: a power of two from 64 KiB to 64 MiB. */
  chunkSizeBytes: number;
  /**
   * Incremental captures. `create`: the checkpoint this capture leaves on the disk (a persistent
   * dirty bitmap; metadata only). `since`: the checkpoint of the image the consumer can take
   * unchanged chunks from. The driver reads incrementally only when it can prove it safe (the
   * checkpoint exists on this domain's current primary disk, its bitmap is present and consistent,
   * the disk is qcow2); otherwise it reads everything, and says so in {@link ChunkSourceInfo}.
   */
  checkpoint?: { create: string; since?: string | null };
  /**
   * Receives every chunk of the disk exactly once, in order, and must consume them all; its
   * rejection aborts the capture. Resolves with the image's digest and its standalone stored size.
   * When the capture then rejects (even after `consume` resolved), the consumer discards what only
   * this capture referenced.
   */
  consume(chunks: AsyncIterable<CapturedChunk>, info: ChunkSourceInfo): Promise<{ sha256: string; sizeBytes: number }>;
  /**
   * When true, the capture resolves as soon as every chunk was read and `consume` resolved, while
   * the driver still ends its job on the hypervisor; the result's {@link CaptureResult.ended} says
   * when that is done. The image is then whole: ending the job is cleanup, and it no longer delays
   * the image's availability. Default false: the capture resolves after the job ended.
   */
  endLater?: boolean;
}

/** A capture request. */
export interface CaptureRequest {
  domainName: string;
  output: CaptureOutput;
  /** Default `qcow2`. */
  format?: DiskFormat;
  /** qcow2 only: compress (zstd where supported, else zlib). Default false. */
  compress?: boolean;
  /** Try a guest-agent filesystem freeze. Default true. */
  freeze?: boolean;
  signal?: AbortSignal;
  /** Receives progress: bytes converted against the disk's allocation. */
  onProgress?(progress: ByteProgress): void;
}

/** The outcome of a capture. */
export interface CaptureResult {
  format: DiskFormat;
  sizeBytes: number;
  virtualSizeBytes: number;
  sha256: string;
  consistency: Consistency;
  method: 'pull-backup' | 'push-backup' | 'snapshot-commit' | 'cold-convert';
  /** Chunked captures: the checkpoint created (as asked in the output), else null. */
  checkpoint?: string | null;
  /** Chunked captures: the checkpoint the read was incremental to, or null for a full read. */
  incrementalSince?: string | null;
  /**
   * Chunked captures with {@link ChunkCaptureOutput.endLater}: settles once the capture's work on
   * the hypervisor is over (its backup job or `qemu-nbd` ended, its files removed). It rejects
   * when ending it failed: the image is still whole, but the domain may keep a job until
   * {@link HypervisorDriver.recover} ends it. The driver handles its rejection (never unhandled);
   * the caller should still await it before it starts another capture of the same domain.
   */
  ended?: Promise<void>;
}

/** Formats an imported image may be converted from (never stored as such). */
export type ImportedDiskFormat = 'vmdk' | 'vhdx' | 'vpc';

/** A request to materialize a standalone disk for a new instance. */
export interface MaterializeRequest {
  /**
   * The image: a path on this hypervisor, a stream of its bytes, or the data chunks of a chunked
   * image (already verified by the caller, in any order; ranges not given read as zeroes, and the
   * iterable's rejection fails the materialization and leaves nothing).
   */
  source: StoragePath | { kind: 'stream'; stream: Readable } | ChunkedSource;
  /** The source's format, passed to qemu-img explicitly (`vmdk`, `vhdx`, `vpc`: URL imports only). */
  sourceFormat: DiskFormat | ImportedDiskFormat;
  /** The expected sha256 of the source bytes; a mismatch fails with CHECKSUM_MISMATCH. */
  sha256?: string | null;
  /** Where the new disk goes on this hypervisor. */
  targetPath: string;
  targetFormat?: DiskFormat;
  /** Grow the disk to this size; never smaller than the image's virtual size (VALIDATION_FAILED). */
  sizeBytes?: number;
  signal?: AbortSignal;
  /** Receives progress of the conversion. */
  onProgress?(progress: ByteProgress): void;
  /**
   * Imports: a streamed qcow2 source going into a qcow2 target of its own size may become the
   * disk as received, without a conversion, when `qemu-img` finds it standalone (no backing or
   * data file), clean (`qemu-img check` without corruptions or leaks) and without internal
   * snapshots; otherwise it is converted as usual. The result then says `keptSource`. A path
   * source (an import the hypervisor fetched itself, without `sha256`) may likewise be moved into
   * place: it must then lie on the target's filesystem, and is gone afterwards. Drivers may
   * ignore this (and always convert). @default false
   */
  reuseSource?: boolean;
}

/** One data range of a {@link ChunkedSource}. */
export interface ChunkedSourceRange {
  /** Where the bytes lie in the guest disk. */
  offset: number;
  /** The range's bytes. */
  bytes: Buffer;
  /**
   * Optional: the driver calls it once the bytes are written, and never touches them afterwards,
   * so that the source may read a later range into the same memory.
   */
  release?(): void;
}

/** The data of a chunked image for {@link MaterializeRequest}: `sourceFormat` is then `raw`. */
export interface ChunkedSource {
  kind: 'chunks';
  virtualSizeBytes: number;
  /** Data ranges of the guest disk, in order; zero ranges are left out. */
  chunks: AsyncIterable<ChunkedSourceRange>;
}

/** The outcome of a materialization. */
export interface MaterializeResult {
  path: string;
  format: DiskFormat;
  virtualSizeBytes: number;
  /**
   * True when the disk is the streamed source exactly as it was received
   * ({@link MaterializeRequest.reuseSource}): its sha256 is then the digest of the bytes the
   * caller sent, and nothing needs to read it again to hash it.
   */
  keptSource?: boolean;
}

/** What a recovery pass found and fixed. */
export interface RecoveryAction {
  domainName: string | null;
  action: string;
  detail: string;
}

/** Acts on one hypervisor. */
export interface HypervisorDriver {
  /** @throws NOT_FOUND when the domain does not exist; HYPERVISOR_UNREACHABLE. */
  inspect(domainName: string): Promise<DomainInfo>;
  /**
   * Captures the primary disk. On any failure or abort nothing is left behind and the domain's
   * disk chain is as before. @throws CAPTURE_FAILED, STORAGE_FULL, CANCELLED, NOT_FOUND,
   * VALIDATION_FAILED (an output path through a link below its root).
   */
  capture(request: CaptureRequest): Promise<CaptureResult>;
  /** @throws DEPLOY_FAILED, CHECKSUM_MISMATCH, VALIDATION_FAILED, STORAGE_FULL, NOT_FOUND. */
  materialize(request: MaterializeRequest): Promise<MaterializeResult>;
  /**
   * Checks a deploy's target before the deploy is accepted (deploys answer at once and copy in
   * the background, so a mistyped path must be refused up front): CONFLICT when a file is
   * there, VALIDATION_FAILED naming `targetPath` when its directory does not exist. Optional:
   * without it such a target fails the deploy task instead. `materialize` checks again.
   */
  checkDeployTarget?(targetPath: string): Promise<void>;
  /**
   * Attaches an ISO read-only as the cdrom and boots from it first (live and persistent).
   * @param options.root - the storage root of `isoPath`: a path that is, or passes through, a
   *   symbolic link below it is refused.
   */
  attachIso(domainName: string, isoPath: string, options?: { root?: string }): Promise<void>;
  /** Detaches the cdrom media and restores disk-first boot; idempotent. */
  detachIso(domainName: string): Promise<void>;
  /** Free bytes of the filesystem holding `path`. */
  freeSpace(path: string): Promise<number>;
  /** Removes a file on the hypervisor; idempotent. */
  removeFile(path: string): Promise<void>;
  /**
   * Deletes checkpoints of the domain (metadata and their bitmaps only; the guest's data and disk
   * chain are untouched); names it does not find are ignored. Optional: drivers without chunked
   * captures leave it out.
   */
  deleteCheckpoints?(domainName: string, names: string[]): Promise<void>;
  /** Finds and fixes leftovers of interrupted captures (jobs, overlays, scratch files). Idempotent. */
  recover(domainName?: string): Promise<RecoveryAction[]>;
}

/** Creates the driver for a hypervisor. */
export type HypervisorDriverFactory = (hypervisor: HostHypervisor, executor: Executor) => HypervisorDriver;
