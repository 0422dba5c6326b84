/**
 * The lean UploadPart path's HTTP transport over real sockets, against a loopback HTTP server that
 * plays the failure modes radosgw cannot be made to show on demand: an error answer before the
 * body was read, a connection dropped mid-answer, a server that never answers, a cancel while the
 * body is being sent, a refused connection; and keep-alive (parts share one connection).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { toS3StorageError } from '../../../drivers/storage/s3/errors';
import { createS3PartUploader, type S3PartTarget, type S3PartUploader } from '../../../drivers/storage/s3/part-request';

const MiB = 1024 * 1024;
const context = { action: 'upload "t"', bucket: 'b', endpoint: 'http://127.0.0.1', secrets: [] };

interface Fake {
  server: Server;
  target: S3PartTarget;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  sockets: Set<Socket>;
}

const servers: Server[] = [];
const uploaders: S3PartUploader[] = [];

async function fakeS3(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Fake> {
  const requests: Fake['requests'] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return {
    server,
    requests,
    sockets,
    target: { protocol: 'http:', hostname: '127.0.0.1', port, path: '/bucket/key', signingRegion: 'us-east-1', signingName: 's3' },
  };
}

function uploader(options: { maxAttempts?: number; socketIdleTimeoutMs?: number } = {}): S3PartUploader {
  const created = createS3PartUploader({
    signer: async (request) => ({ headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 test' } }),
    clock: { offset: () => 0, setOffset: () => undefined },
    sleep: async () => undefined,
    connectionTimeoutMs: 5_000,
    socketIdleTimeoutMs: options.socketIdleTimeoutMs ?? 30_000,
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  });
  uploaders.push(created);
  return created;
}

afterEach(async () => {
  for (const created of uploaders.splice(0)) created.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('lean UploadPart transport', { timeout: 20_000 }, () => {
  it('sends PUT path?partNumber&uploadId with the signed headers and the body, and reuses one connection', async () => {
    const bodies: number[] = [];
    const fake = await fakeS3((req, res) => {
      let length = 0;
      req.on('data', (chunk: Buffer) => (length += chunk.length));
      req.on('end', () => {
        bodies.push(length);
        res.writeHead(200, { ETag: `"etag-${bodies.length}"` }).end();
      });
    });
    const parts = uploader();
    for (let part = 1; part <= 3; part += 1) {
      expect(await parts.uploadPart(fake.target, 'up/1', part, Buffer.alloc(MiB + part), new AbortController().signal)).toBe(
        `"etag-${part}"`,
      );
    }
    expect(bodies).toEqual([MiB + 1, MiB + 2, MiB + 3]);
    expect(fake.requests.map((r) => [r.method, r.url])).toEqual(
      [1, 2, 3].map((n) => ['PUT', `/bucket/key?partNumber=${n}&uploadId=up%2F1`]),
    );
    expect(fake.requests[0]!.headers).toMatchObject({
      authorization: 'AWS4-HMAC-SHA256 test',
      'content-length': String(MiB + 1),
      host: `127.0.0.1:${fake.target.port}`,
    });
    expect(fake.requests[0]!.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(fake.sockets.size).toBe(1);
  });

  it('reports an error answer sent before the body was read as that S3 error, not as a broken pipe', async () => {
    const fake = await fakeS3((_req, res) => {
      // Answers at once and drops the connection without reading the body (the client's write then fails).
      res
        .writeHead(403, { 'Content-Type': 'application/xml', Connection: 'close' })
        .end('<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>', () => res.socket?.destroy());
    });
    const failure = await uploader()
      .uploadPart(fake.target, 'id', 1, Buffer.alloc(16 * MiB), new AbortController().signal)
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect(toS3StorageError(failure, context).code).toBe('STORAGE_UNAVAILABLE');
    expect(fake.requests).toHaveLength(1);
  });

  it('retries a connection dropped mid-answer, then fails with a network error after the attempts', async () => {
    const fake = await fakeS3((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Length': '100' });
        res.write('partial');
        setImmediate(() => res.socket?.destroy());
      });
    });
    const failure = await uploader({ maxAttempts: 3 })
      .uploadPart(fake.target, 'id', 1, Buffer.alloc(64 * 1024), new AbortController().signal)
      .catch((error: unknown) => error);
    expect(fake.requests).toHaveLength(3);
    const mapped = toS3StorageError(failure, context);
    expect(mapped.code).toBe('STORAGE_UNAVAILABLE');
    expect(mapped.details.networkError).toBe('ECONNRESET');
  });

  it('fails a request without socket activity with a timeout', async () => {
    const fake = await fakeS3((req) => {
      req.resume();
      // Never answers.
    });
    const failure = await uploader({ socketIdleTimeoutMs: 1000 })
      .uploadPart(fake.target, 'id', 1, Buffer.alloc(1024), new AbortController().signal)
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: 'S3TimeoutError', s3Timeout: { kind: 'no-progress', ms: 1000 } });
    // A request that made no progress for the whole timeout is not retried.
    expect(fake.requests).toHaveLength(1);
    expect(toS3StorageError(failure, context)).toMatchObject({ code: 'STORAGE_UNAVAILABLE', details: { timeout: 'no-progress' } });
  });

  it('a cancel of a request in flight rejects with AbortError and closes the connection', { timeout: 20_000 }, async () => {
    let closed: Promise<void> | undefined;
    const fake = await fakeS3((req) => {
      // Takes the body but never answers: the request is in flight until cancelled.
      req.resume();
      closed = new Promise((resolve) => req.socket.once('close', () => resolve()));
    });
    const controller = new AbortController();
    const pending = uploader()
      .uploadPart(fake.target, 'id', 1, Buffer.alloc(64 * MiB), controller.signal)
      .catch((error: unknown) => error);
    while (fake.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    const failure = await pending;
    expect(failure).toMatchObject({ name: 'AbortError' });
    expect(toS3StorageError(failure, context).code).toBe('CANCELLED');
    await closed;
    expect(fake.requests).toHaveLength(1);
  });

  it('maps a refused connection to STORAGE_UNAVAILABLE after retrying', async () => {
    const fake = await fakeS3(() => undefined);
    await new Promise((resolve) => fake.server.close(resolve));
    const failure = await uploader()
      .uploadPart(fake.target, 'id', 1, Buffer.alloc(10), new AbortController().signal)
      .catch((error: unknown) => error);
    const mapped = toS3StorageError(failure, context);
    expect(mapped.code).toBe('STORAGE_UNAVAILABLE');
    expect(mapped.details.networkError).toBe('ECONNREFUSED');
  });
});
