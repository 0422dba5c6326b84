import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { InstanceImagesError } from '../../../src/errors';
import { parseManifest, standaloneSize } from '../../../src/chunks';
import { admin, alice, bob, codeOf } from './setup';
import { capture, CHUNK, ROOT, setupChunked, VIRTUAL } from './chunked-setup';

describe('chunked storages: capture, recapture, deploy, delete', () => {
  it('captures into chunks: a raw image sized as its chunks, a manifest as its file, billed at the standalone size', async () => {
    const h = await setupChunked();
    const image = await capture(h, 'c-1', 'first');
    expect(image.status).toBe('available');
    expect(image.format).toBe('raw');
    expect(image.fileKey).toMatch(/^images\/acct-alice\/.+\.manifest\.json$/);
    expect(image.storageId).toBe(h.chunkedStorageId);
    expect(image.virtualSizeBytes).toBe(VIRTUAL);
    // chunks 0-4 hold data, 5-15 are zero and never stored
    expect(image.sizeBytes).toBe(5 * CHUNK);
    expect(h.chunkKeys()).toHaveLength(5);
    expect(h.leaseKeys()).toEqual([]);
    const manifest = parseManifest(h.world.files.get(`${ROOT}:${image.fileKey}`)!.bytes);
    expect(image.sha256).toBe(manifest.imageSha256);
    expect(standaloneSize(manifest)).toBe(image.sizeBytes);
    expect(manifest.source).toMatchObject({ hypervisorId: 'hv-1', domainName: 'dom-c-1' });
    expect(manifest.source?.checkpoint).toBeTruthy();
    expect(h.world.domains.get('dom-c-1')?.checkpoints?.has(manifest.source!.checkpoint!)).toBe(true);
    const usage = await h.ii.repositories.usage.list({ imageId: image.id });
    expect(usage.items).toMatchObject([{ sizeBytes: 5 * CHUNK, to: null }]);
    const task = (await h.ii.images.listTasks(alice, { subjectId: image.id })).items[0];
    expect(task?.progress).toMatchObject({ percent: 100, bytesDone: VIRTUAL, bytesTotal: VIRTUAL });
  });

  it('deploys a chunked image byte for byte', async () => {
    const h = await setupChunked();
    const image = await capture(h, 'c-1', 'first');
    expect((await h.deployBytes(image)).equals(h.world.guestDisk('dom-c-1'))).toBe(true);
  });

  it('recaptures incrementally: only the chunks written since the last image are read and uploaded', async () => {
    const h = await setupChunked();
    const first = await capture(h, 'c-1', 'first');
    const before = h.world.guestDisk('dom-c-1');
    h.world.writeDisk('dom-c-1', 3 * CHUNK + 100, randomBytes(CHUNK / 2));
    const uploadsBefore = h.chunkKeys().length;
    const second = await capture(h, 'c-1', 'second');
    expect(second.status).toBe('available');
    const reads = h.world.chunkReads[1]!;
    expect(reads.filter((r) => r.kind === 'data').map((r) => r.index)).toEqual([3]);
    expect(reads.filter((r) => r.kind === 'unchanged')).toHaveLength(15);
    expect(h.chunkKeys().length - uploadsBefore).toBe(1);
    // both images stay standalone
    expect((await h.deployBytes(second)).equals(h.world.guestDisk('dom-c-1'))).toBe(true);
    expect((await h.deployBytes(first)).equals(before)).toBe(true);
  });

  it('deduplicates a full read: a second instance with the same bytes uploads nothing new', async () => {
    const h = await setupChunked();
    await capture(h, 'c-1', 'first');
    const other = await capture(h, 'c-2', 'other');
    expect(h.world.chunkReads[1]!.some((r) => r.kind === 'unchanged')).toBe(false);
    expect(h.chunkKeys()).toHaveLength(5);
    expect(other.sizeBytes).toBe(5 * CHUNK);
    const health = await h.ii.storages.checkHealth(admin, h.chunkedStorageId);
    expect(health.chunks).toEqual({
      manifests: 2,
      chunks: 5,
      logicalBytes: 10 * CHUNK,
      uniqueBytes: 5 * CHUNK,
      dedupRatio: '2.00',
      unreadableManifests: 0,
    });
  });

  it('deleting an intermediate image keeps the others deployable, deletes its checkpoint and stops its billing', async () => {
    const h = await setupChunked();
    const a = await capture(h, 'c-1', 'a');
    const diskA = h.world.guestDisk('dom-c-1');
    h.world.writeDisk('dom-c-1', 1 * CHUNK, randomBytes(CHUNK));
    const b = await capture(h, 'c-1', 'b');
    h.world.writeDisk('dom-c-1', 7 * CHUNK, randomBytes(CHUNK));
    const c = await capture(h, 'c-1', 'c');
    const diskC = h.world.guestDisk('dom-c-1');
    expect(h.world.chunkReads[2]!.filter((r) => r.kind === 'data').map((r) => r.index)).toEqual([7]);
    const checkpointB = parseManifest(h.world.files.get(`${ROOT}:${b.fileKey}`)!.bytes).source!.checkpoint!;

    await h.ii.images.deleteImage(alice, b.id);
    await h.ii.idle();
    expect((await h.ii.repositories.images.get(b.id))?.status).toBe('deleted');
    expect(h.has(b.fileKey)).toBe(false);
    expect(h.world.deletedCheckpoints).toEqual([`dom-c-1/${checkpointB}`]);
    expect((await h.ii.repositories.usage.list({ imageId: b.id })).items.every((i) => i.to !== null)).toBe(true);

    const gc = await h.ii.storages.collectGarbage(admin, h.chunkedStorageId);
    await h.ii.idle();
    expect((await h.ii.images.getTask(admin, gc.id)).status).toBe('completed');
    // nothing is collected: c took b's version of chunk 1 unchanged and names it itself
    expect(h.chunkKeys()).toHaveLength(5 + 1 + 1);
    expect((await h.deployBytes(a)).equals(diskA)).toBe(true);
    expect((await h.deployBytes(c)).equals(diskC)).toBe(true);
  });

  it('garbage collection after deleting every image leaves no chunk, and is for admins on chunked storages only', async () => {
    const h = await setupChunked();
    const a = await capture(h, 'c-1', 'a');
    const b = await capture(h, 'c-2', 'b');
    expect(await codeOf(h.ii.storages.collectGarbage(alice, h.chunkedStorageId))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.storages.collectGarbage(admin, h.storageId))).toBe('INVALID_STATE');
    await h.ii.images.deleteImage(alice, a.id);
    await h.ii.idle();
    const dry = await h.ii.storages.collectGarbage(admin, h.chunkedStorageId, { dryRun: true });
    await h.ii.idle();
    expect((await h.ii.images.getTask(admin, dry.id)).type).toBe('chunk-gc');
    expect(h.chunkKeys()).toHaveLength(5);
    await h.ii.images.deleteImage(alice, b.id);
    await h.ii.idle();
    await h.ii.storages.collectGarbage(admin, h.chunkedStorageId);
    await h.ii.idle();
    expect(h.chunkKeys()).toEqual([]);
  });

  it('cancelling mid-capture leaves no manifest and no lease; the chunks already stored go at the next GC', async () => {
    const h = await setupChunked();
    let release = () => undefined as void;
    h.world.midCaptureGate = new Promise<void>((resolve) => (release = resolve));
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'c-1', name: 'cancelled' });
    while ((h.world.chunkReads[0]?.length ?? 0) < 5) await new Promise((resolve) => setTimeout(resolve, 5));
    await h.ii.images.cancelCapture(alice, image.id);
    await h.ii.idle();
    release();
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('CANCELLED');
    expect(h.has(image.fileKey)).toBe(false);
    expect(h.leaseKeys()).toEqual([]);
    expect(h.chunkKeys().length).toBeGreaterThan(0);
    await h.ii.storages.collectGarbage(admin, h.chunkedStorageId);
    await h.ii.idle();
    expect(h.chunkKeys()).toEqual([]);
  });

  it('the image is available before the capture job has ended; the task ends after it', async () => {
    const h = await setupChunked();
    let end = () => undefined as void;
    h.world.chunkJobEnd = new Promise<void>((resolve) => (end = resolve));
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'c-1', name: 'first' });
    await vi.waitFor(async () => expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available'));
    expect(h.world.endedLater).toEqual(['dom-c-1']);
    expect((await h.ii.images.getTask(alice, task.id)).status).toBe('running');
    end();
    await h.ii.idle();
    expect((await h.ii.images.getTask(alice, task.id)).status).toBe('completed');
    expect(h.leaseKeys()).toEqual([]);
    expect(h.world.recoveries).toEqual([]);
  });

  it('a capture job that fails to end leaves the image available and has the domain recovered', async () => {
    const h = await setupChunked();
    h.world.chunkJobEnd = Promise.reject(new InstanceImagesError('COMMAND_FAILED', 'virsh domjobabort failed'));
    const image = await capture(h, 'c-1', 'first');
    expect(image.status).toBe('available');
    expect(h.world.recoveries).toEqual([{ hypervisorId: 'hv-1', domainName: 'dom-c-1' }]);
    const manifest = parseManifest(h.world.files.get(`${ROOT}:${image.fileKey}`)!.bytes);
    expect(h.world.domains.get('dom-c-1')?.checkpoints?.has(manifest.source!.checkpoint!)).toBe(true);
    expect((await h.deployBytes(image)).equals(h.world.guestDisk('dom-c-1'))).toBe(true);
  });

  it('a capture cancelled after its chunks were read deletes its checkpoint only once the job ended', async () => {
    const h = await setupChunked();
    let end = () => undefined as void;
    h.world.chunkJobEnd = new Promise<void>((resolve) => (end = resolve));
    let cancel = async () => undefined as void;
    h.world.afterChunksConsumed = () => cancel();
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'c-1', name: 'cancelled' });
    cancel = async () => void (await h.ii.images.cancelCapture(alice, image.id));
    await vi.waitFor(() => expect(h.world.endedLater).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(h.world.deletedCheckpoints).toEqual([]);
    end();
    await h.ii.idle();
    expect((await h.ii.images.getTask(alice, task.id)).status).toBe('cancelled');
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('error');
    expect(h.world.deletedCheckpoints).toHaveLength(1);
    expect(h.has(image.fileKey)).toBe(false);
    expect(h.leaseKeys()).toEqual([]);
  });

  it('a failed capture keeps nothing and a retry stores the image', async () => {
    const h = await setupChunked();
    h.world.failNextCapture = 'CAPTURE_FAILED';
    const failed = await capture(h, 'c-1', 'flaky');
    expect(failed.status).toBe('error');
    expect(h.has(failed.fileKey)).toBe(false);
    const { image } = await h.ii.images.retryImage(alice, failed.id);
    expect(image.fileKey).toMatch(/\.manifest\.json$/);
    await h.ii.idle();
    const done = await h.ii.images.getImage(alice, image.id);
    expect(done.status).toBe('available');
    expect((await h.deployBytes(done)).equals(h.world.guestDisk('dom-c-1'))).toBe(true);
  });
});

describe('chunked storages: accounts, verify, browse', () => {
  it('per-account scope: identical disks of two accounts share no chunk, and no account deploys the other one', async () => {
    const h = await setupChunked({ scope: 'account' });
    const mine = await capture(h, 'c-1', 'mine');
    const theirs = await capture(h, 'c-bob', 'theirs', 'acct-bob');
    const keys = h.chunkKeys();
    expect(keys.filter((k) => k.startsWith('accounts/acct-alice/chunks/'))).toHaveLength(5);
    expect(keys.filter((k) => k.startsWith('accounts/acct-bob/chunks/'))).toHaveLength(5);
    const manifest = parseManifest(h.world.files.get(`${ROOT}:${theirs.fileKey}`)!.bytes);
    expect(manifest.scope).toEqual({ kind: 'account', accountId: 'acct-bob' });
    expect(await codeOf(h.ii.images.getImage(bob, mine.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.deployBytes(mine, 'target-bob'))).toBe('NOT_FOUND');
    expect((await h.deployBytes(theirs, 'target-bob')).equals(h.world.guestDisk('dom-c-bob'))).toBe(true);
  });

  it('verify puts an image whose chunk is missing into error with a customer-readable reason and stops its billing', async () => {
    const h = await setupChunked();
    const image = await capture(h, 'c-1', 'broken');
    h.world.writeDisk('dom-c-bob', 0, randomBytes(CHUNK));
    const other = await capture(h, 'c-bob', 'unrelated', 'acct-bob');
    // the first chunk of alice's image (bob's image has another one there)
    const gone = parseManifest(h.world.files.get(`${ROOT}:${image.fileKey}`)!.bytes).chunks[0]!.sha256;
    expect(h.world.files.delete(`${ROOT}:chunks/${gone.slice(0, 2)}/${gone}`)).toBe(true);
    const task = await h.ii.storages.verifyChunks(admin, h.chunkedStorageId);
    await h.ii.idle();
    expect((await h.ii.images.getTask(admin, task.id)).status).toBe('completed');
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('IMAGE_DATA_MISSING');
    expect(failed.statusReason?.message).not.toMatch(/chunk|[0-9a-f]{64}/);
    expect((await h.ii.repositories.usage.list({ imageId: image.id })).items.every((i) => i.to !== null)).toBe(true);
    expect((await h.ii.images.getImage(bob, other.id)).status).toBe('available');
  });

  it('browse and reconcile take manifests for the images and never report chunks or leases as orphans', async () => {
    const h = await setupChunked();
    const image = await capture(h, 'c-1', 'browsed');
    const page = await h.ii.storages.browse(admin, h.chunkedStorageId, { limit: 100 });
    expect(page.chunks).toMatchObject({ manifests: 1, chunks: 5, uniqueBytes: 5 * CHUNK });
    expect(page.items.find((i) => i.key === image.fileKey)).toMatchObject({ kind: 'ok', imageId: image.id });
    expect(page.items.filter((i) => i.kind !== 'ok')).toEqual([]);
    h.world.files.set(`${ROOT}:chunk-leases/some-task.json`, { bytes: Buffer.from('{}'), modifiedAt: new Date() });
    const findings = await h.ii.storages.reconcile(admin, h.chunkedStorageId, { deleteOrphans: true, dryRun: false });
    expect(findings).toEqual([]);
    expect(h.chunkKeys()).toHaveLength(5);
  });

  it('the usage report of a chunked image has the same shape as a files image, at the standalone size', async () => {
    const h = await setupChunked();
    await h.ii.storages.updateStorage(admin, h.storageId, { enabled: true });
    await h.ii.storages.updateStorage(admin, h.chunkedStorageId, { enabled: false });
    const files = await capture(h, 'web-1', 'files');
    await h.ii.storages.updateStorage(admin, h.storageId, { enabled: false });
    await h.ii.storages.updateStorage(admin, h.chunkedStorageId, { enabled: true });
    const chunked = await capture(h, 'c-1', 'chunked');
    expect(chunked.storageId).toBe(h.chunkedStorageId);
    h.clock.now = new Date(h.clock.now.getTime() + 3_600_000);
    const report = await h.ii.settings.usageReport(alice, { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    const lineOf = (id: string) => report.images.lines.find((l) => l.imageId === id)!;
    expect(Object.keys(lineOf(chunked.id)).sort()).toEqual(Object.keys(lineOf(files.id)).sort());
    expect(JSON.stringify(lineOf(chunked.id))).toContain(String(5 * CHUNK));
  });
});
