/**
 * Options of the S3 storage driver: the zod schema, its type and the helpers that derive the
 * object keys and multipart part sizes. Importable without loading the AWS SDK.
 * @module
 */
import { z } from 'zod';

/** 1 MiB. */
const MiB = 1024 * 1024;

/** S3's smallest allowed multipart part (except the last one). */
export const S3_MIN_PART_SIZE = 5 * MiB;

/** The part size used when the object size is unknown, and the floor for known sizes. */
export const S3_DEFAULT_PART_SIZE = 8 * MiB;

/** S3's largest allowed multipart part. */
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;

/** S3 allows 10,000 parts; sizing for 9,000 keeps a margin for a size that grows slightly. */
export const S3_TARGET_MAX_PARTS = 9000;

/** How many parts are uploaded at once by default. */
export const S3_DEFAULT_QUEUE_SIZE = 4;

/** How long a TCP (and TLS) connection to the endpoint may take by default. */
export const S3_DEFAULT_CONNECTION_TIMEOUT_MS = 10_000;

/**
 * How long a request may make no progress by default (no answer, and no byte sent or received)
 * before it fails. It measures silence, not duration: a 16 MiB part on a slow link that keeps
 * moving bytes is never cut, a server that stopped answering is given up on after a minute.
 */
export const S3_DEFAULT_NO_PROGRESS_TIMEOUT_MS = 60_000;

/** The shortest timeout accepted: below a second, a busy but healthy service would be declared dead. */
const MIN_TIMEOUT_MS = 1000;

/** Characters a prefix must not contain: C0 controls and DEL. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/**
 * Normalizes a key prefix: trims slashes at both ends and collapses repeated slashes, so
 * `"/images//custom/"` becomes `"images/custom"`. An empty result means "the bucket root".
 */
export function normalizeS3Prefix(prefix: string | undefined): string {
  if (prefix === undefined) return '';
  return prefix
    .split('/')
    .filter((segment) => segment !== '')
    .join('/');
}

const prefixSchema = z
  .string()
  .max(512, 'must be at most 512 characters')
  .refine((value) => !CONTROL_CHARACTERS.test(value), 'must not contain control characters')
  .refine((value) => !value.split('/').some((segment) => segment === '.' || segment === '..'), 'must not contain "." or ".." segments')
  .transform(normalizeS3Prefix);

/** The shortest secret accepted: a shorter one could not be told apart from ordinary words in messages. */
export const S3_SECRET_MIN_LENGTH = 8;

/** Printable ASCII without spaces: what an HTTP header (access key id, session token) can carry verbatim. */
const HEADER_TOKEN = /^[\x21-\x7e]+$/;

/** A region name: letters, digits, dots, hyphens and underscores, starting and ending with a letter or digit. */
const REGION = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** C0 and C1 controls and DEL: never part of a real secret, and unprintable in any message about it. */
// eslint-disable-next-line no-control-regex
const SECRET_CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

const noControlCharacters = (value: string): boolean => !SECRET_CONTROL_CHARACTERS.test(value);

/** The parts of an endpoint URL that are refused, or none when it does not parse (the URL check says so). */
function endpointParts(value: string): { credentials: boolean; queryOrFragment: boolean } {
  if (!URL.canParse(value)) return { credentials: false, queryOrFragment: false };
  const url = new URL(value);
  return { credentials: url.username !== '' || url.password !== '', queryOrFragment: url.search !== '' || url.hash !== '' };
}

/** The endpoint: an http(s) URL without credentials, query or fragment. */
const endpointSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .refine(
    (value) => !endpointParts(value).credentials,
    'must not contain a user name or password (give accessKeyId and secretAccessKey instead)',
  )
  .refine((value) => !endpointParts(value).queryOrFragment, 'must not have a query (?...) or a fragment (#...)');

/** The configuration of an `s3` image storage. Unknown keys are refused (a typo must not pass silently). */
export const S3StorageOptionsSchema = z
  .strictObject({
    /**
     * The S3 endpoint URL, e.g. `http://127.0.0.1:7480` for Ceph radosgw or MinIO.
     * Omit it for AWS S3 itself (the endpoint follows from `region`).
     */
    endpoint: endpointSchema.optional(),
    /** The region used for signing, e.g. `eu-west-1` (radosgw: its zonegroup, often `default`). @default "us-east-1" */
    region: z
      .string()
      .min(1)
      .max(64, 'must be at most 64 characters')
      .regex(REGION, 'must be a region name: letters, digits, dots, hyphens and underscores, e.g. "eu-west-1"')
      .default('us-east-1'),
    /** The bucket that holds the images; it must already exist. */
    bucket: z
      .string()
      .min(3, 'must be at least 3 characters')
      .max(63, 'must be at most 63 characters')
      .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'must be a valid bucket name: lowercase letters, digits, dots and hyphens'),
    /** Keys live under this prefix (normalized: no leading/trailing/double slashes). @default "" */
    prefix: prefixSchema.optional().default(''),
    /** The access key id. Omit both keys to use the SDK's default credential chain (IAM role, env). */
    accessKeyId: z.string().min(1).max(256).regex(HEADER_TOKEN, 'must be printable ASCII without spaces').optional(),
    /**
     * The secret access key (a secret: masked when the storage is returned, never logged), at
     * least 8 characters.
     */
    secretAccessKey: z
      .string()
      .min(S3_SECRET_MIN_LENGTH, `must be at least ${S3_SECRET_MIN_LENGTH} characters`)
      .max(256)
      .refine(noControlCharacters, 'must not contain control characters')
      .optional(),
    /** A session token for temporary credentials (a secret), at least 8 characters. */
    sessionToken: z
      .string()
      .min(S3_SECRET_MIN_LENGTH, `must be at least ${S3_SECRET_MIN_LENGTH} characters`)
      .max(4096)
      .regex(HEADER_TOKEN, 'must be printable ASCII without spaces')
      .optional(),
    /** Path-style addressing (`endpoint/bucket/key`): needed by radosgw/MinIO on an IP or localhost. @default false */
    forcePathStyle: z.boolean().default(false),
    /**
     * The multipart part size in bytes when the object size is unknown, and the minimum when it is
     * known (larger objects get larger parts to stay under S3's 10,000-part limit). At most
     * `queueSize` parts are held in memory at once. @default 8 MiB
     */
    partSizeBytes: z
      .number()
      .int()
      .min(S3_MIN_PART_SIZE, `must be at least ${S3_MIN_PART_SIZE} bytes (5 MiB)`)
      .max(S3_MAX_PART_SIZE, `must be at most ${S3_MAX_PART_SIZE} bytes (5 GiB)`)
      .optional(),
    /** How many parts are uploaded concurrently. @default 4 */
    queueSize: z.number().int().min(1).max(32).optional(),
    /**
     * How long connecting to the endpoint (TCP, and TLS for https) may take, in ms, before the
     * request fails with `STORAGE_UNAVAILABLE`. @default 10000
     */
    connectionTimeoutMs: z
      .number()
      .int()
      .min(MIN_TIMEOUT_MS, `must be at least ${MIN_TIMEOUT_MS} ms`)
      .max(300_000, 'must be at most 300000 ms (5 minutes)')
      .optional(),
    /**
     * How long one request may make no progress, in ms: no answer from the service and no byte of
     * the request or of the answer moved. The request then fails with `STORAGE_UNAVAILABLE` and is
     * not retried (a service that is stopped, hung, or a Ceph cluster that is full and blocks
     * writes, accepts the connection but never answers). It measures silence, not duration, so a
     * large part on a slow link is not cut while its bytes move; a reader that stops reading a
     * download for longer also ends it. @default 60000
     */
    noProgressTimeoutMs: z
      .number()
      .int()
      .min(MIN_TIMEOUT_MS, `must be at least ${MIN_TIMEOUT_MS} ms`)
      .max(3_600_000, 'must be at most 3600000 ms (1 hour)')
      .optional(),
  })
  .superRefine((value, context) => {
    if ((value.accessKeyId === undefined) !== (value.secretAccessKey === undefined)) {
      const path = value.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey';
      context.addIssue({ code: 'custom', path: [path], message: 'accessKeyId and secretAccessKey must be given together' });
    }
    if (value.sessionToken !== undefined && value.accessKeyId === undefined) {
      context.addIssue({ code: 'custom', path: ['sessionToken'], message: 'needs accessKeyId and secretAccessKey' });
    }
  });

/** The validated configuration of an `s3` image storage. */
export type S3StorageOptions = z.output<typeof S3StorageOptionsSchema>;

/** The configuration as a host writes it (defaults not yet applied). */
export type S3StorageOptionsInput = z.input<typeof S3StorageOptionsSchema>;

/** Config fields that are secrets. */
export const S3_SECRET_FIELDS = ['secretAccessKey', 'sessionToken'] as const;

/**
 * The part size for an upload: `base` when the size is unknown; otherwise at least `base` and at
 * least `size / 9000` rounded up to a whole MiB, so that an object of any size S3 accepts (5 TiB)
 * stays under the 10,000-part limit.
 */
export function s3PartSize(size: number | undefined, base: number = S3_DEFAULT_PART_SIZE): number {
  if (size === undefined || !Number.isFinite(size) || size <= 0) return base;
  const needed = Math.ceil(Math.ceil(size / S3_TARGET_MAX_PARTS) / MiB) * MiB;
  return Math.min(S3_MAX_PART_SIZE, Math.max(base, needed));
}

/** The full object key of a driver key under a normalized prefix. */
export function s3ObjectKey(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}/${key}`;
}

/** The prefix under which every key of the storage lives (`""` or `"prefix/"`). */
export function s3KeyPrefix(prefix: string): string {
  return prefix === '' ? '' : `${prefix}/`;
}

/** The driver key of a full object key, or `null` when the object is not under the prefix. */
export function s3DriverKey(prefix: string, objectKey: string): string | null {
  const root = s3KeyPrefix(prefix);
  if (!objectKey.startsWith(root)) return null;
  const key = objectKey.slice(root.length);
  return key === '' ? null : key;
}
