/**
 * The state of one capture in progress, shared by the capture methods (capture.ts) and the
 * sealing of their output (seal.ts).
 * @module
 */
import { InstanceImagesError, isInstanceImagesError, toInstanceImagesError } from '../../../src/errors';
import type { DiskFormat } from '../../../src/model';
import type { ByteProgress, CaptureRequest, CaptureResult } from '../../../src/ports/hypervisor-driver';
import type { HostCommands } from './commands';
import type { QemuImgInfo } from './parsers';
import type { HypervisorCapabilities, LibvirtDomainInfo } from './inspect';
import type { CaptureScratch } from './names';
import type { CaptureMethod, LibvirtDriverHooks } from './options';

/** What the capture needs from the driver. */
export interface CaptureContext {
  cmd: HostCommands;
  scratchDir: string;
  method: CaptureMethod;
  freezeTimeoutMs: number;
  verify: boolean;
  spaceMarginBytes: number;
  /** NBD connections a chunked capture reads over. */
  nbdConnections: number;
  /** Whether a chunked capture may start and end its job over libvirt's RPC protocol (see rpc-start.ts). */
  libvirtRpc: boolean;
  hooks: LibvirtDriverHooks;
  capabilities(): Promise<HypervisorCapabilities>;
  ensureScratchDir(): Promise<void>;
}

/** One capture in progress: its request, domain, temporary names and cleanup duties. */
export interface Run {
  ctx: CaptureContext;
  request: CaptureRequest;
  domain: LibvirtDomainInfo;
  method: CaptureResult['method'];
  format: DiskFormat;
  compress: boolean;
  zstd: boolean;
  scratch: CaptureScratch;
  /** Where the converted image is written before it is published or streamed. */
  outFile: string;
  signal: AbortSignal | undefined;
  /** Set once `outFile` is known to be gone (published or removed), so it is not removed again. */
  outFileGone: boolean;
  progress(step: string, done: number, total: number | null): void;
}

/** The finished output's size and `qemu-img info`. */
export interface OutputFacts {
  sizeBytes: number;
  info: QemuImgInfo;
}

/** What a capture method hands back once its output is sealed. */
export interface Sealed {
  /** sha256 of the output's bytes: read once from the file (path) or as they were streamed. */
  sha256: string;
  /** The output's size and info. */
  facts: OutputFacts;
}

/** @throws CANCELLED when the capture's signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
}

/** The directory part of an absolute path. */
export function dirname(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

/** Runs one stage of a capture, reporting its start and end to the `stage` hook (the bench's timeline). */
export function stage<T>(run: Run, name: string, fn: () => Promise<T>): Promise<T> {
  return reportStage(run.ctx, name, fn);
}

/** {@link stage} before the {@link Run} exists (the domain's inspection). */
export async function reportStage<T>(ctx: CaptureContext, name: string, fn: () => Promise<T>): Promise<T> {
  const report = (phase: 'start' | 'end') => {
    try {
      ctx.hooks.stage?.({ stage: name, phase });
    } catch {
      // a diagnostics listener must not change the capture
    }
  };
  report('start');
  try {
    return await fn();
  } finally {
    report('end');
  }
}

/** A new {@link Run}: progress goes to the request's listener, whose failures never break the capture. */
export function newRun(
  ctx: CaptureContext,
  request: CaptureRequest,
  domain: LibvirtDomainInfo,
  method: CaptureResult['method'],
  scratch: CaptureScratch,
  output: { format: DiskFormat; compress: boolean; zstd: boolean; outFile: string; outFileGone?: boolean },
): Run {
  return {
    ctx,
    request,
    domain,
    method,
    ...output,
    scratch,
    signal: request.signal,
    outFileGone: output.outFileGone ?? false,
    progress(step, done, total) {
      const event: ByteProgress = { step, bytesDone: done, bytesTotal: total };
      try {
        request.onProgress?.(event);
      } catch {
        // a failing listener must not break the capture
      }
    },
  };
}

/** Codes a capture reports as they are; anything else becomes CAPTURE_FAILED. */
const CAPTURE_CODES = [
  'CANCELLED',
  'STORAGE_FULL',
  'NOT_FOUND',
  'HYPERVISOR_UNREACHABLE',
  'VALIDATION_FAILED',
  'CAPTURE_FAILED',
  'INVALID_STATE',
];

/** The error a failed capture of `domainName` throws (CANCELLED whenever its signal fired). */
export function captureFailure(error: unknown, signal: AbortSignal | undefined, domainName: string): InstanceImagesError {
  if (signal?.aborted) return new InstanceImagesError('CANCELLED', 'The capture was cancelled; nothing was kept', { cause: error });
  if (isInstanceImagesError(error) && CAPTURE_CODES.includes(error.code)) return error;
  return toInstanceImagesError(error, 'CAPTURE_FAILED', `Capturing the disk of ${JSON.stringify(domainName)} failed`);
}
