/**
 * The chunk store on the real S3 driver against the Ceph radosgw: captures stored as chunks
 * (dedup against what the bucket holds), read back byte for byte, garbage collection, and verify
 * catching a chunk damaged behind the store's back, all on real objects in a bucket of its own.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { createChunkStore, parseManifest, type ChunkStore } from '../../../src/chunks';
import { chunkKey } from '../../../src/chunks/keys';
import { InstanceImagesError } from '../../../src/errors';
import { wrapStorageDriver, type StorageDisk } from '../../../src/storage/disk';
import { assemble, block, diskBytes, diskChunks, diskInfo, sha256 } from '../../support/memory-storage';
import { allObjectKeys, driverOptions, loadS3TestEnv, useTestBucket } from '../storage-s3/s3-env';

const loaded = await loadS3TestEnv();
const PREFIX = 'chunk-store-it';

async function failure(promise: Promise<unknown>): Promise<InstanceImagesError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(loaded.env === null)(`chunk store on radosgw${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 'chunks');
  let disk: StorageDisk | null = null;
  const storeOf = (options: Parameters<typeof createChunkStore>[1] = {}): ChunkStore => {
    disk ??= wrapStorageDriver(s3StorageDriver.create(driverOptions(env, s3.bucket, { prefix: PREFIX }), {}));
    return createChunkStore(disk, { manifestPrefix: 'images/', ...options });
  };
  const bucketKeys = async () => (await allObjectKeys(s3.admin, s3.bucket)).map((key) => key.slice(PREFIX.length + 1)).sort();
  const chunkObjects = async () => (await bucketKeys()).filter((key) => key.startsWith('chunks/'));

  afterAll(async () => {
    await disk?.close();
  });

  const A = [1, 2, 0, 3, 4, 0, 0, 5];
  const B = [1, 2, 6, 3, 7, 0, 0, 5];

  it('stores a capture as chunks and a manifest written last, zero chunks never stored', async () => {
    const store = storeOf();
    const pending = await store.writeImage(diskChunks(A), diskInfo(A), { leaseId: 'cap-a' });
    expect(pending.uploadedChunks).toBe(5);
    expect(await bucketKeys()).toContain('chunk-leases/cap-a.json');
    await pending.commit('images/acct/a.manifest.json');
    const keys = await bucketKeys();
    expect(keys).toContain('images/acct/a.manifest.json');
    expect(keys.filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
    expect(await chunkObjects()).toHaveLength(5);
    const stored = await s3.admin.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/images/acct/a.manifest.json` }));
    const manifest = parseManifest(Buffer.from(await stored.Body!.transformToByteArray()));
    expect(manifest.imageSha256).toBe(pending.manifest.imageSha256);
  });

  it('dedups a second capture against the bucket: only its new chunks are uploaded', async () => {
    const store = storeOf();
    const pending = await store.writeImage(diskChunks(B), diskInfo(B), { leaseId: 'cap-b' });
    expect(pending.uploadedChunks).toBe(2);
    expect(pending.reusedChunks).toBe(4);
    await pending.commit('images/acct/b.manifest.json');
    expect(await chunkObjects()).toHaveLength(7);
    expect(await store.stats()).toMatchObject({
      manifests: 2,
      chunks: 7,
      logicalBytes: 11 * 65536,
      uniqueBytes: 7 * 65536,
      dedupRatio: '1.57',
    });
  });

  it('reads both images back byte for byte under a lease', async () => {
    const store = storeOf({ parallel: 3 });
    for (const [ids, key] of [
      [A, 'images/acct/a.manifest.json'],
      [B, 'images/acct/b.manifest.json'],
    ] as const) {
      const manifest = (await store.readManifest(key))!;
      const bytes = await assemble(manifest.virtualSizeBytes, store.readImage(manifest, { leaseId: 'deploy-1', manifestKey: key }));
      expect(bytes.equals(diskBytes([...ids]))).toBe(true);
    }
    expect((await bucketKeys()).filter((key) => key.startsWith('chunk-leases/'))).toEqual([]);
  });

  it('collects only the chunks of a deleted image that no other image names', async () => {
    const store = storeOf();
    await store.deleteManifest('images/acct/a.manifest.json');
    const report = await store.collectGarbage();
    expect(report).toMatchObject({ chunks: 7, referenced: 6, deleted: 1, bytesFreed: 65536, leasesExpired: 0 });
    const remaining = await chunkObjects();
    expect(remaining).not.toContain(chunkKey({ kind: 'storage' }, sha256(block(4))));
    expect(remaining).toHaveLength(6);
    // The sweep marker stays, finished: writers compare its collection id.
    const marker = await s3.admin.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/chunk-gc/sweep.json` }));
    expect(JSON.parse(await marker.Body!.transformToString())).toMatchObject({ format: 1, finishedAt: expect.any(String) });
    const manifest = (await store.readManifest('images/acct/b.manifest.json'))!;
    expect((await assemble(manifest.virtualSizeBytes, store.readImage(manifest, { leaseId: 'deploy-2' }))).equals(diskBytes(B))).toBe(true);
  });

  it('uploads a chunk again when a whole collection ran between storing it and the lease naming it', async () => {
    const raw = s3StorageDriver.create(driverOptions(env, s3.bucket, { prefix: PREFIX }), {});
    let leasePuts = 0;
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let gated = false;
    // The writer's first cover round's lease part lands only when the test lets it.
    const hold = async (key: string) => {
      if (key === 'chunk-leases/parts/late/0.json' && ++leasePuts === 1) {
        gated = true;
        await gate;
      }
    };
    const putBytes = raw.putBytes?.bind(raw);
    const slowLease = wrapStorageDriver({
      ...raw,
      async put(key, body, options) {
        await hold(key);
        return raw.put(key, body, options);
      },
      ...(putBytes
        ? {
            async putBytes(key: string, bytes: Buffer, options?: Parameters<typeof putBytes>[2]) {
              await hold(key);
              return putBytes(key, bytes, options);
            },
          }
        : {}),
    });
    try {
      const ids = [9];
      const chunk = chunkKey({ kind: 'storage' }, sha256(block(9)));
      const writing = createChunkStore(slowLease, { manifestPrefix: 'images/', parallel: 2 }).writeImage(diskChunks(ids), diskInfo(ids), {
        leaseId: 'late',
      });
      const deadline = Date.now() + 20_000;
      while (!(gated && (await chunkObjects()).includes(chunk)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect((await chunkObjects()).includes(chunk)).toBe(true);
      // Stored, not yet leased: a collection deletes it.
      expect((await storeOf().collectGarbage()).deleted).toBe(1);
      expect(await chunkObjects()).not.toContain(chunk);
      openGate();
      const pending = await writing;
      expect(await chunkObjects()).toContain(chunk); // uploaded again from the bytes still held
      expect(pending.uploadedChunks).toBe(2);
      await pending.commit('images/acct/late.manifest.json');
      expect((await storeOf().collectGarbage()).deleted).toBe(0);
      const manifest = (await storeOf().readManifest('images/acct/late.manifest.json'))!;
      expect(
        (await assemble(manifest.virtualSizeBytes, storeOf().readImage(manifest, { leaseId: 'deploy-late' }))).equals(diskBytes(ids)),
      ).toBe(true);
      await storeOf().deleteManifest('images/acct/late.manifest.json');
      expect((await storeOf().collectGarbage()).deleted).toBe(1);
    } finally {
      openGate();
      await slowLease.close();
    }
  });

  it('verify re-hashes real objects and names the image a damaged chunk breaks; the deploy fails with CHECKSUM_MISMATCH', async () => {
    const store = storeOf();
    expect(await store.verify()).toMatchObject({ checked: 6, corrupt: [], missing: [] });
    const key = chunkKey({ kind: 'storage' }, sha256(block(6)));
    const damaged = Buffer.from(block(6));
    damaged[4096] = damaged[4096]! ^ 0x01;
    await s3.admin.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}/${key}`, Body: damaged }));
    const report = await store.verify();
    expect(report.corrupt).toEqual([{ sha256: sha256(block(6)), key, manifests: ['images/acct/b.manifest.json'] }]);
    const manifest = (await store.readManifest('images/acct/b.manifest.json'))!;
    const error = await failure(assemble(manifest.virtualSizeBytes, store.readImage(manifest, { leaseId: 'deploy-3' })));
    expect(error.code).toBe('CHECKSUM_MISMATCH');
    expect(error.details.key).toBe(key);
  });

  it('resumes a capture interrupted by storage failures, uploading only what is missing', async () => {
    let puts = 0;
    const flakyDriver = s3StorageDriver.create(driverOptions(env, s3.bucket, { prefix: PREFIX }), {});
    const flaky = createChunkStore(
      wrapStorageDriver(
        {
          ...flakyDriver,
          put: (key, body, options) => {
            if (key.startsWith('chunks/') && ++puts > 2) {
              body.destroy();
              return Promise.reject(new InstanceImagesError('STORAGE_UNAVAILABLE', 'radosgw went away'));
            }
            return flakyDriver.put(key, body, options);
          },
          putBytes: (key, bytes, options) => {
            if (key.startsWith('chunks/') && ++puts > 2)
              return Promise.reject(new InstanceImagesError('STORAGE_UNAVAILABLE', 'radosgw went away'));
            return flakyDriver.putBytes!(key, bytes, options);
          },
        },
        { retries: { attempts: 1 } },
      ),
      { parallel: 1, manifestPrefix: 'images/' },
    );
    const C = [11, 12, 13, 14, 15, 16];
    expect((await failure(flaky.writeImage(diskChunks(C), diskInfo(C), { leaseId: 'cap-c' }))).code).toBe('STORAGE_UNAVAILABLE');
    await flakyDriver.close?.();
    const before = (await chunkObjects()).length;
    const retry = await storeOf().writeImage(diskChunks(C), diskInfo(C), { leaseId: 'cap-c' });
    expect(retry.uploadedChunks).toBe(C.length - 2);
    expect((await chunkObjects()).length - before).toBe(C.length - 2);
    await retry.commit('images/acct/c.manifest.json');
  });
});
