import { mkdtempSync, rmSync } from 'node:fs';
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
