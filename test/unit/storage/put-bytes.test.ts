import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import type { StorageOperationEvent } from '../../../src/storage';
import { InstanceImagesError } from '../../../src/errors';
import { wrapStorageDriver } from '../../../src/storage';
import { createMemoryStorageDriver } from './memory-driver';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A driver over the in-memory one whose putBytes, like S3's, has the storage check the digest it is
 * given (here: the fake checks it), and that counts what the wrapper asks of it.
 */
function checkingDriver(verifies: boolean): { driver: StorageDriver; calls: string[]; sent: Array<string | undefined> } {
  const inner = createMemoryStorageDriver();
  const calls: string[] = [];
  const sent: Array<string | undefined> = [];
  const driver: StorageDriver = {
    ...inner,
    capabilities: { ...inner.capabilities, verifiesSha256: verifies },
    async stat(key) {
      calls.push(`stat ${key}`);
      return inner.stat(key);
    },
    async putBytes(key, bytes, options = {}) {
      calls.push(`putBytes ${key}`);
      sent.push(options.sha256);
      if (verifies && options.sha256 !== undefined && sha(bytes) !== options.sha256)
        throw new InstanceImagesError('CHECKSUM_MISMATCH', 'the storage refused the bytes');
      const { Readable } = await import('node:stream');
      const written = await inner.put(key, Readable.from([bytes]), { size: bytes.length });
      return { size: written.size, sha256Verified: verifies && options.sha256 !== undefined };
    },
  };
  return { driver, calls, sent };
}

describe('StorageDisk.putBytes', () => {
  it('hands a verifying storage the expected digest and neither hashes nor reads back', async () => {
    const { driver, calls, sent } = checkingDriver(true);
    const events: StorageOperationEvent[] = [];
    const disk = wrapStorageDriver(driver, { onEvent: (event) => events.push(event) });
    const data = randomBytes(70_000);
    const result = await disk.putBytes('chunks/ab/x', data, { expectedSha256: sha(data).toUpperCase() });
    expect(result).toEqual({ key: 'chunks/ab/x', size: data.length, sha256: sha(data) });
    expect(sent).toEqual([sha(data)]);
    expect(calls).toEqual(['putBytes chunks/ab/x']);
    expect(events.map((event) => event.type)).toEqual(['put.completed']);
  });

  it('hashes first for a storage that does not check: a wrong digest writes nothing', async () => {
    const { driver, calls } = checkingDriver(false);
    const disk = wrapStorageDriver(driver);
    const data = randomBytes(1000);
    await expect(disk.putBytes('chunks/bad', data, { expectedSha256: sha(Buffer.from('other')) })).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    expect(calls).toEqual([]);
    // A right digest is written, then the stored size is read back.
    await disk.putBytes('chunks/good', data, { expectedSha256: sha(data) });
    expect(calls).toEqual(['putBytes chunks/good', 'stat chunks/good']);
  });

  it("passes on the storage's CHECKSUM_MISMATCH, with nothing stored", async () => {
    const { driver } = checkingDriver(true);
    const disk = wrapStorageDriver(driver);
    const data = randomBytes(1000);
    // The caller's digest is wrong: only the storage can tell, since the wrapper trusts it.
    const error = await disk.putBytes('chunks/c', data, { expectedSha256: sha(Buffer.from('x')) }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(await disk.stat('chunks/c')).toBeNull();
  });

  it('refuses a malformed digest and an unsafe key before any I/O, and falls back to put without putBytes', async () => {
    const { driver, calls } = checkingDriver(true);
    const disk = wrapStorageDriver(driver);
    await expect(disk.putBytes('a', Buffer.from('x'), { expectedSha256: 'zz' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(disk.putBytes('../a', Buffer.from('x'))).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(calls).toEqual([]);
    const plain = wrapStorageDriver(createMemoryStorageDriver());
    const data = randomBytes(5000);
    expect(await plain.putBytes('p/q', data)).toEqual({ key: 'p/q', size: 5000, sha256: sha(data) });
    await expect(plain.putBytes('p/r', data, { expectedSha256: sha(Buffer.from('x')) })).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    expect(await plain.stat('p/r')).toBeNull();
  });
});
