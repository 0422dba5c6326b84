/**
 * The streamed ISO upload: the request body flows through a byte counter straight into
 * `catalog.uploadIso` (and on to the storage driver); it is never buffered. A declared
 * Content-Length over the limit is refused before a byte is read; a body that grows past the limit
 * is cut off, the upload fails (the ISO record ends in `error`, the storage discards its partial
 * file) and the answer is 413.
 * @module
 */
import { Transform, type TransformCallback } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import type { IsoInput } from '../../src/services/catalog';
import { normalizeStorageKey } from '../../src/storage/keys';
import { HttpProblem } from './problem';
import type { RouteContext, RouteResult } from './route-types';

/** Passes bytes through and fails once more than `limit` have passed. */
export class ByteLimit extends Transform {
  /** Bytes seen so far. */
  bytes = 0;
  /** Whether the limit was exceeded. */
  exceeded = false;

  constructor(private readonly limit: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.exceeded = true;
      callback(
        new InstanceImagesError('VALIDATION_FAILED', `The upload exceeds the limit of ${this.limit} bytes`, {
          fields: [{ path: 'body', message: `must be at most ${this.limit} bytes` }],
          details: { limitBytes: this.limit },
        }),
      );
      return;
    }
    callback(null, chunk);
  }
}

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem('PAYLOAD_TOO_LARGE', `The upload exceeds the limit of ${limit} bytes`, { details: { limitBytes: limit } });
}

/** Handles `PUT /admin/isos/upload`. */
export async function receiveIsoUpload(ctx: RouteContext<unknown, unknown>): Promise<RouteResult> {
  const { req, res, actor } = ctx;
  const { service, maxIsoUploadBytes } = ctx.runtime;
  const input = ctx.query as IsoInput;
  // Reject a bad key before reading anything.
  normalizeStorageKey(input.fileKey, 'fileKey');
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
    // The bytes are stored as sent: a compressed body would become a corrupt ISO.
    throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', 'Send the ISO uncompressed (no Content-Encoding)');
  }
  const header = req.headers['content-length'];
  const declared = header === undefined ? undefined : Number(header);
  if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The Content-Length header is not valid', {
      fields: [{ path: 'content-length', message: 'must be a non-negative integer' }],
    });
  }
  if (declared !== undefined && declared > maxIsoUploadBytes) {
    // The body is never read: close the connection after answering instead of draining it.
    res.setHeader('Connection', 'close');
    throw tooLarge(maxIsoUploadBytes);
  }

  const limiter = new ByteLimit(maxIsoUploadBytes);
  const controller = new AbortController();
  const onClose = () => {
    if (req.complete) return;
    // The client went away mid-upload: stop the write; the service records the failure.
    controller.abort();
    limiter.destroy(new InstanceImagesError('CANCELLED', 'The client closed the connection during the upload'));
  };
  const onError = (error: Error) => limiter.destroy(error);
  req.on('close', onClose);
  req.on('error', onError);
  limiter.once('error', () => {
    // Stop reading the request; destroying it would also destroy the socket before the 413 is sent.
    req.unpipe(limiter);
    req.pause();
  });
  req.pipe(limiter);
  try {
    const iso = await service.catalog.uploadIso(actor, input, limiter, {
      ...(declared !== undefined ? { sizeBytes: declared } : {}),
      signal: controller.signal,
    });
    return { status: 201, body: iso, location: `${req.baseUrl}/admin/isos/${encodeURIComponent(iso.id)}` };
  } catch (error) {
    if (limiter.exceeded) {
      res.setHeader('Connection', 'close');
      throw tooLarge(maxIsoUploadBytes);
    }
    if (!req.complete) {
      // The body was not (fully) read: stop reading it and close the connection after answering.
      req.unpipe(limiter);
      limiter.destroy();
      res.setHeader('Connection', 'close');
    }
    throw error;
  } finally {
    req.off('close', onClose);
    req.off('error', onError);
  }
}
