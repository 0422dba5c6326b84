/**
 * The S3 driver's whole-object reads into a buffer (`getBytes`) without an S3 service: the base
 * URL learnt from the SDK's own request, the signed plain GET (its retries, a missing object as
 * null), and the node transport writing a body straight into the caller's buffer and refusing one
 * that does not fit, against a local HTTP server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3PlainRequests, escapeS3KeyPath, s3ReadBase, type S3ReadBase } from '../../../drivers/storage/s3/plain-requests';
import {
  createNodePartTransport,
  S3_OBJECT_TOO_LARGE,
  type GetIntoHttpResponse,
  type PartHttpRequest,
  type SignableRequest,
} from '../../../drivers/storage/s3/part-request';

const noSleep = async (): Promise<void> => undefined;
const clock = { offset: () => 0, setOffset: () => undefined };
const errorXml = (code: string) => `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>m</Message></Error>`;

describe('s3ReadBase and escapeS3KeyPath', () => {
  const target = { protocol: 'http:', hostname: '127.0.0.1', port: 7480, signingRegion: 'us-east-1', signingName: 's3' };

  it('cuts the escaped key off a path-style or virtual-hosted path', () => {
    expect(s3ReadBase({ ...target, path: '/images/p/chunks/ab.bin' }, 'p/chunks/ab.bin')).toEqual({ ...target, pathPrefix: '/images/' });
    expect(s3ReadBase({ ...target, hostname: 'images.s3.example', path: '/chunks/a%20b' }, 'chunks/a b')).toEqual({
      ...target,
      hostname: 'images.s3.example',
      pathPrefix: '/',
    });
  });

  it('gives no base when the path does not end with the key escaped the same way', () => {
    expect(s3ReadBase({ ...target, path: '/images/chunks/a+b' }, 'chunks/a+b')).toBeNull();
    expect(s3ReadBase({ ...target, path: '/images/other' }, 'chunks/x')).toBeNull();
  });

  it('escapes every segment as SigV4 canonicalises it, keeping the slashes', () => {
    expect(escapeS3KeyPath("a b/c+d~e/(1)'!*ü")).toBe('a%20b/c%2Bd~e/%281%29%27%21%2A%C3%BC');
  });
});

describe('createS3PlainRequests', () => {
  const base: S3ReadBase = {
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 7480,
    pathPrefix: '/images/',
    signingRegion: 'r1',
    signingName: 's3',
  };

  function scripted(answers: ((Partial<GetIntoHttpResponse> & { bytes?: Buffer }) | Error)[]) {
    const requests: PartHttpRequest[] = [];
    const signed: SignableRequest[] = [];
    const bodies: Buffer[] = [];
    const next = (request: PartHttpRequest, into: Buffer | null) => {
      requests.push(request);
      const answer = answers.shift();
      if (answer === undefined) throw new Error('no more answers');
      if (answer instanceof Error) throw answer;
      if (into) answer.bytes?.copy(into);
      return { status: 200, headers: {}, body: '', length: answer.bytes?.length ?? 0, ...answer };
    };
    const reader = createS3PlainRequests({
      signer: async (request) => {
        signed.push(request);
        return { headers: { ...request.headers, authorization: 'AWS4-HMAC-SHA256 x' } };
      },
      clock,
      maxAttempts: 3,
      sleep: noSleep,
      getTransport: async (request, into) => next(request, into),
      putTransport: async (request, body) => {
        bodies.push(body);
        return next(request, null);
      },
      headTransport: async (request) => next(request, null),
    });
    return { reader, requests, signed, bodies };
  }

  it('signs one GET of the escaped key with the empty payload hash and returns the length read', async () => {
    const { reader, requests, signed } = scripted([{ bytes: Buffer.from('hello') }]);
    const into = Buffer.alloc(16);
    expect(await reader.getInto(base, 'chunks/a b', into, new AbortController().signal)).toBe(5);
    expect(into.subarray(0, 5).toString()).toBe('hello');
    expect(signed).toEqual([
      {
        method: 'GET',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 7480,
        path: '/images/chunks/a%20b',
        query: {},
        headers: { host: '127.0.0.1:7480', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
      },
    ]);
    expect(requests.map((r) => [r.host, r.port, r.path, r.headers.authorization])).toEqual([
      ['127.0.0.1', 7480, '/images/chunks/a%20b', 'AWS4-HMAC-SHA256 x'],
    ]);
  });

  it('answers null for a missing object, retries a failing service, and throws a final error', async () => {
    const missing = scripted([{ status: 404, body: errorXml('NoSuchKey'), length: 0 }]);
    expect(await missing.reader.getInto(base, 'k', Buffer.alloc(4), new AbortController().signal)).toBeNull();

    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const retried = scripted([{ status: 500, body: errorXml('InternalError') }, reset, { bytes: Buffer.from('ok') }]);
    expect(await retried.reader.getInto(base, 'k', Buffer.alloc(4), new AbortController().signal)).toBe(2);
    expect(retried.requests).toHaveLength(3);

    const noBucket = scripted([{ status: 404, body: errorXml('NoSuchBucket') }]);
    await expect(noBucket.reader.getInto(base, 'k', Buffer.alloc(4), new AbortController().signal)).rejects.toMatchObject({
      name: 'NoSuchBucket',
    });
    const denied = scripted([{ status: 403, body: errorXml('AccessDenied') }]);
    await expect(denied.reader.getInto(base, 'k', Buffer.alloc(4), new AbortController().signal)).rejects.toMatchObject({
      name: 'AccessDenied',
    });
    expect(denied.requests).toHaveLength(1);
  });

  it('PUTs a body signed with its sha256, and retries a failing service', async () => {
    const sha256 = 'a'.repeat(64);
    const { reader, requests, signed, bodies } = scripted([{ status: 503, body: errorXml('SlowDown') }, { status: 200 }]);
    await reader.put(base, 'chunks/ab', Buffer.from('bytes'), sha256, new AbortController().signal);
    expect(signed[0]).toMatchObject({
      method: 'PUT',
      path: '/images/chunks/ab',
      headers: { host: '127.0.0.1:7480', 'content-length': '5', 'x-amz-content-sha256': sha256 },
    });
    expect(requests).toHaveLength(2);
    expect(bodies.map((b) => b.toString())).toEqual(['bytes', 'bytes']);
    const refused = scripted([{ status: 400, body: errorXml('XAmzContentSHA256Mismatch') }]);
    await expect(refused.reader.put(base, 'k', Buffer.from('x'), sha256, new AbortController().signal)).rejects.toMatchObject({
      name: 'XAmzContentSHA256Mismatch',
    });
    expect(refused.requests).toHaveLength(1);
  });

  it('HEADs an object: its size and time, null when missing (a bare 404 has no body)', async () => {
    const { reader, signed } = scripted([
      { status: 200, headers: { 'content-length': '4194304', 'last-modified': 'Fri, 04 Dec 2026 09:00:00 GMT' } },
      { status: 404 },
    ]);
    expect(await reader.head(base, 'chunks/ab', new AbortController().signal)).toEqual({
      size: 4194304,
      modifiedAt: new Date('2026-12-04T09:00:00Z'),
    });
    expect(signed[0]).toMatchObject({ method: 'HEAD', path: '/images/chunks/ab' });
    expect(await reader.head(base, 'chunks/cd', new AbortController().signal)).toBeNull();
    const denied = scripted([{ status: 403 }]);
    await expect(denied.reader.head(base, 'k', new AbortController().signal)).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
  });

  it('does not send once aborted', async () => {
    const { reader, requests } = scripted([{ bytes: Buffer.from('x') }]);
    const abort = new AbortController();
    abort.abort();
    await expect(reader.getInto(base, 'k', Buffer.alloc(4), abort.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(requests).toHaveLength(0);
  });
});

describe('the node transport reading into a buffer', () => {
  let server: Server;
  let port = 0;
  const body = Buffer.from('0123456789'.repeat(10_000)); // 100 000 bytes, sent in several writes

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/chunked') {
        res.writeHead(200); // no content-length: the length is known only at the end
        res.write(body.subarray(0, 50_000));
        setTimeout(() => res.end(body.subarray(50_000)), 5);
      } else if (req.url === '/missing') {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end(errorXml('NoSuchKey'));
      } else {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const request = (path: string): PartHttpRequest => ({ protocol: 'http:', host: '127.0.0.1', port, path, headers: {} });

  it('writes a success body into the buffer and keeps the connection for the next request', async () => {
    const http = createNodePartTransport({ connectionTimeoutMs: 5000, socketIdleTimeoutMs: 5000 });
    try {
      for (const path of ['/object', '/chunked', '/object']) {
        const into = Buffer.alloc(body.length + 10, 0xff);
        const response = await http.getInto(request(path), into, new AbortController().signal);
        expect(response.status).toBe(200);
        expect(response.length).toBe(body.length);
        expect(into.subarray(0, body.length).equals(body)).toBe(true);
        expect(into[body.length]).toBe(0xff);
      }
      const missing = await http.getInto(request('/missing'), Buffer.alloc(10), new AbortController().signal);
      expect({ status: missing.status, length: missing.length }).toEqual({ status: 404, length: 0 });
      expect(missing.body).toContain('NoSuchKey');
    } finally {
      http.close();
    }
  });

  it('refuses a body longer than the buffer, announced or not', async () => {
    const http = createNodePartTransport({ connectionTimeoutMs: 5000, socketIdleTimeoutMs: 5000 });
    try {
      for (const path of ['/object', '/chunked']) {
        const into = Buffer.alloc(body.length - 1);
        await expect(http.getInto(request(path), into, new AbortController().signal)).rejects.toMatchObject({
          name: S3_OBJECT_TOO_LARGE,
          limit: body.length - 1,
        });
      }
      // The exact length is enough.
      const exact = await http.getInto(request('/chunked'), Buffer.alloc(body.length), new AbortController().signal);
      expect(exact.length).toBe(body.length);
    } finally {
      http.close();
    }
  });
});
