/**
 * Presigned GET URLs (AWS Signature Version 4, query-string authentication), for exports: anyone
 * holding the URL may GET the object (Range works) until it expires, and nothing else. The
 * credentials are the client's own (static keys, session token, or the SDK's default chain) and
 * its clock offset is applied; the payload is `UNSIGNED-PAYLOAD`, as S3 expects for presigned
 * requests. Built here instead of with `@aws-sdk/s3-request-presigner`, which is not a dependency.
 * @module
 */
import { createHash, createHmac } from 'node:crypto';
import type { PresignGetOptions } from '../../../src/ports/storage-driver';
import { InstanceImagesError } from '../../../src/errors';
import { s3ObjectKey, type S3StorageOptions } from './options';
import type { S3Session } from './session';

/** RFC 3986 encoding, as SigV4 canonicalizes (unreserved characters only stay as they are). */
export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The object URL's origin and escaped path: path-style or virtual-hosted, custom endpoint or AWS. */
export function s3ObjectUrl(options: S3StorageOptions, objectKey: string): { protocol: string; host: string; path: string } {
  const escapedKey = objectKey.split('/').map(rfc3986).join('/');
  if (options.endpoint === undefined)
    return { protocol: 'https:', host: `${options.bucket}.s3.${options.region}.amazonaws.com`, path: `/${escapedKey}` };
  const endpoint = new URL(options.endpoint);
  if (options.forcePathStyle) return { protocol: endpoint.protocol, host: endpoint.host, path: `/${options.bucket}/${escapedKey}` };
  return { protocol: endpoint.protocol, host: `${options.bucket}.${endpoint.host}`, path: `/${escapedKey}` };
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** The SigV4 query-string signature of a GET of `url`. */
export function presignS3Url(input: {
  url: { protocol: string; host: string; path: string };
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined };
  now: Date;
  expiresInSeconds: number;
  query?: Record<string, string>;
}): string {
  const amzDate = input.now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/s3/aws4_request`;
  const params: Record<string, string> = {
    ...input.query,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${input.credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(input.expiresInSeconds),
    'X-Amz-SignedHeaders': 'host',
    ...(input.credentials.sessionToken ? { 'X-Amz-Security-Token': input.credentials.sessionToken } : {}),
  };
  const canonicalQuery = Object.entries(params)
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const canonicalRequest = ['GET', input.url.path, canonicalQuery, `host:${input.url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${input.credentials.secretAccessKey}`, date), input.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return `${input.url.protocol}//${input.url.host}${input.url.path}?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

/** The Content-Disposition a presigned download answers with (S3's `response-content-disposition`). */
function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${rfc3986(filename)}`;
}

/** The driver's `presignGet`. @throws VALIDATION_FAILED for a lifetime outside 1 s – 7 days; STORAGE_UNAVAILABLE. */
export async function presignS3Get(
  session: S3Session,
  options: S3StorageOptions,
  key: string,
  request: PresignGetOptions,
): Promise<string> {
  if (!Number.isInteger(request.expiresInSeconds) || request.expiresInSeconds < 1 || request.expiresInSeconds > 604_800)
    throw new InstanceImagesError('VALIDATION_FAILED', 'A presigned URL lives from 1 second to 7 days', {
      fields: [{ path: 'expiresInSeconds', message: 'must be an integer from 1 to 604800' }],
    });
  return session.call(session.errorContext('presign a download of'), async (rt) => {
    const credentials = await rt.client.config.credentials();
    return presignS3Url({
      url: s3ObjectUrl(options, s3ObjectKey(session.prefix, key)),
      region: options.region,
      credentials,
      now: new Date(Date.now() + (rt.client.config.systemClockOffset ?? 0)),
      expiresInSeconds: request.expiresInSeconds,
      query: { 'response-content-disposition': attachment(request.filename) },
    });
  });
}
