import { describe, expect, it } from 'vitest';
import { isS3NoSuchUpload, isS3NotFound, redactSecrets, toS3StorageError, type S3ErrorContext } from '../../../drivers/storage/s3/errors';
import { InstanceImagesError } from '../../../src/errors';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
const context: S3ErrorContext = { action: 'upload "a/b.qcow2"', bucket: 'images', endpoint: 'http://127.0.0.1:7480', secrets: [SECRET] };

/** An error shaped like the AWS SDK's S3ServiceException. */
function serviceError(name: string, status: number, message = 'UnknownError'): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

/** An error shaped like a Node socket error. */
function systemError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:7480`), { code });
}

function expectClean(error: InstanceImagesError): void {
  expect(error.message).not.toContain(SECRET);
  expect(JSON.stringify(error)).not.toContain(SECRET);
}

describe('toS3StorageError', () => {
  it.each([
    ['NoSuchKey', 404, 'NOT_FOUND'],
    ['NotFound', 404, 'NOT_FOUND'],
    ['NoSuchBucket', 404, 'STORAGE_UNAVAILABLE'],
    ['SignatureDoesNotMatch', 403, 'STORAGE_UNAVAILABLE'],
    ['InvalidAccessKeyId', 403, 'STORAGE_UNAVAILABLE'],
    ['AccessDenied', 403, 'STORAGE_UNAVAILABLE'],
    ['QuotaExceeded', 403, 'STORAGE_FULL'],
    ['InternalError', 500, 'STORAGE_UNAVAILABLE'],
    ['ServiceUnavailable', 503, 'STORAGE_UNAVAILABLE'],
    ['SlowDown', 503, 'STORAGE_UNAVAILABLE'],
  ])('maps %s (HTTP %i) to %s', (name, status, code) => {
    const cause = serviceError(name, status);
    const error = toS3StorageError(cause, context);
    expect(error.code).toBe(code);
    expect(error.cause).toBe(cause);
    expect(error.details).toMatchObject({ driver: 's3', bucket: 'images', s3Error: name, httpStatus: status });
    expectClean(error);
  });

  it('tells the operator what to fix for bad credentials and a missing bucket', () => {
    expect(toS3StorageError(serviceError('SignatureDoesNotMatch', 403), context).message).toMatch(
      /secret access key does not match.*accessKeyId and secretAccessKey/,
    );
    expect(toS3StorageError(serviceError('NoSuchBucket', 404), context).message).toMatch(
      /bucket "images" does not exist at http:\/\/127\.0\.0\.1:7480/,
    );
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'])(
    'maps the network error %s to STORAGE_UNAVAILABLE',
    (code) => {
      const error = toS3StorageError(systemError(code), context);
      expect(error.code).toBe('STORAGE_UNAVAILABLE');
      expect(error.message).toContain(code);
      expect(error.message).toContain('http://127.0.0.1:7480');
      expect(error.details.networkError).toBe(code);
    },
  );

  it('finds a network error in the cause chain and in AggregateErrors', () => {
    const wrapped = new Error('request failed', { cause: new AggregateError([new Error('x'), systemError('ECONNREFUSED')]) });
    expect(toS3StorageError(wrapped, context).details.networkError).toBe('ECONNREFUSED');
    expect(toS3StorageError(Object.assign(new Error('t'), { name: 'TimeoutError' }), context).code).toBe('STORAGE_UNAVAILABLE');
  });

  it('maps aborts, and anything once the signal is aborted, to CANCELLED', () => {
    expect(toS3StorageError(Object.assign(new Error('Upload aborted.'), { name: 'AbortError' }), context).code).toBe('CANCELLED');
    expect(toS3StorageError(systemError('ECONNRESET'), { ...context, signal: AbortSignal.abort() }).code).toBe('CANCELLED');
  });

  it('passes InstanceImagesErrors through unchanged', () => {
    const original = new InstanceImagesError('HYPERVISOR_UNREACHABLE', 'ssh dropped');
    expect(toS3StorageError(original, context)).toBe(original);
  });

  it('keeps other errors as STORAGE_UNAVAILABLE with their message, redacting secrets', () => {
    const error = toS3StorageError(new Error(`Exceeded 10000 parts; key ${SECRET}`), context);
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toContain('Exceeded 10000 parts');
    expectClean(error);
    expect(error.message).toContain('***');
  });

  it('redacts a secret that slipped into the key name', () => {
    const error = toS3StorageError(serviceError('InternalError', 500), { ...context, action: `upload "${SECRET}.qcow2"` });
    expectClean(error);
  });
});

describe('error predicates', () => {
  it('recognize missing objects and uploads', () => {
    expect(isS3NotFound(serviceError('NoSuchKey', 404))).toBe(true);
    expect(isS3NotFound(serviceError('NotFound', 404))).toBe(true);
    expect(isS3NotFound(serviceError('NoSuchBucket', 404))).toBe(false);
    expect(isS3NotFound(serviceError('AccessDenied', 403))).toBe(false);
    expect(isS3NoSuchUpload(serviceError('NoSuchUpload', 404))).toBe(true);
    expect(isS3NoSuchUpload(serviceError('NoSuchKey', 404))).toBe(false);
  });

  it('redactSecrets replaces every occurrence and ignores empty secrets', () => {
    expect(redactSecrets('a SECRET b SECRET', ['SECRET', ''])).toBe('a *** b ***');
  });

  it('redactSecrets masks whole values only: a short secret leaves the words that contain it alone', () => {
    expect(redactSecrets('S3 bucket "images" at http://s3.example: S', ['S'])).toBe('S3 bucket "images" at http://s3.example: ***');
    expect(redactSecrets("Check the storage's accessKeyId and secretAccessKey", ['AccessKey'])).toBe(
      "Check the storage's accessKeyId and secretAccessKey",
    );
    expect(redactSecrets('key="hunter22", key=hunter22&x, (hunter22)', ['hunter22'])).toBe('key="***", key=***&x, (***)');
    expect(redactSecrets('hunter222 xhunter22', ['hunter22'])).toBe('hunter222 xhunter22');
  });

  it('redactSecrets masks a long secret wherever it occurs, also URL-encoded and inside a longer one', () => {
    expect(redactSecrets(`token=${SECRET}x and ${SECRET}`, [SECRET])).toBe('token=***x and ***');
    const slashed = 'abc/def+ghi=jkl/mnopqrst';
    expect(redactSecrets(`GET /?X-Amz-Security-Token=${encodeURIComponent(slashed)}`, [slashed])).toBe('GET /?X-Amz-Security-Token=***');
    expect(redactSecrets(`${SECRET}-2 and the other`, [SECRET, `${SECRET}-2`])).toBe('*** and the other');
  });

  it('an S3 message keeps its words when a (short) secret is a letter of them', () => {
    const error = toS3StorageError(serviceError('InternalError', 500), { ...context, secrets: ['S', '3'] });
    expect(error.message).toBe(
      'Could not upload "a/b.qcow2": S3 bucket "images" at http://127.0.0.1:7480 answered HTTP 500 (InternalError). The S3 service is failing; try again later.',
    );
  });
});
