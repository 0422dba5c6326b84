import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { localStorageDriver } from '../../../drivers/storage/local';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';

// The local driver on this machine's filesystem, through the local executor.
const root = mkdtempSync('/var/tmp/ii-storage-local-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

testStorageDriver(
  { describe, it, expect },
  {
    name: 'local (local executor)',
    create: () => localStorageDriver.create({ path: root }, { executor: createLocalExecutor() }),
  },
);

// The same with buffered writes and the background write-back (`directIo: false`, the path a
// filesystem without O_DIRECT support takes too).
testStorageDriver(
  { describe, it, expect },
  {
    name: 'local (local executor, buffered writes)',
    create: () => localStorageDriver.create({ path: root, directIo: false }, { executor: createLocalExecutor() }),
  },
);

describe('local prepareKey (local executor)', () => {
  const driver = localStorageDriver.create({ path: root }, { executor: createLocalExecutor() });

  it('makes the directories of a key, and nothing else, idempotently', async () => {
    await driver.prepareKey?.('prepare/a/b/image.qcow2');
    await driver.prepareKey?.('prepare/a/b/image.qcow2');
    expect(lstatSync(`${root}/prepare/a/b`).isDirectory()).toBe(true);
    expect(readdirSync(`${root}/prepare/a/b`)).toEqual([]);
    expect((await driver.list({ prefix: 'prepare/' })).items).toEqual([]);
  });

  it('refuses a key that passes through a symbolic link: STORAGE_UNAVAILABLE, nothing made where it points', async () => {
    const outside = mkdtempSync('/var/tmp/ii-storage-outside-');
    try {
      mkdirSync(`${root}/linked-parent`, { recursive: true });
      symlinkSync(outside, `${root}/linked-parent/dir`);
      const error = await driver.prepareKey?.('linked-parent/dir/x/image.qcow2').then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
      expect(existsSync(`${outside}/x`)).toBe(false);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
