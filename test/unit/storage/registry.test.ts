import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { localStorageDriver } from '../../../drivers/storage/local';
import { nfsStorageDriver } from '../../../drivers/storage/nfs';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { isInstanceImagesError } from '../../../src/errors';
import type { StorageDriverFactory } from '../../../src/ports/storage-driver';
import { createStorageRegistry, MASKED_SECRET } from '../../../src/storage/registry';
import { createMemoryStorageDriver } from './memory-driver';

const secretSchema = z.strictObject({
  bucket: z.string().min(3),
  credentials: z.strictObject({ accessKeyId: z.string(), secretAccessKey: z.string().min(8) }),
  token: z.string().optional(),
});

const hostDriver: StorageDriverFactory<z.output<typeof secretSchema>> = {
  name: 'host-blob',
  optionsSchema: secretSchema,
  secretFields: ['credentials.secretAccessKey', 'token'],
  capabilities: { shared: true, pathAccess: false },
  needsHypervisor: false,
  create: () => createMemoryStorageDriver(),
};

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return null;
}

describe('storage registry', () => {
  it('registers drivers by name, including a host driver, and refuses duplicates', () => {
    const registry = createStorageRegistry();
    registry.register(localStorageDriver);
    registry.register(hostDriver);
    expect(registry.names()).toEqual(['host-blob', 'local']);
    expect(registry.get('local')).toBe(localStorageDriver);
    expect(
      isInstanceImagesError(
        caught(() => registry.register(hostDriver)),
        'CONFLICT',
      ),
    ).toBe(true);
    registry.register(hostDriver, { replace: true });
    expect(
      isInstanceImagesError(
        caught(() => registry.register({ ...hostDriver, name: 'Bad Name' })),
        'VALIDATION_FAILED',
      ),
    ).toBe(true);
  });

  it('names the unknown driver as the offending field', () => {
    const error = caught(() => createStorageRegistry().get('ftp'));
    expect(isInstanceImagesError(error, 'VALIDATION_FAILED')).toBe(true);
    expect((error as { fields: Array<{ path: string }> }).fields[0]?.path).toBe('driver');
  });

  it('validates config with the driver schema, naming fields as config.<path>, never echoing values', () => {
    const registry = createStorageRegistry();
    registry.register(localStorageDriver);
    registry.register(hostDriver);
    expect(registry.validateConfig('local', { path: '/var/lib/images/' })).toEqual({ path: '/var/lib/images' });
    const relative = caught(() => registry.validateConfig('local', { path: 'images' }));
    expect(isInstanceImagesError(relative, 'VALIDATION_FAILED')).toBe(true);
    expect((relative as { fields: Array<{ path: string }> }).fields.map((f) => f.path)).toEqual(['config.path']);
    for (const path of ['/', '/a/../etc', '/a\nb'])
      expect(
        isInstanceImagesError(
          caught(() => registry.validateConfig('local', { path })),
          'VALIDATION_FAILED',
        ),
      ).toBe(true);
    const secret = 'sup3r-s3cret-but-short';
    const bad = caught(() =>
      registry.validateConfig('host-blob', { bucket: 'b', credentials: { accessKeyId: 'AK', secretAccessKey: 7 }, extra: secret }),
    );
    expect(isInstanceImagesError(bad, 'VALIDATION_FAILED')).toBe(true);
    const paths = (bad as { fields: Array<{ path: string }> }).fields.map((f) => f.path).sort();
    expect(paths).toEqual(['config.bucket', 'config.credentials.secretAccessKey', 'config.extra']);
    expect((bad as Error).message).not.toContain(secret);
    expect((bad as Error).message).toContain('config.bucket');
  });

  it('masks secret fields, including nested ones, without touching the original', () => {
    const registry = createStorageRegistry();
    registry.register(hostDriver);
    const config = { bucket: 'images', credentials: { accessKeyId: 'AK', secretAccessKey: 'very-secret' }, token: 'tok' };
    const masked = registry.maskSecrets('host-blob', config);
    expect(masked).toEqual({ bucket: 'images', credentials: { accessKeyId: 'AK', secretAccessKey: MASKED_SECRET }, token: MASKED_SECRET });
    expect(config.credentials.secretAccessKey).toBe('very-secret');
    expect(registry.maskSecrets('host-blob', { bucket: 'x' })).toEqual({ bucket: 'x' });
  });

  it('refuses unknown keys in every built-in driver config, naming each as its own field', () => {
    const registry = createStorageRegistry();
    registry.register(localStorageDriver);
    registry.register(nfsStorageDriver);
    registry.register(s3StorageDriver);
    const valid = {
      local: { path: '/var/lib/images' },
      nfs: { server: 'nfs.example', exportPath: '/export/images', mountPoint: '/mnt/images' },
      s3: { bucket: 'images', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI-K7MDENG' },
    };
    const leaked = 'wJalrXUtnFEMI-K7MDENG-leaked';
    for (const [name, config] of Object.entries(valid)) {
      expect(() => registry.validateConfig(name, config)).not.toThrow();
      const error = caught(() => registry.validateConfig(name, { ...config, SecretAccessKey: leaked, 'bad\nkey': 1 }));
      expect(isInstanceImagesError(error, 'VALIDATION_FAILED'), name).toBe(true);
      const fields = (error as { fields: Array<{ path: string; message: string }> }).fields;
      expect(fields).toEqual([
        { path: 'config.SecretAccessKey', message: `is not a setting of the ${name} storage driver` },
        { path: 'config.bad?key', message: `is not a setting of the ${name} storage driver` },
      ]);
      expect(JSON.stringify(error) + (error as Error).message).not.toContain(leaked);
    }
  });

  it('masks keys a stored config holds that its schema does not know', () => {
    const registry = createStorageRegistry();
    registry.register(s3StorageDriver);
    const stored = {
      bucket: 'images',
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI-K7MDENG',
      SecretAccessKey: 'typo-holds-the-secret',
    };
    expect(registry.maskSecrets('s3', stored)).toEqual({
      bucket: 'images',
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: MASKED_SECRET,
      SecretAccessKey: MASKED_SECRET,
    });
    expect(stored.SecretAccessKey).toBe('typo-holds-the-secret');
  });

  it('creates drivers, insisting on a hypervisor context for per-hypervisor drivers', () => {
    const registry = createStorageRegistry();
    registry.register(localStorageDriver);
    registry.register(hostDriver);
    expect(registry.createDriver('host-blob', { bucket: 'abc', credentials: { accessKeyId: 'a', secretAccessKey: '12345678' } }).name).toBe(
      'memory',
    );
    expect(
      isInstanceImagesError(
        caught(() => registry.createDriver('local', { path: '/x' })),
        'INVALID_STATE',
      ),
    ).toBe(true);
  });
});

describe('driver factory names', () => {
  it('keep the former names as aliases of the create<Name>StorageDriver functions', async () => {
    const local = await import('../../../drivers/storage/local');
    const nfs = await import('../../../drivers/storage/nfs');
    expect(local.createPathStorage).toBe(local.createPathStorageDriver);
    expect(nfs.createNfsStorage).toBe(nfs.createNfsStorageDriver);
  });
});
