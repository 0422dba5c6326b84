import { randomBytes } from 'node:crypto';
import type { Image } from '../../../src';
import type { Repositories } from '../../../src/ports/repositories';
import { admin, setup, type Harness } from './setup';

/** 64 KiB chunks on a 1 MiB disk: 16 chunks. */
export const CHUNK = 64 * 1024;
export const VIRTUAL = 16 * CHUNK;
/** The fake storage's root of the chunked storage (its objects are `chunked:<key>` in the world). */
export const ROOT = 'chunked';

export interface ChunkedHarness extends Harness {
  chunkedStorageId: string;
  /** Keys of the chunk objects stored now. */
  chunkKeys(): string[];
  /** Keys of the lease objects stored now. */
  leaseKeys(): string[];
  /** Whether an object exists at a key of the chunked storage. */
  has(key: string): boolean;
  /** Deploys an image as alice's (or the given actor's) instance and returns the disk written. */
  deployBytes(image: Image, instanceId?: string): Promise<Buffer>;
}

/**
 * The service harness with a chunked storage (on the fake S3 driver) as the only enabled storage
 * bound to hv-1, and instances `c-1` (alice), `c-2` (alice) and `c-bob` (bob) whose 1 MiB disks
 * hold data in chunks 0-4 (c-2 and c-bob: the same bytes as c-1, as if deployed from one image).
 */
export async function setupChunked(options: { scope?: 'storage' | 'account'; repositories?: Repositories } = {}): Promise<ChunkedHarness> {
  const h = await setup({ limit: null, ...(options.repositories ? { repositories: options.repositories } : {}) });
  await h.ii.storages.updateStorage(admin, h.storageId, { enabled: false });
  const storage = await h.ii.storages.createStorage(admin, {
    name: 'chunked-s3',
    driver: 'fake-s3',
    config: { root: ROOT },
    layout: 'chunks',
    chunks: { chunkSizeBytes: CHUNK, scope: options.scope ?? 'storage' },
  });
  await h.ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
  const disk = randomBytes(5 * CHUNK);
  h.world.addInstance('c-1', 'acct-alice', { disk: Buffer.from(disk), virtualSize: VIRTUAL });
  h.world.addInstance('c-2', 'acct-alice', { disk: Buffer.from(disk), virtualSize: VIRTUAL });
  h.world.addInstance('c-bob', 'acct-bob', { disk: Buffer.from(disk), virtualSize: VIRTUAL });
  h.world.addInstance('target', 'acct-alice');
  h.world.addInstance('target-bob', 'acct-bob');
  const keys = (pattern: RegExp) =>
    [...h.world.files.keys()]
      .filter((k) => k.startsWith(`${ROOT}:`))
      .map((k) => k.slice(ROOT.length + 1))
      .filter((k) => pattern.test(k));
  let deploys = 0;
  return {
    ...h,
    chunkedStorageId: storage.id,
    chunkKeys: () => keys(/(^|\/)chunks\/[0-9a-f]{2}\/[0-9a-f]{64}$/),
    leaseKeys: () => keys(/^chunk-leases\//),
    has: (key) => h.world.files.has(`${ROOT}:${key}`),
    async deployBytes(image, instanceId = 'target') {
      const owner = h.world.instances.get(instanceId)?.accountId ?? 'acct-alice';
      const targetPath = `/vms/deploy-${++deploys}.raw`;
      const actor = { kind: 'customer' as const, accountId: owner };
      const { task } = await h.ii.catalog.deployImage(actor, { imageId: image.id, instanceId, targetPath });
      const finished = await h.ii.images.waitForTask(actor, task.id);
      if (finished.status !== 'completed') throw new Error(`the deploy ${finished.status}: ${finished.errorCode ?? ''}`);
      const file = h.world.files.get(`hv-1:${targetPath}`);
      if (!file) throw new Error('no deployed disk');
      return file.bytes;
    },
  };
}

/** Captures an instance of alice (or the given account) and waits until the task ended. */
export async function capture(h: ChunkedHarness, instanceId: string, name: string, accountId = 'acct-alice'): Promise<Image> {
  // Each capture a minute after the previous one: the newest image is the base of the next.
  h.clock.now = new Date(h.clock.now.getTime() + 60_000);
  const { image } = await h.ii.images.createImage({ kind: 'customer', accountId }, { instanceId, name });
  await h.ii.idle();
  const done = await h.ii.images.getImage({ kind: 'customer', accountId }, image.id);
  return done;
}
