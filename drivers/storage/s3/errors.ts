/**
 * Maps AWS SDK and network errors to {@link InstanceImagesError}s with stable codes and messages
 * an operator can act on. Messages never contain credentials: they are built only from the error's
 * code/status, the bucket, the endpoint origin and the key, and are redacted once more at the end.
 * @module
 */
import { InstanceImagesError, type ErrorCode } from '../../../src/errors';
import { formatTimeout, s3TimeoutOf, type S3Timeouts } from './timeouts';

/** What was being done, for the message and the redaction of secrets. */
export interface S3ErrorContext {
  /** A short phrase, e.g. `upload "images/a.qcow2"`. */
  action: string;
  /** The bucket name. */
  bucket: string;
  /** A printable endpoint (origin only, never credentials), e.g. `http://127.0.0.1:7480` or `AWS S3 (eu-west-1)`. */
  endpoint: string;
  /** Values that must never appear in a message (secret key, session token). */
  secrets: readonly string[];
  /** When the operation was cancelled through this signal, the error is CANCELLED. */
  signal?: AbortSignal;
  /** The storage's timeouts, for the message of a request that reached one (when its error does not say). */
  timeouts?: S3Timeouts;
}

/** Network error codes that mean "the endpoint is not reachable right now". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** S3 error names that mean the credentials or permissions are wrong. */
const AUTH_NAMES = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AccessDenied',
  'Forbidden',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'CredentialsProviderError',
]);

/** S3 error names that mean "out of space/quota". */
const FULL_NAMES = new Set(['QuotaExceeded', 'EntityTooLarge']);

/** The fields of an AWS SDK service error (or a Node system error) that the mapping reads. */
interface ErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  cause?: unknown;
}

function shapeOf(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
}

/** The S3 error name (`NoSuchKey`, `SignatureDoesNotMatch`, ...) or `undefined`. */
export function s3ErrorName(error: unknown): string | undefined {
  const shape = shapeOf(error);
  if (typeof shape.Code === 'string') return shape.Code;
  if (typeof shape.name === 'string' && shape.name !== 'Error') return shape.name;
  return undefined;
}

/** The HTTP status of an S3 service error, or `undefined` for network errors. */
export function s3HttpStatus(error: unknown): number | undefined {
  const status = shapeOf(error).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The Node/undici network error code of `error` or of one of its causes. */
function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    const shape = shapeOf(current);
    if (typeof shape.code === 'string' && NETWORK_CODES.has(shape.code)) return shape.code;
    if (current instanceof AggregateError) {
      for (const inner of current.errors) {
        const code = networkCode(inner);
        if (code !== undefined) return code;
      }
    }
    current = shape.cause;
  }
  return undefined;
}

/** True when the error (or a cause) says the request was aborted. */
function isAbort(error: unknown): boolean {
  const name = shapeOf(error).name;
  return name === 'AbortError' || name === 'RequestAbortedError';
}

/** True when an S3 error means the object/upload is missing. */
export function isS3NotFound(error: unknown): boolean {
  const name = s3ErrorName(error);
  return name === 'NoSuchKey' || name === 'NotFound' || (s3HttpStatus(error) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload');
}

/** True when an S3 error means the multipart upload does not exist (already completed or aborted). */
export function isS3NoSuchUpload(error: unknown): boolean {
  return s3ErrorName(error) === 'NoSuchUpload';
}

/** What a masked secret is replaced with in a message. */
const MASK = '***';

/**
 * A secret at least this long cannot occur by chance inside unrelated text, so every occurrence
 * is masked, even one glued to other characters (`token=SECRETx`).
 */
const MASK_ANYWHERE_LENGTH = 16;

/** Letters and digits: the characters that glue an occurrence into a longer word. */
const WORD_CHARACTER = /[\p{L}\p{N}]/u;

function gluedTo(neighbour: string | undefined, edge: string | undefined): boolean {
  return neighbour !== undefined && edge !== undefined && WORD_CHARACTER.test(neighbour) && WORD_CHARACTER.test(edge);
}

/** Masks the occurrences of one secret in `text` (see {@link redactSecrets} for which ones). */
function maskSecret(text: string, secret: string): string {
  const anywhere = secret.length >= MASK_ANYWHERE_LENGTH;
  let out = '';
  let from = 0;
  for (let at = text.indexOf(secret); at >= 0; at = text.indexOf(secret, at + 1)) {
    if (at < from) continue;
    const end = at + secret.length;
    const wholeWord = !gluedTo(text[at - 1], secret[0]) && !gluedTo(text[end], secret[secret.length - 1]);
    if (!anywhere && !wholeWord) continue;
    out += text.slice(from, at) + MASK;
    from = end;
  }
  return out + text.slice(from);
}

/**
 * Replaces the secrets in `text` by `***`: whole values only, so that unrelated text is never
 * mangled (a secret `"S"` leaves "S3" alone). A secret of 16 or more characters is masked wherever
 * it occurs; a shorter one where it stands as a whole word (not glued to a letter or digit on a
 * side where the secret itself starts or ends with one). Each secret is also masked in its
 * URL-encoded form. The config schema refuses secrets shorter than 8 characters, so a very short
 * secret only reaches this function from a caller's own context.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    variants.add(secret);
    variants.add(encodeURIComponent(secret));
  }
  // Longest first: a secret that contains another is masked as a whole.
  let result = text;
  for (const secret of [...variants].sort((a, b) => b.length - a.length)) result = maskSecret(result, secret);
  return result;
}

function make(
  code: ErrorCode,
  message: string,
  context: S3ErrorContext,
  cause: unknown,
  details: Record<string, unknown>,
): InstanceImagesError {
  return new InstanceImagesError(code, redactSecrets(message, context.secrets), {
    cause,
    details: { driver: 's3', bucket: context.bucket, ...details },
  });
}

/**
 * STORAGE_UNAVAILABLE for a request that reached a timeout: which endpoint did not answer in how
 * long, and what to check.
 */
function timeoutError(
  kind: 'connect' | 'no-progress',
  ms: number | undefined,
  context: S3ErrorContext,
  cause: unknown,
): InstanceImagesError {
  const limit = ms ?? (kind === 'connect' ? context.timeouts?.connectionMs : context.timeouts?.noProgressMs);
  const within = limit === undefined ? '' : ` within ${formatTimeout(limit)}`;
  const message =
    kind === 'connect'
      ? `Could not ${context.action}: no connection to ${context.endpoint} (S3 bucket "${context.bucket}")${within}. ` +
        "Check that the S3 service is running and reachable from this machine (endpoint, firewall, network); the limit is the storage's connectionTimeoutMs."
      : `Could not ${context.action}: S3 bucket "${context.bucket}" at ${context.endpoint} did not answer${limit === undefined ? '' : ` for ${formatTimeout(limit)}`} ` +
        '(no answer and no data moved). Check that the S3 service is running and not stuck (radosgw stopped or hung), ' +
        'that the storage cluster is not full (a full Ceph cluster blocks writes without answering: see `ceph health`), ' +
        "and the network to it; the limit is the storage's noProgressTimeoutMs.";
  return make('STORAGE_UNAVAILABLE', message, context, cause, { timeout: kind, timeoutMs: limit });
}

/**
 * Converts anything thrown by the SDK, the network or the body stream into an
 * {@link InstanceImagesError}. An {@link InstanceImagesError} (e.g. from the body stream) passes
 * through unchanged.
 */
export function toS3StorageError(error: unknown, context: S3ErrorContext): InstanceImagesError {
  if (error instanceof InstanceImagesError) return error;
  const where = `S3 bucket "${context.bucket}" at ${context.endpoint}`;
  if (context.signal?.aborted || isAbort(error)) {
    return make('CANCELLED', `Cancelled: ${context.action} in ${where}`, context, error, {});
  }
  const name = s3ErrorName(error);
  const status = s3HttpStatus(error);
  const details = { s3Error: name, httpStatus: status };
  if (name === 'NoSuchKey' || (name === 'NotFound' && status === 404)) {
    return make('NOT_FOUND', `Could not ${context.action}: the object does not exist in ${where}`, context, error, details);
  }
  if (name === 'NoSuchBucket') {
    return make(
      'STORAGE_UNAVAILABLE',
      `Could not ${context.action}: the bucket "${context.bucket}" does not exist at ${context.endpoint}. Create it, or fix the storage's bucket name.`,
      context,
      error,
      details,
    );
  }
  if (name === 'XAmzContentSHA256Mismatch' || name === 'BadDigest') {
    return make(
      'CHECKSUM_MISMATCH',
      `Could not ${context.action}: ${where} received bytes that do not hash to the digest sent with them (${name}); nothing was stored`,
      context,
      error,
      details,
    );
  }
  // Before the 403 check: radosgw answers QuotaExceeded with HTTP 403.
  if (name !== undefined && FULL_NAMES.has(name)) {
    return make(
      'STORAGE_FULL',
      `Could not ${context.action}: ${where} refused the data (${name}). Raise the bucket/user quota or free space.`,
      context,
      error,
      details,
    );
  }
  if ((name !== undefined && AUTH_NAMES.has(name)) || status === 403) {
    const reason =
      name === 'SignatureDoesNotMatch'
        ? 'the secret access key does not match the access key id'
        : name === 'InvalidAccessKeyId'
          ? 'the access key id is unknown'
          : `access was denied (${name ?? 'HTTP 403'})`;
    return make(
      'STORAGE_UNAVAILABLE',
      `Could not ${context.action}: ${where} rejected the credentials: ${reason}. Check the storage's accessKeyId and secretAccessKey and the bucket's permissions.`,
      context,
      error,
      details,
    );
  }
  const timeout = s3TimeoutOf(error);
  if (timeout !== undefined) return timeoutError(timeout.kind, timeout.ms, context, error);
  const network = networkCode(error);
  if (network !== undefined || name === 'TimeoutError') {
    return make(
      'STORAGE_UNAVAILABLE',
      `Could not ${context.action}: ${context.endpoint} is not reachable (${network ?? name}). Check that the S3 service is running and the endpoint is right.`,
      context,
      error,
      { ...details, networkError: network ?? name },
    );
  }
  if (status !== undefined && status >= 500) {
    return make(
      'STORAGE_UNAVAILABLE',
      `Could not ${context.action}: ${where} answered HTTP ${status}${name ? ` (${name})` : ''}. The S3 service is failing; try again later.`,
      context,
      error,
      details,
    );
  }
  // Not an S3 answer: an SDK error whose message says what went wrong (these never hold credentials).
  const text = error instanceof Error ? error.message.slice(0, 300) : String(error).slice(0, 300);
  const what = name !== undefined || status !== undefined ? `${name ?? ''}${status !== undefined ? ` (HTTP ${status})` : ''}`.trim() : text;
  return make('STORAGE_UNAVAILABLE', `Could not ${context.action} in ${where}: ${what}`, context, error, details);
}
