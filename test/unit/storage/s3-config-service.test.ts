/**
 * Issue #13: an S3 storage config with an unknown key (a misspelt secret) was stored verbatim and
 * echoed unmasked; control characters in region/accessKeyId/sessionToken failed only at use.
 */
import { describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { createInstanceImages, type Actor } from '../../../src';
import { FakeWorld } from '../../support/fakes';

const admin: Actor = { kind: 'admin', userId: 'op' };
const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
const config = {
  endpoint: 'http://127.0.0.1:7480',
  bucket: 'images',
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: SECRET,
  forcePathStyle: true,
};

function sdk() {
  const world = new FakeWorld();
  return createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [s3StorageDriver],
  });
}

describe('s3 storage config through the storage service', () => {
  it('refuses an unknown key, naming it, and stores nothing', async () => {
    const ii = sdk();
    const attempt = ii.storages.createStorage(admin, {
      name: 's3',
      driver: 's3',
      config: { ...config, SecretAccessKey: `${SECRET}-typo` },
    });
    await expect(attempt).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      fields: [{ path: 'config.SecretAccessKey', message: 'is not a setting of the s3 storage driver' }],
    });
    await attempt.catch((error: unknown) => expect(JSON.stringify(error) + String(error)).not.toContain(SECRET));
    expect(await ii.storages.listStorages(admin)).toEqual([]);
  });

  it.each([
    ['region', { region: 'us-east-1\r\nX: 1' }],
    ['accessKeyId', { accessKeyId: 'AKID\u0000' }],
    ['sessionToken', { sessionToken: 'token-with\nnewline' }],
  ])('refuses control characters in %s at creation', async (field, patch) => {
    await expect(sdk().storages.createStorage(admin, { name: 's3', driver: 's3', config: { ...config, ...patch } })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      fields: [expect.objectContaining({ path: `config.${field}` })],
    });
  });

  it('masks the secret of a valid config in the answer', async () => {
    const storage = await sdk().storages.createStorage(admin, { name: 's3', driver: 's3', config });
    expect(storage.config).toMatchObject({ bucket: 'images', secretAccessKey: '********' });
    expect(JSON.stringify(storage)).not.toContain(SECRET);
  });
});
