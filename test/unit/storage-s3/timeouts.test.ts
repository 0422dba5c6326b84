/**
 * The S3 driver's request timeouts against loopback servers that play a service which stopped
 * answering (a stopped or hung radosgw, a full Ceph cluster blocking writes): a TCP server that
 * accepts connections and reads but never answers, and HTTP servers whose answer stalls or
 * trickles. Every operation fails with STORAGE_UNAVAILABLE once nothing moved for the storage's
 * `noProgressTimeoutMs`, after one request (a timed-out request is not retried), and a transfer that
 * keeps moving is never cut however long it takes.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { S3StorageOptionsSchema, s3StorageDriver } from '../../../drivers/storage/s3';
import { toS3StorageError, type S3ErrorContext } from '../../../drivers/storage/s3/errors';
import { createS3PartUploader, retryDecision } from '../../../drivers/storage/s3/part-request';
import { s3TimeoutError, s3TimeoutOf } from '../../../drivers/storage/s3/timeouts';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';

const SECRET = 'timeout-test-secret-key';
const MiB = 1024 * 1024;

const servers: (TcpServer | HttpServer)[] = [];
const sockets = new Set<Socket>();
const drivers: StorageDriver[] = [];

afterEach(async () => {
  for (const driver of drivers.splice(0)) await driver.close?.();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function listen(server: TcpServer | HttpServer): Promise<number> {
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/** A service that accepts every connection and reads what is sent, but never answers. */
async function silentService(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const port = await listen(
    createTcpServer((socket) => {
      connections += 1;
      socket.resume();
    }),
  );
  return { port, connections: () => connections };
}

function driverAt(port: number, noProgressTimeoutMs = 1000): StorageDriver {
  const driver = s3StorageDriver.create(
    S3StorageOptionsSchema.parse({
      bucket: 'images',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      accessKeyId: 'AKIDTIMEOUTTEST',
      secretAccessKey: SECRET,
      partSizeBytes: 5 * MiB,
      noProgressTimeoutMs,
    }),
    {},
  );
  drivers.push(driver);
  return driver;
}

async function failureOf(promise: Promise<unknown>): Promise<InstanceImagesError> {
  const outcome = await promise.then(
    () => new Error('expected the operation to fail'),
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(InstanceImagesError);
  return outcome as InstanceImagesError;
}

function expectNoProgressTimeout(error: InstanceImagesError, port: number, ms: number): void {
  expect(error.code).toBe('STORAGE_UNAVAILABLE');
  expect(error.details).toMatchObject({ timeout: 'no-progress', timeoutMs: ms });
  expect(error.message).toContain(`S3 bucket "images" at http://127.0.0.1:${port} did not answer for ${ms / 1000} s`);
  expect(error.message).toContain('radosgw');
  expect(error.message).toContain('full');
  expect(error.message).toContain('noProgressTimeoutMs');
  expect(error.message).not.toContain(SECRET);
  expect(JSON.stringify(error.details)).not.toContain(SECRET);
}

describe('S3 request timeouts', { timeout: 20_000 }, () => {
  it(
    'fails every operation on a service that accepts connections but never answers, after one request each',
    { timeout: 40_000 },
    async () => {
      const service = await silentService();
      const driver = driverAt(service.port);
      const operations: [string, () => Promise<unknown>][] = [
        ['stat', () => driver.stat('images/a.qcow2')],
        ['get', () => driver.get('images/a.qcow2')],
        ['getBytes', () => driver.getBytes!('images/a.qcow2', Buffer.alloc(1000))],
        ['list', () => driver.list({ prefix: 'images/' })],
        ['delete', () => driver.delete('images/a.qcow2')],
        ['a small put (PutObject)', () => driver.put('images/a.qcow2', Readable.from([Buffer.alloc(1000)]), { size: 1000 })],
        [
          'a multipart put (CreateMultipartUpload)',
          () => driver.put('images/a.qcow2', Readable.from([Buffer.alloc(6 * MiB)]), { size: 6 * MiB }),
        ],
        ['a put of unknown size', () => driver.put('images/a.qcow2', Readable.from([Buffer.alloc(1000)]))],
        ['listIncomplete', () => driver.listIncomplete()],
      ];
      for (const [name, operation] of operations) {
        const before = service.connections();
        const error = await failureOf(operation());
        expectNoProgressTimeout(error, service.port, 1000);
        // A request that made no progress for the whole timeout is final: no second attempt.
        expect({ name, requests: service.connections() - before }).toEqual({ name, requests: 1 });
      }
    },
  );

  it('reports the storage unhealthy, naming the endpoint and what to check, instead of hanging', async () => {
    const service = await silentService();
    const health = await driverAt(service.port).health();
    expect(health.ok).toBe(false);
    expect(health.message).toContain(`S3 bucket "images" at http://127.0.0.1:${service.port} did not answer for 1 s`);
    expect(health.message).toContain('radosgw');
    expect(health.message).not.toContain(SECRET);
  });

  it('fails a download whose body stops moving: the read stream errors with STORAGE_UNAVAILABLE', async () => {
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': String(MiB), 'last-modified': new Date().toUTCString() });
        res.write(Buffer.alloc(64 * 1024, 1));
        // ...and nothing more.
      }),
    );
    const body = await driverAt(port).get('images/a.qcow2');
    const read = (async () => {
      let bytes = 0;
      for await (const chunk of body) bytes += (chunk as Buffer).length;
      return bytes;
    })();
    expectNoProgressTimeout(await failureOf(read), port, 1000);
  });

  it('fails a whole-object read (getBytes) whose body stops moving, through the SDK and the plain GET, after one request', async () => {
    let requests = 0;
    const port = await listen(
      createHttpServer((_req, res) => {
        requests += 1;
        res.writeHead(200, { 'content-length': String(MiB), 'last-modified': new Date().toUTCString() });
        // The first read is answered whole (it teaches the driver its URL); later ones stall.
        if (requests === 1) res.end(Buffer.alloc(MiB, 1));
        else res.write(Buffer.alloc(64 * 1024, 1));
      }),
    );
    const driver = driverAt(port);
    const into = Buffer.alloc(MiB);
    expect(await driver.getBytes?.('images/a.bin', into)).toBe(MiB);
    expectNoProgressTimeout(await failureOf(driver.getBytes!('images/b.bin', into)), port, 1000);
    expect(requests).toBe(2);
  });

  it('never cuts a download that keeps moving, however long it takes: the timeout measures silence, not duration', async () => {
    const chunks = 40;
    const port = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': String(chunks * 8192), 'last-modified': new Date().toUTCString() });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(Buffer.alloc(8192, 2));
          sent += 1;
          if (sent === chunks) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.once('close', () => clearInterval(timer));
      }),
    );
    // About 4 s in all, twice the timeout, but never more than 100 ms without a byte.
    const body = await driverAt(port, 2000).get('images/a.qcow2');
    let bytes = 0;
    for await (const chunk of body) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(chunks * 8192);
  });

  it('gives up on an UploadPart without an answer after one attempt, with the timeout error', async () => {
    let requests = 0;
    const port = await listen(
      createHttpServer((req) => {
        requests += 1;
        req.resume();
      }),
    );
    const parts = createS3PartUploader({
      signer: async (request) => ({ headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 test' } }),
      clock: { offset: () => 0, setOffset: () => undefined },
      sleep: async () => undefined,
      connectionTimeoutMs: 5000,
      socketIdleTimeoutMs: 1000,
    });
    try {
      const target = { protocol: 'http:', hostname: '127.0.0.1', port, path: '/images/a', signingRegion: 'us-east-1', signingName: 's3' };
      const failure = await parts
        .uploadPart(target, 'upload-1', 1, Buffer.alloc(MiB), new AbortController().signal)
        .catch((error: unknown) => error);
      expect(s3TimeoutOf(failure)).toEqual({ kind: 'no-progress', ms: 1000 });
      expect(requests).toBe(1);
      const context: S3ErrorContext = { action: 'upload "a"', bucket: 'images', endpoint: `http://127.0.0.1:${port}`, secrets: [SECRET] };
      expectNoProgressTimeout(toS3StorageError(failure, context), port, 1000);
    } finally {
      parts.close();
    }
  });
});

describe('timeout classification', () => {
  const context: S3ErrorContext = {
    action: 'check the bucket',
    bucket: 'images',
    endpoint: 'https://s3.example.net',
    secrets: [],
    timeouts: { connectionMs: 10_000, noProgressMs: 60_000 },
  };

  it("recognizes the SDK handler's connection and inactivity timeouts, and the driver's own", () => {
    const connect = Object.assign(
      new Error(
        '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 10000 ms.',
      ),
      { name: 'TimeoutError' },
    );
    const idle = Object.assign(
      new Error(
        '@smithy/node-http-handler - the request socket timed out after 60000 ms of inactivity (configured by client requestHandler).',
      ),
      { name: 'TimeoutError' },
    );
    expect(s3TimeoutOf(connect)).toEqual({ kind: 'connect', ms: 10_000 });
    expect(s3TimeoutOf(idle)).toEqual({ kind: 'no-progress', ms: 60_000 });
    expect(s3TimeoutOf(s3TimeoutError('connect', 3000, 'h'))).toEqual({ kind: 'connect', ms: 3000 });
    expect(s3TimeoutOf(Object.assign(new Error('x'), { cause: s3TimeoutError('no-progress', 5000, 'h') }))).toEqual({
      kind: 'no-progress',
      ms: 5000,
    });
    // Other timeouts and network errors are not these (they keep their retries).
    expect(s3TimeoutOf(Object.assign(new Error('slow'), { name: 'TimeoutError' }))).toBeUndefined();
    expect(s3TimeoutOf(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBeUndefined();
  });

  it('does not retry a timed-out part, but still retries a reset connection', () => {
    expect(retryDecision(s3TimeoutError('no-progress', 1000, 'h'), 0, 0)).toEqual({ retry: false });
    expect(retryDecision(s3TimeoutError('connect', 1000, 'h'), 0, 0)).toEqual({ retry: false });
    expect(retryDecision(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), 0, 0)).toEqual({ retry: true, baseMs: 100 });
  });

  it('tells the operator which endpoint could not be reached in how long, with the limit from the storage when the error has none', () => {
    const connect = toS3StorageError(s3TimeoutError('connect', 10_000, 's3.example.net'), context);
    expect(connect.code).toBe('STORAGE_UNAVAILABLE');
    expect(connect.message).toContain('no connection to https://s3.example.net (S3 bucket "images") within 10 s');
    expect(connect.message).toContain('connectionTimeoutMs');
    expect(connect.details).toMatchObject({ timeout: 'connect', timeoutMs: 10_000 });
    const idle = toS3StorageError(
      Object.assign(new Error('socket timed out after some time of inactivity'), { name: 'TimeoutError' }),
      context,
    );
    expect(idle.message).toContain('did not answer for 60 s');
    expect(idle.details).toMatchObject({ timeout: 'no-progress', timeoutMs: 60_000 });
  });

  it('accepts timeouts from 1 s in the storage config and names a bad one', () => {
    const parsed = S3StorageOptionsSchema.parse({ bucket: 'images', connectionTimeoutMs: 3000, noProgressTimeoutMs: 3000 });
    expect(parsed).toMatchObject({ connectionTimeoutMs: 3000, noProgressTimeoutMs: 3000 });
    const refused = S3StorageOptionsSchema.safeParse({ bucket: 'images', noProgressTimeoutMs: 10, connectionTimeoutMs: 1.5 });
    expect(refused.success).toBe(false);
    const paths = refused.error?.issues.map((issue) => issue.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['noProgressTimeoutMs', 'connectionTimeoutMs']));
  });
});
