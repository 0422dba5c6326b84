/**
 * The lean UploadPart path without a network: S3 error answers become SDK-shaped errors that the
 * driver maps to the same codes, the retry classification and backoff follow the SDK's standard
 * strategy, and the uploader signs the right request, retries transient failures, corrects the
 * clock, gives up after the attempts and stops at once on abort. The transport is an in-memory fake.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { toS3StorageError, type S3ErrorContext } from '../../../drivers/storage/s3/errors';
import {
  abortableSleep,
  createS3PartUploader,
  escapeS3QueryValue,
  retryDecision,
  retryDelayMs,
  s3ErrorFromResponse,
  type PartHttpRequest,
  type PartHttpResponse,
  type S3PartTarget,
  type SignableRequest,
} from '../../../drivers/storage/s3/part-request';

const context: S3ErrorContext = { action: 'upload "a.qcow2"', bucket: 'images', endpoint: 'http://127.0.0.1:7480', secrets: ['topsecret'] };

const target: S3PartTarget = {
  protocol: 'http:',
  hostname: '127.0.0.1',
  port: 7480,
  path: '/images/dir/a%20b.qcow2',
  signingRegion: 'us-east-1',
  signingName: 's3',
};

const errorXml = (code: string, message = ''): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>tx1</RequestId></Error>`;

/** A fake transport answering from a script, recording each request. */
function scripted(answers: (PartHttpResponse | Error)[]) {
  const requests: { request: PartHttpRequest; body: Buffer }[] = [];
  const transport = async (request: PartHttpRequest, body: Buffer): Promise<PartHttpResponse> => {
    requests.push({ request, body });
    const answer = answers.shift();
    if (answer === undefined) throw new Error('no more scripted answers');
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { transport, requests };
}

/** A signer that records what it was asked to sign and returns a fixed authorization header. */
function recordingSigner() {
  const calls: { request: SignableRequest; signingDate: Date; signingRegion: string; signingService: string }[] = [];
  const signer = async (request: SignableRequest, options: { signingDate: Date; signingRegion: string; signingService: string }) => {
    calls.push({ request, ...options });
    return { headers: { ...request.headers, authorization: `AWS4-HMAC-SHA256 signed-${calls.length}` } };
  };
  return { signer, calls };
}

function clock(initial = 0) {
  let offset = initial;
  return {
    offset: () => offset,
    setOffset: (value: number) => (offset = value),
    get value() {
      return offset;
    },
  };
}

const noSleep = async (): Promise<void> => undefined;

describe('s3ErrorFromResponse', () => {
  it('names the error after the XML Code and keeps the status, like the SDK', () => {
    const error = s3ErrorFromResponse(404, errorXml('NoSuchUpload', 'The specified upload does not exist.'));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('NoSuchUpload');
    expect(error.Code).toBe('NoSuchUpload');
    expect(error.message).toBe('The specified upload does not exist.');
    expect(error.$fault).toBe('client');
    expect(error.$metadata).toEqual({ httpStatusCode: 404, requestId: 'tx1' });
  });

  it('names a bare 404 NotFound and any other bare status Unknown', () => {
    expect(s3ErrorFromResponse(404, '').name).toBe('NotFound');
    const bare = s3ErrorFromResponse(503, '');
    expect(bare.name).toBe('Unknown');
    expect(bare.Code).toBeUndefined();
    expect(bare.$fault).toBe('server');
    expect(bare.message).toBe('UnknownError');
  });

  it('decodes XML entities and reads the server time from the Date header', () => {
    const error = s3ErrorFromResponse(400, errorXml('InvalidArgument', 'Part number must be &lt; 10001 &amp; &gt; 0'), {
      date: 'Wed, 01 Jan 2025 00:00:00 GMT',
    });
    expect(error.message).toBe('Part number must be < 10001 & > 0');
    expect(error.$serverTime).toBe(Date.UTC(2025, 0, 1));
  });

  it('maps through the driver exactly as the SDK errors are mapped', () => {
    const cases: [number, string, string, string | undefined][] = [
      [404, errorXml('NoSuchBucket'), 'STORAGE_UNAVAILABLE', 'NoSuchBucket'],
      [403, errorXml('SignatureDoesNotMatch'), 'STORAGE_UNAVAILABLE', 'SignatureDoesNotMatch'],
      [403, errorXml('QuotaExceeded'), 'STORAGE_FULL', 'QuotaExceeded'],
      [400, errorXml('EntityTooLarge'), 'STORAGE_FULL', 'EntityTooLarge'],
      [503, errorXml('SlowDown'), 'STORAGE_UNAVAILABLE', 'SlowDown'],
      [404, errorXml('NoSuchUpload'), 'STORAGE_UNAVAILABLE', 'NoSuchUpload'],
      [404, '', 'NOT_FOUND', 'NotFound'],
    ];
    for (const [status, body, code, s3Error] of cases) {
      const mapped = toS3StorageError(s3ErrorFromResponse(status, body), context);
      expect({ status, code: mapped.code, s3Error: mapped.details.s3Error, httpStatus: mapped.details.httpStatus }).toEqual({
        status,
        code,
        s3Error,
        httpStatus: status,
      });
    }
    const denied = toS3StorageError(s3ErrorFromResponse(403, errorXml('SignatureDoesNotMatch')), context);
    expect(denied.message).toContain('secret access key does not match');
  });
});

describe('retryDecision and retryDelayMs', () => {
  const network = (code: string): Error => Object.assign(new Error(code), { code });

  it('retries network failures, timeouts, 5xx and throttling; throttling backs off longer', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])
      expect(retryDecision(network(code), 0, 0)).toEqual({ retry: true, baseMs: 100 });
    expect(retryDecision(Object.assign(new Error('slow'), { name: 'TimeoutError' }), 0, 0)).toEqual({ retry: true, baseMs: 100 });
    for (const status of [500, 502, 503, 504])
      expect(retryDecision(s3ErrorFromResponse(status, ''), 0, 0)).toEqual({ retry: true, baseMs: 100 });
    expect(retryDecision(s3ErrorFromResponse(503, errorXml('SlowDown')), 0, 0)).toEqual({ retry: true, baseMs: 500 });
    expect(retryDecision(s3ErrorFromResponse(429, ''), 0, 0)).toEqual({ retry: true, baseMs: 500 });
  });

  it('does not retry client errors, aborts or unknown failures', () => {
    for (const code of ['NoSuchUpload', 'NoSuchBucket', 'AccessDenied', 'InvalidArgument', 'QuotaExceeded']) {
      expect(
        retryDecision(s3ErrorFromResponse(code === 'AccessDenied' || code === 'QuotaExceeded' ? 403 : 404, errorXml(code)), 0, 0),
      ).toEqual({ retry: false });
    }
    expect(retryDecision(Object.assign(new Error('stop'), { name: 'AbortError' }), 0, 0)).toEqual({ retry: false });
    expect(retryDecision(new TypeError('bug'), 0, 0)).toEqual({ retry: false });
    expect(retryDecision('text', 0, 0)).toEqual({ retry: false });
  });

  it('retries a clock-skew error with the server clock only when the clocks really differ', () => {
    const now = Date.UTC(2025, 0, 1);
    const later = new Date(now + 20 * 60_000).toUTCString();
    const close = new Date(now + 60_000).toUTCString();
    expect(retryDecision(s3ErrorFromResponse(403, errorXml('RequestTimeTooSkewed'), { date: later }), now, 0)).toEqual({
      retry: true,
      baseMs: 0,
      clockOffsetMs: 20 * 60_000,
    });
    // A wrong secret also answers SignatureDoesNotMatch: with matching clocks it is final.
    expect(retryDecision(s3ErrorFromResponse(403, errorXml('SignatureDoesNotMatch'), { date: close }), now, 0)).toEqual({ retry: false });
    // Already corrected: the offset in use makes the clocks agree.
    expect(retryDecision(s3ErrorFromResponse(403, errorXml('RequestTimeTooSkewed'), { date: later }), now, 20 * 60_000)).toEqual({
      retry: false,
    });
    expect(retryDecision(s3ErrorFromResponse(403, errorXml('RequestTimeTooSkewed')), now, 0)).toEqual({ retry: false });
  });

  it('backs off with full jitter up to base × 2^(attempt−1), at most 20 s', () => {
    expect(retryDelayMs(100, 1, () => 0.999)).toBe(99);
    expect(retryDelayMs(100, 2, () => 0.5)).toBe(100);
    expect(retryDelayMs(500, 3, () => 1)).toBe(2000);
    expect(retryDelayMs(500, 12, () => 1)).toBe(20_000);
    expect(retryDelayMs(100, 1, () => 0)).toBe(0);
  });
});

describe('escapeS3QueryValue', () => {
  it('escapes like SigV4 canonicalisation (RFC 3986)', () => {
    expect(escapeS3QueryValue("2~a b/c+d=e&f!'()*")).toBe('2~a%20b%2Fc%2Bd%3De%26f%21%27%28%29%2A');
    expect(escapeS3QueryValue('abc-_.~')).toBe('abc-_.~');
  });
});

describe('createS3PartUploader', () => {
  const body = Buffer.from('part bytes');
  const ok: PartHttpResponse = { status: 200, headers: { etag: '"etag-1"' }, body: '' };

  it('signs one PUT to the target with the payload sha256 and sends the signed headers', async () => {
    const { transport, requests } = scripted([ok]);
    const { signer, calls } = recordingSigner();
    const uploader = createS3PartUploader({ signer, clock: clock(1500), transport });
    const before = Date.now();
    await expect(uploader.uploadPart(target, '2~up/id+1', 7, body, new AbortController().signal)).resolves.toBe('"etag-1"');
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.request).toEqual({
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 7480,
      path: '/images/dir/a%20b.qcow2',
      query: { partNumber: '7', uploadId: '2~up/id+1' },
      headers: {
        host: '127.0.0.1:7480',
        'content-length': String(body.length),
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
      },
    });
    expect(call.signingRegion).toBe('us-east-1');
    expect(call.signingService).toBe('s3');
    // The client's clock offset is applied.
    expect(call.signingDate.getTime()).toBeGreaterThanOrEqual(before + 1500);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.request).toEqual({
      protocol: 'http:',
      host: '127.0.0.1',
      port: 7480,
      path: '/images/dir/a%20b.qcow2?partNumber=7&uploadId=2~up%2Fid%2B1',
      headers: { ...call.request.headers, authorization: 'AWS4-HMAC-SHA256 signed-1' },
    });
    expect(requests[0]!.body).toBe(body);
  });

  it('connects to an IPv6 host without brackets but signs the host header with them; no port means the default', async () => {
    const { transport, requests } = scripted([ok]);
    const { signer, calls } = recordingSigner();
    const uploader = createS3PartUploader({ signer, clock: clock(), transport });
    await uploader.uploadPart(
      { ...target, protocol: 'https:', hostname: '[::1]', port: undefined },
      'id',
      1,
      body,
      new AbortController().signal,
    );
    expect(calls[0]!.request.headers.host).toBe('[::1]');
    expect(calls[0]!.request).not.toHaveProperty('port');
    expect(requests[0]!.request).toMatchObject({ protocol: 'https:', host: '::1', port: undefined });
  });

  it('returns an empty ETag when the answer has none (the driver rejects it)', async () => {
    const { transport } = scripted([{ status: 200, headers: {}, body: '' }]);
    const uploader = createS3PartUploader({ signer: recordingSigner().signer, clock: clock(), transport });
    await expect(uploader.uploadPart(target, 'id', 1, body, new AbortController().signal)).resolves.toBe('');
  });

  it('retries a 503 and a reset connection, signing each attempt anew, then succeeds', async () => {
    const { transport, requests } = scripted([
      { status: 503, headers: {}, body: errorXml('ServiceUnavailable') },
      Object.assign(new Error('reset'), { code: 'ECONNRESET' }),
      ok,
    ]);
    const { signer, calls } = recordingSigner();
    const sleeps: number[] = [];
    const uploader = createS3PartUploader({ signer, clock: clock(), transport, sleep: async (ms) => void sleeps.push(ms) });
    await expect(uploader.uploadPart(target, 'id', 2, body, new AbortController().signal)).resolves.toBe('"etag-1"');
    expect(requests).toHaveLength(3);
    expect(calls).toHaveLength(3);
    expect(requests.map((r) => r.request.headers.authorization)).toEqual([
      'AWS4-HMAC-SHA256 signed-1',
      'AWS4-HMAC-SHA256 signed-2',
      'AWS4-HMAC-SHA256 signed-3',
    ]);
    expect(sleeps.every((ms) => ms >= 0 && ms < 20_000)).toBe(true);
  });

  it('gives up after maxAttempts with the last failure', async () => {
    const { transport, requests } = scripted([
      { status: 500, headers: {}, body: '' },
      { status: 502, headers: {}, body: '' },
      { status: 503, headers: {}, body: errorXml('SlowDown') },
      ok,
    ]);
    const uploader = createS3PartUploader({ signer: recordingSigner().signer, clock: clock(), transport, sleep: noSleep });
    const failure = await uploader.uploadPart(target, 'id', 1, body, new AbortController().signal).catch((error: unknown) => error);
    expect(requests).toHaveLength(3);
    expect(failure).toMatchObject({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
    expect(toS3StorageError(failure, context).code).toBe('STORAGE_UNAVAILABLE');
  });

  it('does not retry NoSuchUpload', async () => {
    const { transport, requests } = scripted([{ status: 404, headers: {}, body: errorXml('NoSuchUpload') }, ok]);
    const uploader = createS3PartUploader({ signer: recordingSigner().signer, clock: clock(), transport, sleep: noSleep });
    await expect(uploader.uploadPart(target, 'id', 1, body, new AbortController().signal)).rejects.toMatchObject({
      name: 'NoSuchUpload',
      Code: 'NoSuchUpload',
    });
    expect(requests).toHaveLength(1);
  });

  it('corrects the shared clock on RequestTimeTooSkewed and signs the retry with the server time', async () => {
    const serverTime = Date.now() + 60 * 60_000;
    const skewed: PartHttpResponse = {
      status: 403,
      headers: { date: new Date(serverTime).toUTCString() },
      body: errorXml('RequestTimeTooSkewed'),
    };
    const { transport } = scripted([skewed, ok]);
    const { signer, calls } = recordingSigner();
    const shared = clock();
    const uploader = createS3PartUploader({ signer, clock: shared, transport, sleep: noSleep });
    await expect(uploader.uploadPart(target, 'id', 1, body, new AbortController().signal)).resolves.toBe('"etag-1"');
    expect(Math.abs(shared.value - 60 * 60_000)).toBeLessThan(5_000);
    expect(Math.abs(calls[1]!.signingDate.getTime() - serverTime)).toBeLessThan(5_000);
  });

  it('stops without sending when already aborted, and an abort during the backoff ends the wait', async () => {
    const { transport, requests } = scripted([ok]);
    const uploader = createS3PartUploader({ signer: recordingSigner().signer, clock: clock(), transport });
    const aborted = new AbortController();
    aborted.abort();
    await expect(uploader.uploadPart(target, 'id', 1, body, aborted.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(requests).toHaveLength(0);

    const failing = scripted([{ status: 503, headers: {}, body: '' }, ok]);
    const controller = new AbortController();
    let waited: number | undefined;
    const slow = createS3PartUploader({
      signer: recordingSigner().signer,
      clock: clock(),
      transport: failing.transport,
      // A backoff that lasts until the abort, which comes once the backoff has begun (no timing guess).
      sleep: (ms, signal) => {
        waited = ms;
        const sleeping = abortableSleep(60_000, signal);
        queueMicrotask(() => controller.abort());
        return sleeping;
      },
      maxAttempts: 3,
    });
    // The backoff is a random delay that can come out as 0 ms, which is not slept (about 1 run in
    // 100 with a 100 ms base): a fixed draw keeps the sleep, and so the abort, in every run.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const failure = await slow
      .uploadPart(target, 'id', 1, body, controller.signal)
      .catch((error: unknown) => error)
      .finally(() => random.mockRestore());
    expect(waited).toBeDefined();
    expect(failure).toMatchObject({ name: 'AbortError' });
    expect(failing.requests).toHaveLength(1);
    expect(toS3StorageError(failure, context).code).toBe('CANCELLED');
  });

  it('abortableSleep waits the time, or rejects at once on abort', async () => {
    await expect(abortableSleep(5, new AbortController().signal)).resolves.toBeUndefined();
    const controller = new AbortController();
    const pending = abortableSleep(60_000, controller.signal);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expect(abortableSleep(60_000, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('reports an abort as AbortError even when the transport failed with something else', async () => {
    const controller = new AbortController();
    const transport = async (): Promise<PartHttpResponse> => {
      controller.abort();
      // A final error (not retried): only the abort check can turn it into AbortError.
      throw s3ErrorFromResponse(403, errorXml('AccessDenied'));
    };
    const uploader = createS3PartUploader({ signer: recordingSigner().signer, clock: clock(), transport, sleep: noSleep });
    await expect(uploader.uploadPart(target, 'id', 1, body, controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });
});
