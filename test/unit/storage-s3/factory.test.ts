import { describe, expect, it, vi } from 'vitest';

// Records whether the AWS SDK was evaluated: importing the driver package must not load it (and
// lib-storage, which only the benches use, is never loaded).
const loads = vi.hoisted(() => ({ clientS3: 0, libStorage: 0 }));
vi.mock('@aws-sdk/client-s3', async (importOriginal) => {
  loads.clientS3 += 1;
  return importOriginal();
});
vi.mock('@aws-sdk/lib-storage', async (importOriginal) => {
  loads.libStorage += 1;
  return importOriginal();
});

const { s3StorageDriver, S3StorageOptionsSchema } = await import('../../../drivers/storage/s3');

describe('s3StorageDriver factory', () => {
  it('describes the driver without loading the SDK', () => {
    expect(s3StorageDriver.name).toBe('s3');
    expect(s3StorageDriver.capabilities).toEqual({ shared: true, pathAccess: false, verifiesSha256: true });
    expect(s3StorageDriver.needsHypervisor).toBe(false);
    expect(s3StorageDriver.secretFields).toContain('secretAccessKey');
    expect(s3StorageDriver.optionsSchema).toBe(S3StorageOptionsSchema);
    const driver = s3StorageDriver.create(
      S3StorageOptionsSchema.parse({ bucket: 'images', endpoint: 'http://127.0.0.1:9', accessKeyId: 'a', secretAccessKey: 'secret-b' }),
      {},
    );
    expect(driver.name).toBe('s3');
    expect(driver.capabilities).toEqual({ shared: true, pathAccess: false, verifiesSha256: true });
    expect(loads).toEqual({ clientS3: 0, libStorage: 0 });
  });

  it('loads the SDK on the first operation, and free space is unknown without any request', async () => {
    const driver = s3StorageDriver.create(
      S3StorageOptionsSchema.parse({ bucket: 'images', endpoint: 'http://127.0.0.1:9', accessKeyId: 'a', secretAccessKey: 'secret-b' }),
      {},
    );
    expect(await driver.freeSpace()).toBeNull();
    expect(loads).toEqual({ clientS3: 0, libStorage: 0 });
    await driver.stat('x').catch(() => undefined);
    expect(loads.clientS3).toBe(1);
    // Every put runs the driver's own part loop: lib-storage is not the driver's dependency.
    expect(loads.libStorage).toBe(0);
    await driver.close?.();
  });

  it('rejects an invalid range before any request', async () => {
    const driver = s3StorageDriver.create(S3StorageOptionsSchema.parse({ bucket: 'images' }), {});
    await expect(driver.get('x', { range: { start: 5, end: 2 } })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(driver.get('x', { range: { start: -1 } })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
