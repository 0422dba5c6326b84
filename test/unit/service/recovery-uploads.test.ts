/**
 * Recovery of a capture whose process died mid-upload: the object store still holds the
 * incomplete (multipart) upload meant for the image's file, which only an abort removes. Recovery
 * aborts it, and only it: another image's upload in progress is left alone.
 */
import { describe, expect, it } from 'vitest';
import { createInstanceImages, type IncompleteUpload, type StorageDriverFactory } from '../../../src';
import { makeImage, makeTask } from '../../../src/testing';
import { setup } from './setup';

describe('recovery of a capture killed mid-upload', () => {
  it("aborts the incomplete upload of the interrupted image's file, and no other", async () => {
    const h = await setup();
    const uploads: IncompleteUpload[] = [
      { key: 'images/crashed.qcow2', id: 'upload-of-the-dead-capture', startedAt: new Date(0) },
      { key: 'images/alive.qcow2', id: 'upload-of-a-live-capture', startedAt: new Date(0) },
    ];
    // The same fake storage, with multipart uploads (S3 lists them by the key they are meant for).
    const base = h.world.storageFactory('fake-s3', { shared: true, pathAccess: false });
    const withUploads: StorageDriverFactory<{ root: string }> = {
      ...base,
      create: (options, context) => ({
        ...base.create(options, context),
        listIncomplete: async () => [...uploads],
        abortIncomplete: async (upload) => {
          const at = uploads.findIndex((u) => u.id === upload.id);
          if (at >= 0) uploads.splice(at, 1);
        },
      }),
    };
    const image = makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null, fileKey: 'images/crashed.qcow2' });
    await h.ii.repositories.images.insert(image);
    const task = makeTask({
      subjectId: image.id,
      status: 'running',
      heartbeatAt: new Date('2026-11-01T00:00:00Z'),
      accountId: 'acct-alice',
    });
    await h.ii.repositories.tasks.insert(task);

    // Another panel process over the same repositories recovers the dead capture.
    const other = createInstanceImages({
      hostDirectory: h.world.hostDirectory(),
      executors: h.world.executors(),
      hypervisorDriver: h.world.hypervisorFactory(),
      storageDrivers: [withUploads as StorageDriverFactory],
      repositories: h.ii.repositories,
      tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
      clock: () => new Date(h.clock.now.getTime()),
    });
    const report = await other.recover();
    expect(report.interruptedTasks).toEqual([task.id]);
    expect((await h.ii.repositories.images.get(image.id))?.statusReason?.code).toBe('INTERRUPTED');
    expect(uploads.map((u) => u.id)).toEqual(['upload-of-a-live-capture']);
    expect(report.removedFiles).toContain('images/crashed.qcow2 (incomplete upload upload-of-the-dead-capture)');
    await other.close();
    await h.ii.close();
  });
});
