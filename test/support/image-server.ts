/**
 * A local HTTP server serving image bytes for import tests: it can drop the connection after some
 * bytes (once), ignore Range, answer with an ETag, redirect, send no Content-Length (chunked
 * transfer encoding), and send its bytes again and again without end. It records every request,
 * with the body bytes it wrote and whether the client hung up before the body's end.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImageServerOptions {
  /** Listen address. @default '127.0.0.1' */
  host?: string;
  /** Drop the connection after this many body bytes of the first full or ranged answer. */
  cutAfter?: number;
  /** Answer every request with the whole file (200), ignoring Range. */
  ignoreRange?: boolean;
  /** The ETag sent. @default '"v1"' */
  etag?: string | null;
  /** Path → Location: answered 302. */
  redirects?: Record<string, string>;
  /** Send this many body bytes of the first answer, then nothing more (the connection stays open). */
  stallAfter?: number;
  /** A Content-Length that differs from the body (a lying server). */
  contentLength?: number;
  /** Send no Content-Length: the body goes with chunked transfer encoding, its length unknown to the client. */
  chunked?: boolean;
  /** Chunked, and the bytes repeated without end: only the client can end the transfer (by hanging up). */
  endless?: boolean;
}

export interface ServedRequest {
  path: string;
  /** The request target as sent (path and query). */
  target: string;
  range: string | null;
  ifRange: string | null;
  status: number;
  /** Body bytes written to the client so far (accepted by the socket). */
  sent: number;
  /** True once the client closed the connection before the body ended (it hung up). */
  hungUp: boolean;
}

export interface ImageServer {
  /** URL of the image (`/image`). */
  url: string;
  origin: string;
  requests: ServedRequest[];
  close(): Promise<void>;
}

export async function serveBytes(bytes: Buffer, options: ImageServerOptions = {}): Promise<ImageServer> {
  const requests: ServedRequest[] = [];
  let cut = options.cutAfter;
  const etag = options.etag === undefined ? '"v1"' : options.etag;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const served: ServedRequest = { path, target: req.url ?? '/', range: null, ifRange: null, status: 0, sent: 0, hungUp: false };
    const record = (status: number) =>
      requests.push(
        Object.assign(served, {
          range: req.headers.range ?? null,
          ifRange: (req.headers['if-range'] as string | undefined) ?? null,
          status,
        }),
      );
    const redirect = options.redirects?.[path];
    if (redirect) {
      record(302);
      res.writeHead(302, { location: redirect });
      res.end();
      return;
    }
    if (path !== '/image') {
      record(404);
      res.writeHead(404);
      res.end();
      return;
    }
    const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = match && !options.ignoreRange ? Number(match[1]) : 0;
    if (start >= bytes.length && start > 0) {
      record(416);
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
      res.end();
      return;
    }
    const body = bytes.subarray(start);
    const status = start > 0 ? 206 : 200;
    record(status);
    const chunked = options.chunked === true || options.endless === true;
    res.writeHead(status, {
      ...(chunked ? {} : { 'content-length': String(status === 200 ? (options.contentLength ?? body.length) : body.length) }),
      ...(etag ? { etag } : {}),
      'accept-ranges': options.ignoreRange ? 'none' : 'bytes',
      ...(status === 206 ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    res.on('close', () => (served.hungUp = !res.writableFinished));
    if (options.endless) {
      // The body again and again, 64 KiB at a time, each write waiting for the socket to take the last.
      const piece = 64 * 1024;
      let offset = 0;
      const pump = (): void => {
        while (!res.destroyed) {
          const end = Math.min(offset + piece, body.length);
          const bytes = body.subarray(offset, end);
          offset = end === body.length ? 0 : end;
          const more = res.write(bytes, (error) => {
            if (!error) served.sent += bytes.length;
          });
          if (!more) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
      return;
    }
    if (options.stallAfter !== undefined && requests.length === 1) {
      res.write(body.subarray(0, options.stallAfter));
      return;
    }
    if (cut !== undefined && cut < body.length) {
      const n = cut;
      cut = undefined;
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body, () => (served.sent += body.length));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: `${origin}/image`,
    origin,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
