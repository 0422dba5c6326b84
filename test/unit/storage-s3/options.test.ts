import { describe, expect, it } from 'vitest';
import {
  S3StorageOptionsSchema,
  S3_DEFAULT_PART_SIZE,
  S3_MAX_PART_SIZE,
  normalizeS3Prefix,
  s3DriverKey,
  s3KeyPrefix,
  s3ObjectKey,
  s3PartSize,
} from '../../../drivers/storage/s3/options';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const base = { bucket: 'images', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'super-secret-value-123' };

describe('S3StorageOptionsSchema', () => {
  it('applies defaults and normalizes the prefix', () => {
    const parsed = S3StorageOptionsSchema.parse({ ...base, prefix: '//custom//images/' });
    expect(parsed).toEqual({ ...base, region: 'us-east-1', prefix: 'custom/images', forcePathStyle: false });
    expect(S3StorageOptionsSchema.parse(base).prefix).toBe('');
  });

  it('accepts an endpoint for S3-compatible services and none for AWS', () => {
    expect(S3StorageOptionsSchema.parse({ ...base, endpoint: 'http://127.0.0.1:7480', forcePathStyle: true }).endpoint).toBe(
      'http://127.0.0.1:7480',
    );
    expect(S3StorageOptionsSchema.parse({ bucket: 'aws-bucket', region: 'eu-west-1' })).toMatchObject({ region: 'eu-west-1' });
  });

  it.each([
    [{ ...base, bucket: 'Bad_Bucket' }, 'bucket'],
    [{ ...base, bucket: 'ab' }, 'bucket'],
    [{ ...base, endpoint: 'ftp://example.com' }, 'endpoint'],
    [{ ...base, endpoint: 'not a url' }, 'endpoint'],
    [{ ...base, prefix: 'a/../b' }, 'prefix'],
    [{ ...base, prefix: 'a\nb' }, 'prefix'],
    [{ bucket: 'images', accessKeyId: 'AKID' }, 'secretAccessKey'],
    [{ bucket: 'images', secretAccessKey: 'secret' }, 'accessKeyId'],
    [{ bucket: 'images', sessionToken: 'token' }, 'sessionToken'],
    [{ ...base, partSizeBytes: 1024 }, 'partSizeBytes'],
    [{ ...base, queueSize: 0 }, 'queueSize'],
    [{ ...base, forcePathStyle: 'yes' }, 'forcePathStyle'],
    [{ ...base, region: 'eu-west-1\r\nX-Injected: 1' }, 'region'],
    [{ ...base, region: 'eu west 1' }, 'region'],
    [{ ...base, region: '-eu' }, 'region'],
    [{ ...base, accessKeyId: 'AKID\u0000EXAMPLE' }, 'accessKeyId'],
    [{ ...base, accessKeyId: 'AKID EXAMPLE' }, 'accessKeyId'],
    [{ ...base, secretAccessKey: 'super-secret\u0007value' }, 'secretAccessKey'],
    [{ ...base, secretAccessKey: 'short' }, 'secretAccessKey'],
    [{ ...base, secretAccessKey: 'S' }, 'secretAccessKey'],
    [{ ...base, sessionToken: 'session-token\nvalue' }, 'sessionToken'],
    [{ ...base, sessionToken: 'tok' }, 'sessionToken'],
    [{ ...base, endpoint: 'http://user:pass@127.0.0.1:7480' }, 'endpoint'],
    [{ ...base, endpoint: 'http://127.0.0.1:7480/?x=1' }, 'endpoint'],
  ])('rejects %j naming %s', (input, field) => {
    const result = S3StorageOptionsSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(field);
  });

  it('refuses unknown keys, naming them (a misspelt secret must not be stored unmasked)', () => {
    const result = S3StorageOptionsSchema.safeParse({ ...base, SecretAccessKey: 'super-secret-value-456' });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toMatchObject([{ code: 'unrecognized_keys', keys: ['SecretAccessKey'] }]);
    expect(JSON.stringify(result.error?.issues)).not.toContain('super-secret-value-456');
  });

  it('accepts the region names of AWS, radosgw and MinIO and a session token', () => {
    for (const region of ['us-east-1', 'eu-central-2', 'default', 'my_zonegroup', 'us-gov-west-1']) {
      expect(S3StorageOptionsSchema.parse({ ...base, region }).region).toBe(region);
    }
    expect(S3StorageOptionsSchema.parse({ ...base, sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDM+token=' }).sessionToken).toBeDefined();
  });

  it('never echoes the secret in validation messages', () => {
    const secret = 'super-secret-value-123';
    const result = S3StorageOptionsSchema.safeParse({ ...base, secretAccessKey: secret, bucket: 'X', accessKeyId: undefined });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).not.toContain(secret);
  });
});

describe('s3PartSize', () => {
  it('uses the base part size when the size is unknown or small', () => {
    expect(s3PartSize(undefined)).toBe(S3_DEFAULT_PART_SIZE);
    expect(s3PartSize(0)).toBe(S3_DEFAULT_PART_SIZE);
    expect(s3PartSize(50 * GiB)).toBe(S3_DEFAULT_PART_SIZE);
    expect(s3PartSize(undefined, 16 * MiB)).toBe(16 * MiB);
  });

  it('scales whole MiB parts so every size S3 accepts stays under 10,000 parts', () => {
    for (const size of [70 * GiB, 100 * GiB, 500 * GiB, 1024 * GiB, 5 * 1024 * GiB, 123_456_789_012]) {
      const part = s3PartSize(size);
      expect(part % MiB).toBe(0);
      expect(part).toBeGreaterThanOrEqual(S3_DEFAULT_PART_SIZE);
      expect(part).toBeLessThanOrEqual(S3_MAX_PART_SIZE);
      expect(Math.ceil(size / part)).toBeLessThanOrEqual(9000);
    }
    expect(s3PartSize(100 * GiB)).toBe(12 * MiB);
  });
});

describe('prefix helpers', () => {
  it('normalizes prefixes', () => {
    expect(normalizeS3Prefix(undefined)).toBe('');
    expect(normalizeS3Prefix('/')).toBe('');
    expect(normalizeS3Prefix('/a//b/')).toBe('a/b');
  });

  it('maps driver keys to object keys and back', () => {
    expect(s3ObjectKey('', 'x/y.qcow2')).toBe('x/y.qcow2');
    expect(s3ObjectKey('p/q', 'x/y.qcow2')).toBe('p/q/x/y.qcow2');
    expect(s3KeyPrefix('')).toBe('');
    expect(s3KeyPrefix('p')).toBe('p/');
    expect(s3DriverKey('p', 'p/x.qcow2')).toBe('x.qcow2');
    expect(s3DriverKey('p', 'px.qcow2')).toBeNull();
    expect(s3DriverKey('p', 'p/')).toBeNull();
    expect(s3DriverKey('', 'x.qcow2')).toBe('x.qcow2');
  });
});
