import { expect } from 'vitest';
import { createSshExecutor, type SshExecutorOptions } from '../../../drivers/exec/ssh';
import { isInstanceImagesError } from '../../../src/errors';

/** An SSH connection that is never opened: for checks of the executor's options, which fail before any connection. */
export const UNCONNECTED = {
  type: 'ssh' as const,
  host: '10.0.0.5',
  username: 'root',
  privateKey: 'unused',
  hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPblHfNwR4jrRlxOSVRdlgdGg9RqqusLJrBgj6I3A6',
};

/** Expects `createSshExecutor` to refuse `options` with VALIDATION_FAILED. */
export function expectRefusedOptions(options: SshExecutorOptions): void {
  let error: unknown;
  try {
    createSshExecutor(UNCONNECTED, options);
  } catch (caught) {
    error = caught;
  }
  expect(isInstanceImagesError(error) && error.code).toBe('VALIDATION_FAILED');
}
