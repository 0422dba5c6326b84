import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { localStorageDriver } from '../../../drivers/storage/local';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';
import { sshTarget } from '../exec/ssh-target';

// The local driver on the hypervisor reached over the real sshd (127.0.0.1:2222).
const target = await sshTarget();
const root = mkdtempSync('/var/tmp/ii-storage-ssh-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

if ('skip' in target) {
  describe.skip(`storage driver conformance: local over SSH (skipped: ${target.skip})`, () => {
    it('needs sshd', () => undefined);
  });
} else {
  testStorageDriver(
    { describe, it, expect },
    {
      name: 'local over SSH',
      create: () => localStorageDriver.create({ path: root }, { executor: createSshExecutor(target.connection) }),
      // each test's driver owns its executor: close its connections
      cleanup: async () => undefined,
    },
  );
}
