import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import type { IncompleteUpload, StorageDriver, StoredObject } from '../../../src/ports/storage-driver';

/** An in-memory fake of the StorageDriver port, for unit tests of the core wrapper and the suite. */
export function createMemoryStorageDriver(
  options: { free?: number } = {},
): StorageDriver & { objects: Map<string, { data: Buffer; modifiedAt: Date }>; failNext: { operation: string; times: number } | null } {
  const objects = new Map<string, { data: Buffer; modifiedAt: Date }>();
  const inflight = new Map<string, { key: string; startedAt: Date; abort: (error: Error) => void }>();
  const driver = {
    name: 'memory',
    capabilities: { shared: true, pathAccess: false },
    objects,
    failNext: null as { operation: string; times: number } | null,
    maybeFail(operation: string) {
      if (driver.failNext && driver.failNext.operation === operation && driver.failNext.times > 0) {
        driver.failNext.times--;
        throw new InstanceImagesError('STORAGE_UNAVAILABLE', `injected failure of ${operation}`);
      }
    },
    async put(key: string, body: Readable, opts: { signal?: AbortSignal } = {}) {
      const id = randomUUID();
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        const fail = (error: Error) => {
          inflight.delete(id);
          body.destroy();
          reject(error);
        };
        inflight.set(id, { key, startedAt: new Date(), abort: fail });
        const onAbort = () => fail(new InstanceImagesError('CANCELLED', `put of ${key} cancelled`));
        if (opts.signal?.aborted) return onAbort();
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        body.on('data', (chunk: Buffer) => chunks.push(chunk));
        body.on('error', (error) => fail(error));
        body.on('end', () => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (!inflight.has(id)) return;
          inflight.delete(id);
          resolve();
        });
      });
      const data = Buffer.concat(chunks);
      objects.set(key, { data, modifiedAt: new Date() });
      return { size: data.length };
    },
    async get(key: string, opts: { range?: { start: number; end?: number } } = {}) {
      driver.maybeFail('get');
      const object = objects.get(key);
      if (!object) throw new InstanceImagesError('NOT_FOUND', `${key} not found`);
      const start = opts.range?.start ?? 0;
      const end = opts.range?.end === undefined ? object.data.length : opts.range.end + 1;
      return Readable.from([object.data.subarray(start, end)]);
    },
    async stat(key: string): Promise<StoredObject | null> {
      driver.maybeFail('stat');
      const object = objects.get(key);
      return object ? { key, size: object.data.length, modifiedAt: object.modifiedAt } : null;
    },
    async list(opts: { prefix?: string; cursor?: string | null; limit?: number } = {}) {
      driver.maybeFail('list');
      const keys = [...objects.keys()].filter((k) => k.startsWith(opts.prefix ?? '')).sort();
      const after = opts.cursor ?? null;
      const rest = after === null ? keys : keys.filter((k) => k > after);
      const limit = opts.limit ?? 50;
      const page = rest.slice(0, limit);
      const items = page.map((key) => ({
        key,
        size: objects.get(key)?.data.length ?? 0,
        modifiedAt: objects.get(key)?.modifiedAt ?? new Date(),
      }));
      return { items, nextCursor: rest.length > limit ? (page[page.length - 1] ?? null) : null };
    },
    async delete(key: string) {
      driver.maybeFail('delete');
      objects.delete(key);
    },
    async freeSpace() {
      return options.free ?? null;
    },
    async health() {
      return { ok: true, message: 'in memory' };
    },
    async listIncomplete(opts: { olderThan?: Date } = {}): Promise<IncompleteUpload[]> {
      return [...inflight.entries()]
        .filter(([, u]) => !opts.olderThan || u.startedAt < opts.olderThan)
        .map(([id, u]) => ({ key: u.key, id, startedAt: u.startedAt }));
    },
    async abortIncomplete(upload: IncompleteUpload) {
      inflight.get(upload.id)?.abort(new InstanceImagesError('STORAGE_UNAVAILABLE', 'upload aborted'));
    },
  };
  return driver;
}
