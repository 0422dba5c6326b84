import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src';
import { zstdAvailable } from '../../../src/services/chunked-storage';
import { makeImage, makeTask } from '../../../src/testing';
import { admin, setup } from './setup';
import { capture, ROOT, setupChunked } from './chunked-setup';

async function fieldsOf(promise: Promise<unknown>): Promise<{ code: string; paths: string[] }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof InstanceImagesError) return { code: error.code, paths: error.fields.map((f) => f.path) };
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('the chunked layout of a storage', () => {
  it('defaults to files and fills the chunked defaults', async () => {
    const h = await setup();
    expect((await h.ii.storages.getStorage(admin, h.storageId)).layout).toBe('files');
    const chunked = await h.ii.storages.createStorage(admin, { name: 'c', driver: 'fake-s3', config: { root: 'c' }, layout: 'chunks' });
    expect(chunked).toMatchObject({ layout: 'chunks', chunks: { scope: 'storage', codec: 'none', chunkSizeBytes: 4 * 2 ** 20 } });
  });

  it('is refused on a driver with path access, for templates, with a chunk size that is not a power of two', async () => {
    const h = await setup();
    const local = { name: 'l', driver: 'fake-local', config: { root: '/x' } };
    expect(await fieldsOf(h.ii.storages.createStorage(admin, { ...local, layout: 'chunks' }))).toEqual({
      code: 'VALIDATION_FAILED',
      paths: ['layout'],
    });
    const s3 = { name: 's', driver: 'fake-s3', config: { root: 's' } };
    expect(await fieldsOf(h.ii.storages.createStorage(admin, { ...s3, purpose: 'templates', layout: 'chunks' }))).toEqual({
      code: 'VALIDATION_FAILED',
      paths: ['layout'],
    });
    expect(
      await fieldsOf(h.ii.storages.createStorage(admin, { ...s3, layout: 'chunks', chunks: { chunkSizeBytes: 3 * 2 ** 20 } })),
    ).toEqual({ code: 'VALIDATION_FAILED', paths: ['chunks.chunkSizeBytes'] });
    const existing = await h.ii.storages.createStorage(admin, local);
    expect(await fieldsOf(h.ii.storages.updateStorage(admin, existing.id, { layout: 'chunks' }))).toEqual({
      code: 'VALIDATION_FAILED',
      paths: ['layout'],
    });
  });

  // Node 20 has no zstd in zlib, Node ≥ 22.15 has: each runtime checks its own answer, none is skipped.
  it('accepts zstd where zlib has it, and refuses it elsewhere naming the field', async () => {
    const h = await setup();
    const input = { name: 'z', driver: 'fake-s3', config: { root: 'z' }, layout: 'chunks' as const, chunks: { codec: 'zstd' as const } };
    if (zstdAvailable())
      expect(await h.ii.storages.createStorage(admin, input)).toMatchObject({ layout: 'chunks', chunks: { codec: 'zstd' } });
    else expect(await fieldsOf(h.ii.storages.createStorage(admin, input))).toEqual({ code: 'VALIDATION_FAILED', paths: ['chunks.codec'] });
  });

  it('cannot change while the storage holds images; its chunk settings can', async () => {
    const h = await setupChunked();
    await h.ii.storages.updateStorage(admin, h.storageId, { layout: 'chunks' });
    await h.ii.storages.updateStorage(admin, h.storageId, { layout: 'files' });
    await capture(h, 'c-1', 'held');
    expect(await fieldsOf(h.ii.storages.updateStorage(admin, h.chunkedStorageId, { layout: 'files' }))).toEqual({
      code: 'IN_USE',
      paths: [],
    });
    const updated = await h.ii.storages.updateStorage(admin, h.chunkedStorageId, { chunks: { scope: 'account' } });
    expect(updated).toMatchObject({ layout: 'chunks', chunks: { scope: 'account' } });
  });

  it('refreshing the size of a chunked image keeps its standalone size, not the manifest file size', async () => {
    const h = await setupChunked();
    const image = await capture(h, 'c-1', 'sized');
    const { image: refreshed } = await h.ii.settings.refreshImageSize(admin, image.id);
    expect(refreshed.sizeBytes).toBe(image.sizeBytes);
    expect((await h.ii.repositories.usage.list({ imageId: image.id })).items).toMatchObject([{ sizeBytes: image.sizeBytes, to: null }]);
  });

  it('after the dedup scope changed, a recapture reads the whole disk instead of taking chunks from another scope', async () => {
    const h = await setupChunked();
    await capture(h, 'c-1', 'storage-wide');
    await h.ii.storages.updateStorage(admin, h.chunkedStorageId, { chunks: { scope: 'account', chunkSizeBytes: 64 * 1024 } });
    const again = await capture(h, 'c-1', 'per-account');
    expect(again.status).toBe('available');
    expect(h.world.chunkReads[1]!.some((r) => r.kind === 'unchanged')).toBe(false);
    expect(h.chunkKeys().filter((k) => k.startsWith('accounts/acct-alice/chunks/'))).toHaveLength(5);
  });

  it('recovery releases the chunk lease of an interrupted capture', async () => {
    const h = await setupChunked();
    const image = makeImage({
      accountId: 'acct-alice',
      storageId: h.chunkedStorageId,
      hypervisorId: null,
      sourceInstanceId: 'c-1',
      fileKey: 'images/acct-alice/x.manifest.json',
      format: 'raw',
    });
    await h.ii.repositories.images.insert(image);
    const task = makeTask({
      subjectId: image.id,
      status: 'running',
      accountId: 'acct-alice',
      heartbeatAt: new Date(h.clock.now.getTime() - 5 * 60_000),
    });
    await h.ii.repositories.tasks.insert(task);
    h.world.files.set(`${ROOT}:chunk-leases/${task.id}.json`, { bytes: Buffer.from('{"digests":[]}'), modifiedAt: new Date() });
    const report = await h.ii.recover();
    expect(report.interruptedTasks).toEqual([task.id]);
    expect(h.leaseKeys()).toEqual([]);
  });
});
