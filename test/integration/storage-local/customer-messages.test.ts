/**
 * The local driver over the real executors: a NOT_FOUND that customers see names the key and the
 * image storage, never the hypervisor (SSH user, host, port, hypervisor name) or the storage root.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { localStorageDriver } from '../../../drivers/storage/local';
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import { SSH_HOST, SSH_PORT, sshTarget } from '../exec/ssh-target';

const target = await sshTarget();
const root = mkdtempSync('/var/tmp/ii-storage-messages-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function missingKeyError(executor: Executor): Promise<InstanceImagesError> {
  const storage = localStorageDriver.create({ path: root }, { executor });
  try {
    const error = await storage.get('images/acct-1/missing.qcow2').then(
      () => null,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(InstanceImagesError);
    return error as InstanceImagesError;
  } finally {
    await executor.close();
  }
}

function expectCustomerSafe(error: InstanceImagesError, hidden: string[]): void {
  expect(error.code).toBe('NOT_FOUND');
  expect(error.message).toBe('The file images/acct-1/missing.qcow2 does not exist on the image storage');
  const seen = JSON.stringify(error.toJSON());
  for (const part of [...hidden, root]) expect(seen).not.toContain(part);
  // the operator's view, kept as the cause, still says where
  expect(String((error.cause as Error).message)).toContain(hidden[0]);
}

describe('local storage: customer-visible errors name no host', () => {
  it('through the local executor with a hypervisor label', async () => {
    const error = await missingKeyError(createLocalExecutor({ label: 'ssh root@hv-7.dc1.internal:22 (hv-7)' }));
    expectCustomerSafe(error, ['hv-7.dc1.internal', 'root@', '(hv-7)']);
  });

  it.skipIf('skip' in target)(`through the real sshd${'skip' in target ? ` (skipped: ${target.skip})` : ''}`, async () => {
    if ('skip' in target) return;
    const error = await missingKeyError(createSshExecutor(target.connection));
    expectCustomerSafe(error, [`${SSH_HOST}:${SSH_PORT}`, SSH_HOST, 'root@']);
  });
});
