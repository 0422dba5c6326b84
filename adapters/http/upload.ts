/**
 * The streamed ISO upload: the request's web body stream flows through a byte counter straight
 * into `catalog.uploadIso` (and on to the storage driver); it is never buffered, and it is read
 * only as fast as the storage writes. A declared
 * Content-Length over the limit is refused before a byte is read; a body that grows past the limit
 * is cut off, the upload fails (the ISO record ends in `error`, the storage discards its partial
 * file) and the answer is 413.
 * @module
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
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
  const { request, actor, baseUrl } = ctx;
  const { service, maxIsoUploadBytes } = ctx.runtime;
  const input = ctx.query as IsoInput;
  // Reject a bad key before reading anything.
  normalizeStorageKey(input.fileKey, 'fileKey');
  const encoding = request.headers.get('content-encoding');
  if (encoding !== null && encoding.toLowerCase() !== 'identity') {
    // The bytes are stored as sent: a compressed body would become a corrupt ISO.
    throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', 'Send the ISO uncompressed (no Content-Encoding)');
  }
  const header = request.headers.get('content-length');
  const declared = header === null ? undefined : Number(header);
  if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The Content-Length header is not valid', {
      fields: [{ path: 'content-length', message: 'must be a non-negative integer' }],
    });
  }
  // The body is never read: a Node adapter closes the connection after answering instead of draining it.
  if (declared !== undefined && declared > maxIsoUploadBytes) throw tooLarge(maxIsoUploadBytes);

  const limiter = new ByteLimit(maxIsoUploadBytes);
  const source = request.body ? Readable.fromWeb(request.body as NodeReadableStream<Uint8Array>) : Readable.from([]);
  const controller = new AbortController();
  let complete = false;
  source.once('end', () => (complete = true));
  const onAbort = () => {
    if (complete) return;
    // The client went away mid-upload: stop the write; the service records the failure.
    controller.abort();
    limiter.destroy(new InstanceImagesError('CANCELLED', 'The client closed the connection during the upload'));
  };
  if (request.signal.aborted) onAbort();
  request.signal.addEventListener('abort', onAbort, { once: true });
  source.once('error', (error: Error) => limiter.destroy(error));
  limiter.once('error', () => {
    // Stop reading the request: cancelling the body stream leaves the connection to the adapter, which
    // answers (413) and then closes it.
    source.unpipe(limiter);
    source.destroy();
  });
  source.pipe(limiter);
  try {
    const iso = await service.catalog.uploadIso(actor, input, limiter, {
      ...(declared !== undefined ? { sizeBytes: declared } : {}),
      signal: controller.signal,
    });
    return { status: 201, body: iso, location: `${baseUrl}/admin/isos/${encodeURIComponent(iso.id)}` };
  } catch (error) {
    if (limiter.exceeded) throw tooLarge(maxIsoUploadBytes);
    throw error;
  } finally {
    request.signal.removeEventListener('abort', onAbort);
    if (!complete) {
      // The body was not (fully) read: stop reading it.
      source.unpipe(limiter);
      source.destroy();
    }
  }
}
