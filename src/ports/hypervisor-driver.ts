/**
 * The hypervisor driver contract: inspect a domain, capture its primary disk, materialize disks
 * for new instances, mount ISOs. One instance acts on one hypervisor.
 * @module
 */
import type { Readable } from 'node:stream';
import type { Consistency, DiskFormat } from '../model';
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
  | {
      kind: 'stream';
      /**
       * Receives the image bytes; must consume the stream fully; its rejection aborts the capture.
       * The bytes may be streamed while the capture is still being verified: when the capture then
       * rejects (even after `consume` resolved), the consumer must discard what it stored.
       */
      consume(stream: Readable, sizeBytes: number): Promise<void>;
    };

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
}

/** A request to materialize a standalone disk for a new instance. */
export interface MaterializeRequest {
  /** The image: a path on this hypervisor, or a stream of its bytes. */
  source: StoragePath | { kind: 'stream'; stream: Readable };
  sourceFormat: DiskFormat;
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
}

/** The outcome of a materialization. */
export interface MaterializeResult {
  path: string;
  format: DiskFormat;
  virtualSizeBytes: number;
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
  /** Finds and fixes leftovers of interrupted captures (jobs, overlays, scratch files). Idempotent. */
  recover(domainName?: string): Promise<RecoveryAction[]>;
}

/** Creates the driver for a hypervisor. */
export type HypervisorDriverFactory = (hypervisor: HostHypervisor, executor: Executor) => HypervisorDriver;
