/**
 * A live capture of a running guest over SSH, streamed into the real radosgw through the S3 driver
 * behind the storage wrapper (what the image service does for an S3 storage). The output is
 * checked (`qemu-img info`/`check`) while it streams: the consumer's first bytes arrive before the
 * check has finished, and its stream ends only once the output passed. An output found damaged
 * fails the consumer's stream before its end, so nothing is kept: no object, no multipart upload,
 * no scratch file, no job; a cancel mid-stream leaves nothing either.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshExecutor, type SshExecutor } from '../../../drivers/exec/ssh';
import type { LibvirtDriverOptions } from '../../../drivers/hypervisor/libvirt';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { wrapStorageDriver, type StorageDisk } from '../../../src/storage';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { allObjectKeys, driverOptions, loadS3TestEnv, openMultipartUploads, useTestBucket } from '../storage-s3/s3-env';
import { freshScratchDir, leftovers, libvirtSkipReason, makeDriver, recordGuest, wipeL1 } from './setup';

const MiB = 1024 * 1024;
/** Random data on the guest's disk: several 8 MiB parts, so that the put is a multipart upload. */
const DATA_MIB = 40;

const loaded = await loadS3TestEnv();
const target = await sshTarget();
const skip = libvirtSkipReason() ?? (loaded.env === null ? loaded.missing : 'skip' in target ? target.skip : null);

describe.skipIf(skip !== null)(`live capture over SSH into radosgw${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const env = loaded.env!;
  const s3 = useTestBucket(env, 'capture-s3');
  let guest: TestGuest;
  let scratch: string;
  let executor: SshExecutor;
  let disk: StorageDisk;

  beforeAll(() => {
    if ('skip' in target) throw new Error(target.skip);
    scratch = freshScratchDir('capture-s3');
    executor = createSshExecutor(target.connection);
    disk = wrapStorageDriver(s3StorageDriver.create(driverOptions(env, s3.bucket), {}));
    guest = createTestGuest({ start: false, diskMiB: 128, writes: [], cdrom: false, agentChannel: false });
    const random = `${guest.dir}/random.raw`;
    execFileSync('dd', ['if=/dev/urandom', `of=${random}`, 'bs=4M', `count=${DATA_MIB / 4}`, 'status=none']);
    execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', random, guest.primaryPath]);
    rmSync(random);
    virsh('start', '--domain', guest.name);
  });

  afterAll(async () => {
    guest?.remove();
    await executor?.close();
    await disk?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A pull-backup driver over SSH whose stage events are recorded in order. */
  const driverWithStages = (options: LibvirtDriverOptions = {}) => {
    const events: string[] = [];
    const driver = makeDriver(
      scratch,
      { method: 'pull-backup', ...options, hooks: { ...options.hooks, stage: ({ stage, phase }) => events.push(`${stage}:${phase}`) } },
      executor,
    );
    return { driver, events };
  };

  it('checks the output while it streams, ends the stream once it passed, and stores exactly the captured bytes', async () => {
    const before = recordGuest(guest.name);
    const { driver, events } = driverWithStages();
    let atFirstBytes: string[] | null = null;
    let stored: { size: number; sha256: string } | null = null;
    const result = await driver.capture({
      domainName: guest.name,
      output: {
        kind: 'stream',
        consume: async (stream: Readable, size) => {
          stream.once('data', () => (atFirstBytes = [...events]));
          stored = await disk.put('images/live.qcow2', stream, { size });
        },
      },
    });
    // The check started before the bytes flowed and had not finished when the first ones arrived.
    expect(atFirstBytes).toContain('check:start');
    expect(atFirstBytes).not.toContain('check:end');
    expect(events.indexOf('check:end')).toBeLessThan(events.indexOf('transfer:end'));
    expect(stored).toEqual(expect.objectContaining({ size: result.sizeBytes, sha256: result.sha256 }));
    const object = await s3.admin.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'images/live.qcow2' }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    expect(bytes.length).toBe(result.sizeBytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(result.sha256);
    expect(result.sizeBytes).toBeGreaterThan(DATA_MIB * MiB);
    expect(await openMultipartUploads(s3.admin, s3.bucket)).toEqual([]);
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('fails the stream of an output damaged after it was written: CAPTURE_FAILED, no object, no multipart upload, nothing left', async () => {
    const before = recordGuest(guest.name);
    const { driver } = driverWithStages({ hooks: { afterOutputWritten: ({ path }) => wipeL1(path) } });
    let passed = 0;
    let putError: unknown;
    const capture = driver.capture({
      domainName: guest.name,
      output: {
        kind: 'stream',
        consume: async (stream: Readable, size) => {
          try {
            await disk.put('images/damaged.qcow2', stream, { size, onProgress: ({ bytesDone }) => (passed = bytesDone) });
          } catch (error) {
            putError = error;
            throw error;
          }
        },
      },
    });
    await expect(capture).rejects.toMatchObject({ code: 'CAPTURE_FAILED', message: expect.stringMatching(/not complete/) });
    // The bytes went on to the storage (more than a part: a multipart upload), which was then refused.
    expect(passed).toBeGreaterThan(16 * MiB);
    expect(putError).toBeDefined();
    expect((await allObjectKeys(s3.admin, s3.bucket)).filter((key) => key.includes('damaged'))).toEqual([]);
    expect(await openMultipartUploads(s3.admin, s3.bucket)).toEqual([]);
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a cancel mid-stream ends with CANCELLED and leaves no object, multipart upload, scratch file or job', async () => {
    const before = recordGuest(guest.name);
    const { driver } = driverWithStages();
    const controller = new AbortController();
    const capture = driver.capture({
      domainName: guest.name,
      signal: controller.signal,
      output: {
        kind: 'stream',
        consume: async (stream: Readable, size) => {
          await disk.put('images/cancelled.qcow2', stream, {
            size,
            signal: controller.signal,
            onProgress: ({ bytesDone }) => {
              if (bytesDone >= 12 * MiB) controller.abort();
            },
          });
        },
      },
    });
    await expect(capture).rejects.toMatchObject({ code: 'CANCELLED' });
    expect((await allObjectKeys(s3.admin, s3.bucket)).filter((key) => key.includes('cancelled'))).toEqual([]);
    expect(await openMultipartUploads(s3.admin, s3.bucket)).toEqual([]);
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });
});
