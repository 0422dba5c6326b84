/**
 * Running a web-standard handler on Node's own HTTP server (and, through it, Express): a Node
 * request becomes a `Request` whose body is pulled from the socket as the handler reads it and
 * whose `signal` aborts when the client goes away; a `Response` is written back with
 * backpressure (a chunk is read from its body only once the socket took the previous one), and
 * its body stream is cancelled when the client disconnects.
 * @module
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { InstanceImagesError } from '../../src/errors';
import { takeNodeSource, type NodeSource } from './streams';

/** Bytes of a request body buffered ahead of the handler before the socket is paused. */
const REQUEST_BODY_BUFFER = 64 * 1024;

/** Whether a Node request carries a body (a length other than 0, or chunked framing). */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The body of a Node request as a web stream. It is pulled: the socket is paused while the
 * handler has not read what arrived. Cancelling it stops reading without destroying the socket,
 * so an answer (a 413) can still be sent; a client that goes away mid-body errors it with
 * CANCELLED.
 */
function requestBody(req: IncomingMessage): ReadableStream<Uint8Array> {
  let settled = false;
  let onData: (chunk: Buffer) => void = () => undefined;
  const detach = () => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
    req.off('close', onClose);
  };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const onEnd = () => {
    if (settled) return;
    settled = true;
    detach();
    controller.close();
  };
  const onError = (error: Error) => {
    if (settled) return;
    settled = true;
    detach();
    controller.error(new InstanceImagesError('CANCELLED', 'The client closed the connection during the upload', { cause: error }));
  };
  const onClose = () => {
    if (!req.complete) onError(new Error('the connection closed before the body ended'));
  };
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        onData = (chunk) => {
          if (settled) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) req.pause();
        };
        // An aborted request emits 'error' only while someone listens: this one stays, so a late
        // abort (after the stream settled) is never an uncaught exception; the stream carries it.
        req.on('error', () => undefined);
        req.on('data', onData);
        req.once('end', onEnd);
        req.once('error', onError);
        req.once('close', onClose);
        req.pause();
      },
      pull() {
        req.resume();
      },
      cancel() {
        // Stop reading; the socket stays, so the adapter can still answer (and then close it).
        settled = true;
        detach();
        req.pause();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: REQUEST_BODY_BUFFER }),
  );
}

/** Options of {@link toWebRequest}. */
export interface ToWebRequestOptions {
  /** The URL path and query to use instead of `req.url` (Express: `req.originalUrl`). */
  url?: string;
  /** A body to use instead of the socket's (a host middleware already consumed it). */
  body?: string | Uint8Array;
}

/**
 * A web `Request` for a Node request. Its `signal` aborts when the response closes before it
 * finished (the client went away).
 */
export function toWebRequest(req: IncomingMessage, res: ServerResponse, options: ToWebRequestOptions = {}): Request {
  const host = req.headers.host ?? 'localhost';
  const protocol = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.set(name, value);
  }
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new InstanceImagesError('CANCELLED', 'The client closed the connection'));
  });
  const method = req.method ?? 'GET';
  let body: string | Uint8Array | ReadableStream<Uint8Array> | null = null;
  if (options.body !== undefined) {
    body = options.body;
    // The host's parser decoded it: what is left is plain bytes of the given length.
    headers.delete('content-encoding');
    headers.delete('transfer-encoding');
    headers.set('content-length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength));
  } else if (method !== 'GET' && method !== 'HEAD' && hasBody(req)) body = requestBody(req);
  return new Request(`${protocol}://${host}${options.url ?? req.url ?? '/'}`, {
    method,
    headers,
    body,
    signal: controller.signal,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
}

/**
 * Writes a web `Response` to a Node response with backpressure. When the client goes away the
 * response body is cancelled (so the stream behind it stops); when the body errors after the
 * headers went out, the connection is cut so the client sees a short body. A request whose body
 * was not read to its end gets `Connection: close` instead of having it drained.
 */
export async function sendWebResponse(response: Response, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie') return;
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  if (!req.complete && req.httpVersionMajor === 1) headers.connection = 'close';
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (response.body === null || req.method === 'HEAD') {
    await response.body?.cancel();
    res.end();
    return;
  }
  res.flushHeaders();
  const direct = takeNodeSource(response.body);
  if (direct) return pipeNodeSource(direct, res);
  const reader = response.body.getReader();
  let closed = false;
  const onClose = () => {
    closed = true;
    reader.cancel().catch(() => undefined);
  };
  res.once('close', onClose);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || closed) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          const resume = () => {
            res.off('drain', resume);
            res.off('close', resume);
            resolve();
          };
          res.once('drain', resume);
          res.once('close', resume);
        });
      }
    }
    if (!closed) res.end();
  } catch {
    // The body failed after the headers went out: cut the connection.
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
}

/**
 * Sends a body whose Node source is known ({@link takeNodeSource}) with the same rules as the web
 * path: the client going away cancels the source; a source failing after the headers cuts the
 * connection.
 */
function pipeNodeSource({ source, onCancel }: NodeSource, res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const onError = () => res.destroy();
    source.once('error', onError);
    res.once('close', () => {
      source.off('error', onError);
      if (!res.writableFinished) {
        onCancel();
        source.destroy();
      }
      resolve();
    });
    source.pipe(res);
  });
}

/**
 * A `node:http` request listener running a web-standard handler:
 * `http.createServer(toNodeListener(createImagesHandler({ … })))`.
 * @param onError - called when writing a response fails unexpectedly. @default logs nothing
 */
export function toNodeListener(
  handler: (request: Request) => Promise<Response>,
  onError: (error: unknown) => void = () => undefined,
): RequestListener {
  return (req, res) => {
    handler(toWebRequest(req, res))
      .then((response) => sendWebResponse(response, req, res))
      .catch((error: unknown) => {
        onError(error);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Internal Server Error');
        else res.destroy();
      });
  };
}
