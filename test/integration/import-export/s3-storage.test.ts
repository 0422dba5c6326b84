/**
 * URL import streamed into an S3 storage (the real radosgw) and its export through a presigned
 * URL: a Range GET from radosgw itself, the whole file matching the image's sha256, the
 * Content-Disposition asked for, and an expired or altered URL refused by radosgw. A download
 * without Content-Length (chunked, never ending) stops at the size limit with its multipart upload
 * aborted and no object left.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { presignS3Url, s3ObjectUrl } from '../../../drivers/storage/s3/presign';
import { createInstanceImages, type Actor, type InstanceImages } from '../../../src';
import { serveBytes, type ImageServer } from '../../support/image-server';
import { allObjectKeys, driverOptions, loadS3TestEnv, openMultipartUploads, useTestBucket } from '../storage-s3/s3-env';

const loaded = await loadS3TestEnv();
const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(loaded.env === null)(
  `URL import into S3 and presigned export${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`,
  () => {
    const env = loaded.env!;
    const bucket = useTestBucket(env, 'import');
    let ii: InstanceImages;
    let server: ImageServer;
    const image = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i)));

    beforeAll(async () => {
      ii = createInstanceImages({
        hostDirectory: {
          getInstance: async () => null,
          getHypervisor: async (id) => (id === 'hv-1' ? { id, name: 'hv', locationId: 'loc', connection: { type: 'local' } } : null),
        },
        storageDrivers: [s3StorageDriver],
        imports: { allowNetworks: ['127.0.0.2/32'] },
      });
      await ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
      const storage = await ii.storages.createStorage(ADMIN, {
        name: 'rgw',
        driver: 's3',
        config: { ...driverOptions(env, bucket.bucket), prefix: 'p' },
      });
      await ii.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
      server = await serveBytes(gzipSync(image), { host: '127.0.0.2', cutAfter: 50_000 });
    });

    const closing: { close(): Promise<void> }[] = [];
    afterAll(async () => {
      await server?.close();
      await ii?.close();
      for (const each of closing) await each.close();
    });

    it('streams the import into the bucket and exports it through a presigned URL with Range', async () => {
      const started = await ii.imports.importImage(ALICE, { url: server.url, name: 'rgw image', locationId: 'loc', sha256: sha256(image) });
      await ii.idle();
      const imported = await ii.images.getImage(ALICE, started.image.id);
      expect(imported).toMatchObject({ status: 'available', format: 'raw', sizeBytes: image.length, sha256: sha256(image) });
      expect(await allObjectKeys(bucket.admin, bucket.bucket)).toEqual([`p/${imported.fileKey}`]);
      expect(await openMultipartUploads(bucket.admin, bucket.bucket)).toEqual([]);

      const link = await ii.exports.createDownloadLink(ALICE, imported.id, { expiresInSeconds: 300 });
      expect(link.kind).toBe('presigned');
      const url = link.kind === 'presigned' ? link.url : '';
      const part = await fetch(url, { headers: { range: 'bytes=65530-65541' } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals(image.subarray(65530, 65542))).toBe(true);
      const whole = await fetch(url);
      expect(whole.status).toBe(200);
      expect(whole.headers.get('content-disposition')).toContain('filename="rgw-image.raw"');
      expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(imported.sha256);

      // radosgw refuses the URL once its signature no longer matches or it has expired.
      const altered = await fetch(url.replace('X-Amz-Expires=300', 'X-Amz-Expires=301'));
      expect(altered.status).toBe(403);
      const expired = presignS3Url({
        url: s3ObjectUrl(driverOptions(env, bucket.bucket), `p/${imported.fileKey}`),
        region: env.region,
        credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
        now: new Date(Date.now() - 3600_000),
        expiresInSeconds: 60,
      });
      expect((await fetch(expired)).status).toBe(403);

      // Another account gets NOT_FOUND, like a missing image.
      await expect(ii.exports.createDownloadLink({ kind: 'customer', accountId: 'acct-bob' }, imported.id)).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it('stops a download without Content-Length (chunked, never ending) at the size limit: its multipart upload aborted, nothing stored', async () => {
      const limit = 12 * 1024 * 1024;
      const limited = createInstanceImages({
        hostDirectory: {
          getInstance: async () => null,
          getHypervisor: async (id) => (id === 'hv-1' ? { id, name: 'hv', locationId: 'loc', connection: { type: 'local' } } : null),
        },
        storageDrivers: [s3StorageDriver],
        imports: { allowNetworks: ['127.0.0.2/32'], maxDownloadBytes: limit },
      });
      closing.push(limited);
      await limited.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
      // 5 MiB parts: the multipart upload has parts stored when the limit is passed.
      const storage = await limited.storages.createStorage(ADMIN, {
        name: 'rgw limited',
        driver: 's3',
        config: { ...driverOptions(env, bucket.bucket, { partSizeBytes: 5 * 1024 * 1024 }), prefix: 'limited' },
      });
      await limited.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
      const endless = await serveBytes(Buffer.alloc(1024 * 1024, 7), { host: '127.0.0.2', endless: true });
      closing.push(endless);
      const started = await limited.imports.importImage(ALICE, { url: endless.url, name: 'endless', locationId: 'loc' });
      await limited.idle();
      expect(await limited.repositories.tasks.get(started.task.id)).toMatchObject({
        status: 'failed',
        errorCode: 'DOWNLOAD_FAILED',
        errorMessage: expect.stringMatching(new RegExp(`limit of ${limit}`)),
      });
      expect(await limited.repositories.images.get(started.image.id)).toMatchObject({ status: 'error', reservedBytes: null });
      await expect.poll(() => endless.requests.map((r) => [r.status, r.hungUp]), { timeout: 5000 }).toEqual([[200, true]]);
      expect(endless.requests[0]?.sent).toBeLessThan(limit + 16 * 1024 * 1024);
      expect((await allObjectKeys(bucket.admin, bucket.bucket)).filter((key) => key.startsWith('limited/'))).toEqual([]);
      expect(await openMultipartUploads(bucket.admin, bucket.bucket)).toEqual([]);
      expect((await limited.repositories.usage.list({ imageId: started.image.id })).items).toEqual([]);
    });
  },
);
