/**
 * What imports and uploads hold against the account's byte cap before their file exists: a URL
 * import holds the bytes it received (at least the announced Content-Length), an upload its length
 * from the moment its image is recorded; the stored size replaces the hold. On the in-memory
 * repositories and on SQLite.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { rmSync } from 'node:fs';
import { imageCapBytes, type Actor, type InstanceImages, type Repositories } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import type { TaskJob, TaskQueue, TaskQueueBinding } from '../../../src/ports/task-queue';
import { uploadWorld } from '../../support/upload-world';
import { serveBytes, type ImageServer } from '../../support/image-server';

const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const MIB = 1024 * 1024;
const image = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i + 1))); // 1 MiB, raw

let ii: InstanceImages;
let dir: string;
const servers: ImageServer[] = [];

async function setup(repositories: Repositories, maxBytes: number, queue?: TaskQueue): Promise<void> {
  ({ ii, dir } = await uploadWorld(
    { imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 2000 }, repositories, ...(queue ? { queue } : {}) },
    { defaultImageBytesLimit: maxBytes },
  ));
}

afterEach(async () => {
  await ii?.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function serve(bytes: Buffer, options: Parameters<typeof serveBytes>[1] = {}): Promise<ImageServer> {
  const server = await serveBytes(bytes, { host: '127.0.0.2', ...options });
  servers.push(server);
  return server;
}

const usedBytes = async () =>
  (await ii.repositories.images.list({ kind: 'custom', accountId: 'acct-alice' })).items.reduce((sum, i) => sum + imageCapBytes(i), 0);

async function upload(lengthBytes: number, bytes: Buffer, name: string) {
  const created = await ii.uploads.createUpload(ALICE, { target: { kind: 'image', name, locationId: 'loc-1' }, lengthBytes, metadata: {} });
  return ii.uploads.writeUpload(ALICE, created.id, {
    offsetBytes: 0,
    body: (async function* () {
      yield bytes;
    })(),
  });
}

/** A queue that keeps its jobs until `release` runs them (so a test sees an image before its import ran). */
function heldQueue(): TaskQueue & { release(): Promise<void> } {
  const jobs: TaskJob[] = [];
  let binding: TaskQueueBinding | null = null;
  return {
    bind: (bound) => void (binding = bound),
    enqueue: async (job) => void jobs.push(job),
    cancel: () => false,
    onIdle: async () => undefined,
    close: async () => undefined,
    async release() {
      for (const job of jobs.splice(0)) await binding?.run(job, new AbortController().signal);
    },
  };
}

const backends: Array<[string, () => Repositories]> = [
  ['memory', () => createMemoryRepositories()],
  ['sqlite', () => createSqliteRepositories({ filename: ':memory:' })],
];

describe.each(backends)('byte holds of imports (%s repositories)', (_name, repositories) => {
  it('three 1 MiB URL imports started at once under a 2.5 MiB cap: two complete, one stops holding nothing', async () => {
    await setup(repositories(), 2.5 * MIB);
    const server = await serve(image);
    const started = [];
    for (const name of ['a', 'b', 'c']) started.push(await ii.imports.importImage(ALICE, { url: server.url, name, locationId: 'loc-1' }));
    await ii.idle();
    const images = await Promise.all(started.map((s) => ii.repositories.images.get(s.image.id)));
    expect(images.map((i) => i?.status).sort()).toEqual(['available', 'available', 'error']);
    const failed = images.find((i) => i?.status === 'error');
    expect(failed?.statusReason?.code).toBe('IMAGE_LIMIT_REACHED');
    const task = await ii.repositories.tasks.get(started[images.indexOf(failed ?? null)]?.task.id ?? '');
    expect(task?.errorMessage).toMatch(/cap of \d+ bytes would be exceeded.*Delete an image/);
    // The stored sizes replaced the holds; the failed import holds nothing.
    expect(images.filter((i) => i?.status === 'available').map((i) => [i?.sizeBytes, i?.reservedBytes ?? null])).toEqual([
      [MIB, null],
      [MIB, null],
    ]);
    expect(failed?.reservedBytes ?? null).toBeNull();
    expect(await usedBytes()).toBe(2 * MIB);
  });

  it('a URL announcing more than the room left is refused from the first bytes', async () => {
    await setup(repositories(), 0.5 * MIB);
    const server = await serve(image);
    const { image: started } = await ii.imports.importImage(ALICE, { url: server.url, name: 'big', locationId: 'loc-1' });
    await ii.idle();
    expect((await ii.repositories.images.get(started.id))?.statusReason?.code).toBe('IMAGE_LIMIT_REACHED');
    expect(await usedBytes()).toBe(0);
  });

  it('an upload holds its length when its image is recorded: of two complete uploads only the one that fits is imported', async () => {
    const queue = heldQueue();
    await setup(repositories(), 1.5 * MIB, queue);
    // Each fits on its own at creation (checked early); together they do not.
    const first = await ii.uploads.createUpload(ALICE, {
      target: { kind: 'image', name: 'one', locationId: 'loc-1' },
      lengthBytes: MIB,
      metadata: {},
    });
    const second = await ii.uploads.createUpload(ALICE, {
      target: { kind: 'image', name: 'two', locationId: 'loc-1' },
      lengthBytes: MIB,
      metadata: {},
    });
    const body = () =>
      (async function* () {
        yield image;
      })();
    const done = await ii.uploads.writeUpload(ALICE, first.id, { offsetBytes: 0, body: body() });
    expect((await ii.repositories.images.get(done.imageId ?? ''))?.reservedBytes).toBe(MIB);
    await expect(ii.uploads.writeUpload(ALICE, second.id, { offsetBytes: 0, body: body() })).rejects.toMatchObject({
      code: 'IMAGE_LIMIT_REACHED',
      details: { limitBytes: 1.5 * MIB, imageBytes: MIB },
    });
    await queue.release();
    const imported = await ii.repositories.images.get(done.imageId ?? '');
    expect(imported).toMatchObject({ status: 'available', sizeBytes: MIB });
    expect(imported?.reservedBytes ?? null).toBeNull();
    // Declared too large for the room left: refused at creation, before any byte is sent.
    await expect(upload(MIB, image, 'three')).rejects.toMatchObject({ code: 'IMAGE_LIMIT_REACHED' });
  });
});
