/**
 * Fault test: radosgw stops answering in the middle of a multipart upload (SIGSTOP: the kernel
 * still accepts connections and bytes, nothing answers — as a hung radosgw, or a full Ceph cluster
 * blocking writes). The put must fail with STORAGE_UNAVAILABLE after the storage's short
 * no-progress timeout while radosgw is still frozen, the health check must say unavailable instead
 * of hanging, and once radosgw runs again no multipart upload is left (the one the driver could not
 * abort is found and aborted the way reconcile does it) and a later put is stored.
 *
 * The radosgw is the shared one: it is frozen only from the first stored part until the put and
 * the health check have failed (a few timeouts of 3 s), thawed in a `finally`, and a safety timer
 * thaws it should the put hang. Integration files run one at a time (vitest.config.ts), so no other
 * file's requests meet the frozen radosgw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriver } from '../../../src/ports/storage-driver';
import { digestStream, randomData, streamOf } from './data';
import {
  driverOptions,
  ensureRadosgwUp,
  freezeRadosgw,
  loadS3TestEnv,
  openMultipartUploads,
  processState,
  radosgwPid,
  useTestBucket,
  waitForRadosgw,
} from './s3-env';

const MiB = 1024 * 1024;
/** The storage's no-progress timeout in this test. */
const TIMEOUT_MS = 3000;
/** Thaws radosgw whatever happens: far beyond the few timeouts the failure takes, far below the test's own timeout. */
const SAFETY_THAW_MS = 45_000;
const loaded = await loadS3TestEnv();

describe.skipIf(loaded.env === null)(
  `s3 driver when radosgw stops answering mid-upload${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`,
  () => {
    const env = loaded.env!;
    const s3 = useTestBucket(env, 's3stall');
    const { bucket } = s3;
    let driver: StorageDriver;
    let thaw: (() => void) | undefined;

    beforeAll(async () => {
      driver = s3StorageDriver.create(
        driverOptions(env, bucket, {
          prefix: 'stall',
          partSizeBytes: 5 * MiB,
          queueSize: 2,
          noProgressTimeoutMs: TIMEOUT_MS,
          connectionTimeoutMs: TIMEOUT_MS,
        }),
        {},
      );
      // A worker that dies with radosgw frozen must not leave it frozen for everyone else.
      process.once('exit', () => thaw?.());
    });

    afterAll(async () => {
      thaw?.();
      await ensureRadosgwUp(env.endpoint);
      await driver.close?.();
    });

    it(
      'fails the put with STORAGE_UNAVAILABLE within the timeout, leaves no multipart upload, and stores a later put',
      { timeout: 120_000 },
      async () => {
        const key = 'frozen/disk.qcow2';
        const { data } = randomData(30 * MiB);
        const pid = radosgwPid();
        let safety: NodeJS.Timeout | undefined;
        let caught: unknown;
        let stateAtFailure: string | null | undefined;
        let health: { ok: boolean; message: string } | undefined;
        let stateAfterHealth: string | null | undefined;
        try {
          const onProgress = (): void => {
            // The first part is stored: the multipart upload exists and more parts are on their way.
            if (thaw !== undefined) return;
            thaw = freezeRadosgw();
            safety = setTimeout(() => thaw?.(), SAFETY_THAW_MS);
          };
          try {
            await driver.put(key, streamOf(data), { size: data.length, onProgress } as never);
          } catch (error) {
            caught = error;
          }
          stateAtFailure = processState(pid);
          health = await driver.health();
          stateAfterHealth = processState(pid);
        } finally {
          clearTimeout(safety);
          thaw?.();
        }

        expect(thaw).toBeDefined();
        // Both failed while radosgw was still frozen: on the timeout, not because it came back.
        expect(stateAtFailure).toBe('T');
        expect(stateAfterHealth).toBe('T');
        expect(caught).toBeInstanceOf(InstanceImagesError);
        const error = caught as InstanceImagesError;
        expect(error.code).toBe('STORAGE_UNAVAILABLE');
        expect(error.details).toMatchObject({ timeout: 'no-progress', timeoutMs: TIMEOUT_MS });
        expect(error.message).toContain(`S3 bucket "${bucket}" at ${env.endpoint} did not answer for 3 s`);
        expect(error.message).toContain('radosgw');
        expect(error.message).toContain('full');
        expect(JSON.stringify({ message: error.message, details: error.details })).not.toContain(env.secretAccessKey);
        // The abort could not reach the frozen radosgw either: the error names the upload left.
        expect(error.details.incompleteUpload).toEqual({ key, id: expect.any(String) });
        const reported = (error.details.incompleteUpload as { id: string }).id;
        expect(health?.ok).toBe(false);
        expect(health?.message).toContain(`at ${env.endpoint} did not answer for 3 s`);

        await waitForRadosgw(env.endpoint);
        // radosgw works through what queued up while it was frozen (the driver's dropped requests may
        // include its abort); what is still open is the reported upload, found and aborted as reconcile does.
        const left = await driver.listIncomplete();
        expect(left.filter((upload) => upload.id !== reported)).toEqual([]);
        for (const upload of left) await driver.abortIncomplete(upload);
        expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
        expect(await driver.stat(key)).toBeNull();

        // The same driver works normally again.
        expect(await driver.health()).toMatchObject({ ok: true });
        const after = randomData(12 * MiB);
        expect(await driver.put('frozen/after.bin', streamOf(after.data), { size: after.data.length })).toEqual({
          size: after.data.length,
        });
        expect(await digestStream(await driver.get('frozen/after.bin'))).toEqual({ sha256: after.sha256, size: after.data.length });
        expect(await openMultipartUploads(s3.admin, bucket)).toEqual([]);
      },
    );
  },
);
