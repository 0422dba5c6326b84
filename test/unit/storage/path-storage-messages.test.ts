/**
 * Errors of path storage (local, NFS) whose message and details customers see (NOT_FOUND,
 * STORAGE_FULL, CANCELLED; see adapters/express/problem.ts) name the key and "the image storage",
 * never the hypervisor (executor label: SSH user, host, hypervisor name) or the storage root.
 * The operator's view, with host and stderr, travels as the error's cause.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createPathStorageDriver } from '../../../drivers/storage/local/driver';
import { createNfsStorageDriver } from '../../../drivers/storage/nfs/driver';
import { NfsStorageOptionsSchema } from '../../../drivers/storage/nfs/options';
import { InstanceImagesError } from '../../../src/errors';
import type { ExecResult, Executor } from '../../../src/ports/executor';

const LOCAL_CAPABILITIES = { shared: false, pathAccess: true } as const;
/** A label as the executor pool makes it: user, host, port and hypervisor name. */
const LABEL = 'ssh root@hv-secret.dc1.example.net:22 (hv-berlin-7)';
const HOST_PARTS = ['hv-secret', 'dc1.example.net', 'hv-berlin-7', 'root@', 'ssh '];

async function failureOf(promise: Promise<unknown>): Promise<InstanceImagesError> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InstanceImagesError);
  return error as InstanceImagesError;
}

/** What a customer sees of an error: its message, fields and details. */
function customerView(error: InstanceImagesError): string {
  return JSON.stringify(error.toJSON());
}

function expectNoInfrastructure(error: InstanceImagesError, root: string): void {
  const seen = customerView(error);
  for (const part of [...HOST_PARTS, root]) expect(seen).not.toContain(part);
}

/** The operator still learns where it happened: the cause names the host. */
function expectHostInCause(error: InstanceImagesError): void {
  expect(error.cause).toBeInstanceOf(Error);
  expect((error.cause as Error).message).toContain('hv-berlin-7');
}

/** An executor whose every command ends as `result` (or throws `thrown`). */
function scriptedExecutor(outcome: { result?: ExecResult; thrown?: unknown }): Executor {
  const answer = async (): Promise<ExecResult> => {
    if (outcome.thrown !== undefined) throw outcome.thrown;
    return outcome.result ?? { exitCode: 0, stdout: '', stderr: '' };
  };
  return {
    label: LABEL,
    run: async (_argv, options) => {
      // drain stdin so a write does not wait forever on backpressure
      if (options?.stdin instanceof Readable) options.stdin.resume();
      return answer();
    },
    stream: async () => {
      if (outcome.thrown !== undefined) throw outcome.thrown;
      const result = outcome.result ?? { exitCode: 0, stdout: '', stderr: '' };
      return { stdout: Readable.from([]), done: Promise.resolve(result), kill: () => undefined };
    },
    close: async () => undefined,
  };
}

describe('path storage: customer-visible errors name no host (local executor)', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'ii-msg-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('NOT_FOUND of a missing key names the key and the image storage, not the host or the root', async () => {
    const storage = createPathStorageDriver({
      name: 'local',
      root,
      executor: createLocalExecutor({ label: LABEL }),
      capabilities: LOCAL_CAPABILITIES,
    });
    for (const read of [
      () => storage.get('images/acct/missing.qcow2'),
      () => storage.get('images/acct/missing.qcow2', { range: { start: 0, end: 9 } }),
    ]) {
      const error = await failureOf(read());
      expect(error.code).toBe('NOT_FOUND');
      expect(error.message).toContain('images/acct/missing.qcow2');
      expect(error.message).toContain('image storage');
      expectNoInfrastructure(error, root);
      expectHostInCause(error);
    }
  });
});

describe('path storage: customer-visible errors name no host (scripted executor)', () => {
  const root = '/srv/ii-secret-root';
  const full: ExecResult = { exitCode: 1, stdout: '', stderr: `cat: ${root}/images/.x.part: No space left on device\n` };

  it('STORAGE_FULL of a write (with and without an announced size) names the key, not the host, root or stderr', async () => {
    const storage = createPathStorageDriver({
      name: 'local',
      root,
      executor: scriptedExecutor({ result: full }),
      capabilities: LOCAL_CAPABILITIES,
    });
    for (const size of [undefined, 4]) {
      const error = await failureOf(
        storage.put('images/acct/new.qcow2', Readable.from([Buffer.from('abcd')]), size === undefined ? {} : { size }),
      );
      expect(error.code).toBe('STORAGE_FULL');
      expect(error.message).toContain('images/acct/new.qcow2');
      expectNoInfrastructure(error, root);
      expectHostInCause(error);
      expect((error.cause as Error).message).toContain('No space left on device');
    }
  });

  it('STORAGE_FULL of a delete or a listing names no host either', async () => {
    const storage = createPathStorageDriver({
      name: 'local',
      root,
      executor: scriptedExecutor({ result: full }),
      capabilities: LOCAL_CAPABILITIES,
    });
    for (const operation of [() => storage.delete('images/acct/old.qcow2'), () => storage.list({})]) {
      const error = await failureOf(operation());
      expect(error.code).toBe('STORAGE_FULL');
      expectNoInfrastructure(error, root);
      expectHostInCause(error);
    }
  });

  it('a cancel from the executor (whose message names the host) stays CANCELLED without the host', async () => {
    const cancelled = new InstanceImagesError('CANCELLED', `cat on ${LABEL} was cancelled`);
    const storage = createPathStorageDriver({
      name: 'local',
      root,
      executor: scriptedExecutor({ thrown: cancelled }),
      capabilities: LOCAL_CAPABILITIES,
    });
    for (const operation of [
      () => storage.get('images/a.qcow2'),
      () => storage.stat('images/a.qcow2'),
      () => storage.delete('images/a.qcow2'),
    ]) {
      const error = await failureOf(operation());
      expect(error.code).toBe('CANCELLED');
      expectNoInfrastructure(error, root);
      expect(error.cause).toBe(cancelled);
    }
  });

  it('an unusable SSH key of the hypervisor (VALIDATION_FAILED naming the host) is STORAGE_UNAVAILABLE, never shown to customers as an input error', async () => {
    const badKey = new InstanceImagesError('VALIDATION_FAILED', `${LABEL}: the private key cannot be used (bad passphrase)`, {
      fields: [{ path: 'privateKey', message: 'cannot be parsed' }],
    });
    const storage = createPathStorageDriver({
      name: 'local',
      root,
      executor: scriptedExecutor({ thrown: badKey }),
      capabilities: LOCAL_CAPABILITIES,
    });
    const error = await failureOf(storage.delete('images/a.qcow2'));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.cause).toBe(badKey);
  });

  it('nfs: the mount check maps a cancel and an unusable key the same way', async () => {
    const options = NfsStorageOptionsSchema.parse({
      server: 'nas.example.net',
      exportPath: '/export/images',
      mountPoint: '/mnt/ii-secret',
    });
    const cancelled = new InstanceImagesError('CANCELLED', `findmnt on ${LABEL} was cancelled`);
    const cancelledError = await failureOf(createNfsStorageDriver(options, scriptedExecutor({ thrown: cancelled })).stat('images/a.qcow2'));
    expect(cancelledError.code).toBe('CANCELLED');
    expectNoInfrastructure(cancelledError, '/mnt/ii-secret');
    const badKey = new InstanceImagesError('VALIDATION_FAILED', `${LABEL}: the private key cannot be used`);
    const keyError = await failureOf(createNfsStorageDriver(options, scriptedExecutor({ thrown: badKey })).stat('images/a.qcow2'));
    expect(keyError.code).toBe('STORAGE_UNAVAILABLE');
  });
});
