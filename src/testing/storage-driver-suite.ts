/**
 * The storage driver conformance suite. Every driver (built-in or a host's own) runs it:
 *
 * ```ts
 * import { describe, it, expect } from 'vitest';
 * import { testStorageDriver } from 'instance-images/testing';
 * testStorageDriver({ describe, it, expect }, { name: 'local', create: () => localStorageDriver.create(opts, ctx) });
 * ```
 *
 * It does not import a test framework: the caller passes its `describe`/`it`/`expect`. Each test
 * gets a fresh driver, works under its own random key prefix and removes what it wrote.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { isInstanceImagesError } from '../errors';
import type { IncompleteUpload, StorageDriver, StoredObject } from '../ports/storage-driver';
import { wrapStorageDriver, type StorageDisk } from '../storage/disk';

/** The assertions the suite uses (a subset of vitest's / jest's `expect`). */
export interface SuiteAssertion {
  /** Strict equality (`Object.is`). */
  toBe(expected: unknown): void;
  /** Deep equality. */
  toEqual(expected: unknown): void;
  /** The value is `null`. */
  toBeNull(): void;
  /** A number greater than `expected`. */
  toBeGreaterThan(expected: number): void;
  /** A number greater than or equal to `expected`. */
  toBeGreaterThanOrEqual(expected: number): void;
  /** An object containing at least these properties. */
  toMatchObject(expected: object): void;
  /** The negated assertions. */
  not: SuiteAssertion;
}

/** The test framework functions the suite needs (pass vitest's). */
export interface SuiteFramework {
  /** Groups tests. */
  describe(name: string, body: () => void): void;
  /** Registers a test (with an optional timeout in ms). */
  it: {
    (name: string, body: () => Promise<void>, timeout?: number): void;
    /** When present, opted-out cases are registered as skipped with their reason. */
    skip?: (name: string, body: () => Promise<void>) => void;
  };
  /** Starts an assertion. */
  expect(actual: unknown): SuiteAssertion;
  /** Runs once before the tests (optional, unused by the suite itself). */
  beforeAll?(body: () => Promise<void> | void, timeout?: number): void;
  /** Runs once after the tests (optional, unused by the suite itself). */
  afterAll?(body: () => Promise<void> | void, timeout?: number): void;
  /** Runs before each test (optional, unused by the suite itself). */
  beforeEach?(body: () => Promise<void> | void): void;
}

/** Cases a driver may opt out of, each with a stated reason. */
export type StorageSuiteFeature =
  | 'roundTrip'
  | 'range'
  | 'overwrite'
  | 'missing'
  | 'delete'
  | 'paging'
  | 'keySafety'
  | 'cancel'
  | 'concurrency'
  | 'freeSpace'
  | 'incompleteUploads';

/** Options of {@link testStorageDriver}. */
export interface StorageSuiteOptions {
  /** Shown in the describe block. */
  name: string;
  /** Creates a fresh driver (called once per test). */
  create: () => Promise<StorageDriver> | StorageDriver;
  /** Called after each test with the driver it used (after the suite's own cleanup and `close`). */
  cleanup?: (driver: StorageDriver) => Promise<void> | void;
  /** Opt-outs: feature → reason. */
  skip?: Partial<Record<StorageSuiteFeature, string>>;
  /** Timeout per test in ms (default 120 000). */
  timeoutMs?: number;
  /**
   * How many bytes the incomplete-upload case writes before it looks for the in-flight upload
   * (default 6 MiB: past S3's smallest part so that a multipart upload exists).
   */
  incompleteUploadBytes?: number;
}

const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

/** A body that yields `data` in chunks. */
function bodyOf(data: Buffer, chunk = 256 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** A body that yields `first` bytes, reports it via `sent`, then never ends by itself. */
function stallingBody(first: Buffer): { body: Readable; sent: Promise<void> } {
  let resolveSent!: () => void;
  const sent = new Promise<void>((resolve) => (resolveSent = resolve));
  let offset = 0;
  const body = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      if (offset < first.length) {
        this.push(first.subarray(offset, offset + 64 * 1024));
        offset += 64 * 1024;
        if (offset >= first.length) resolveSent();
      }
      // then stall: never push again until destroyed
    },
  });
  return { body, sent };
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isInstanceImagesError(error) ? error.code : `non-sdk error: ${error instanceof Error ? error.message : String(error)}`;
  }
}

async function listAll(disk: StorageDisk, prefix: string, limit: number): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: { items: StoredObject[]; nextCursor: string | null } = await disk.list({ prefix, cursor, limit });
    pages++;
    if (pages > 1000) throw new Error('list() never ends: the cursor does not advance');
    keys.push(...page.items.map((item) => item.key));
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { keys, pages };
}

/** Wraps a driver, recording every call that reaches it (to prove key checks happen before I/O). */
function spyOn(driver: StorageDriver): { driver: StorageDriver; calls: string[] } {
  const calls: string[] = [];
  const spied = new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { driver: spied, calls };
}

/**
 * Registers the storage driver conformance suite with the given test framework.
 * Covers: put/get round trip with sha256, range reads, overwrite, stat of a missing key, idempotent
 * delete, paging over more than one page, key safety through the core wrapper, cancel mid-put,
 * concurrent puts, free space, and listing/aborting incomplete uploads.
 */
export function testStorageDriver(t: SuiteFramework, options: StorageSuiteOptions): void {
  const { describe, expect } = t;
  const timeout = options.timeoutMs ?? 120_000;

  /** Runs `body` with a fresh driver and a unique prefix; removes everything under the prefix afterwards. */
  const withDisk = async (body: (disk: StorageDisk, prefix: string, raw: StorageDriver) => Promise<void>) => {
    const raw = await options.create();
    const disk = wrapStorageDriver(raw, { retries: { attempts: 1 } });
    const prefix = `conformance-${randomBytes(6).toString('hex')}/`;
    try {
      await body(disk, prefix, raw);
    } finally {
      try {
        const { keys } = await listAll(disk, prefix, 1000);
        for (const key of keys) await disk.delete(key);
        for (const upload of await disk.listIncomplete()) {
          if (upload.key.startsWith(prefix)) await disk.abortIncomplete(upload);
        }
      } finally {
        await raw.close?.();
        await options.cleanup?.(raw);
      }
    }
  };

  const test = (
    feature: StorageSuiteFeature,
    name: string,
    body: (disk: StorageDisk, prefix: string, raw: StorageDriver) => Promise<void>,
  ) => {
    const reason = options.skip?.[feature];
    if (reason !== undefined) {
      t.it.skip?.(`${name} (opted out: ${reason})`, async () => undefined);
      return;
    }
    t.it(name, () => withDisk(body), timeout);
  };

  describe(`storage driver conformance: ${options.name}`, () => {
    test('roundTrip', 'put then get returns the same bytes, with size and sha256 reported and verified', async (disk, prefix) => {
      const data = randomBytes(3 * MiB + 12345);
      const progress: number[] = [];
      const result = await disk.put(`${prefix}images/round-trip.qcow2`, bodyOf(data), {
        size: data.length,
        onProgress: (p) => progress.push(p.bytesDone),
      });
      expect(result).toEqual({ key: `${prefix}images/round-trip.qcow2`, size: data.length, sha256: sha256(data) });
      expect(progress[progress.length - 1]).toBe(data.length);
      const stored = await disk.stat(`${prefix}images/round-trip.qcow2`);
      expect(stored?.size).toBe(data.length);
      expect(stored?.key).toBe(`${prefix}images/round-trip.qcow2`);
      expect(stored?.modifiedAt instanceof Date && !Number.isNaN(stored.modifiedAt.getTime())).toBe(true);
      const back = await readAll(await disk.get(`${prefix}images/round-trip.qcow2`));
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
      const empty = await disk.put(`${prefix}empty.raw`, bodyOf(Buffer.alloc(0)));
      expect(empty.size).toBe(0);
      expect((await readAll(await disk.get(`${prefix}empty.raw`))).length).toBe(0);
    });

    test(
      'roundTrip',
      'a body of several MiB in odd-sized chunks arrives intact, with and without its size announced',
      async (disk, prefix) => {
        // Longer than a few write blocks of any driver (path drivers write 4 MiB blocks, S3 parts are
        // 8 MiB or more), not a multiple of a disk block, in chunks that never line up with either.
        const data = randomBytes(9 * MiB + 4097);
        for (const [name, size] of [
          ['announced', data.length],
          ['unannounced', undefined],
        ] as const) {
          const result = await disk.put(`${prefix}odd-${name}.bin`, bodyOf(data, 65_537), size === undefined ? {} : { size });
          expect(result.size).toBe(data.length);
          expect(result.sha256).toBe(sha256(data));
          const back = await readAll(await disk.get(`${prefix}odd-${name}.bin`));
          expect(back.length).toBe(data.length);
          expect(sha256(back)).toBe(sha256(data));
        }
      },
    );

    test('roundTrip', 'a reader that starts late (backpressure) still gets every byte', async (disk, prefix) => {
      // Sizes around what a driver's pipes buffer: the producer can finish while nobody reads.
      for (const size of [MiB + 333, 2 * MiB + 4321, 3 * MiB + 99]) {
        const data = randomBytes(size);
        await disk.put(`${prefix}late-reader.bin`, bodyOf(data));
        const stream = await disk.get(`${prefix}late-reader.bin`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const back = await readAll(stream);
        expect(back.length).toBe(data.length);
        expect(sha256(back)).toBe(sha256(data));
      }
    });

    test('roundTrip', 'putBytes stores a buffer whole; a wrong expected sha256 stores nothing', async (disk, prefix, raw) => {
      const data = randomBytes(4 * MiB + 3);
      const result = await disk.putBytes(`${prefix}chunks/ok.bin`, data, { expectedSha256: sha256(data) });
      expect(result).toEqual({ key: `${prefix}chunks/ok.bin`, size: data.length, sha256: sha256(data) });
      expect(sha256(await readAll(await disk.get(`${prefix}chunks/ok.bin`)))).toBe(sha256(data));
      const small = await disk.putBytes(`${prefix}small.json`, Buffer.from('{"a":1}'));
      expect(small.sha256).toBe(sha256(Buffer.from('{"a":1}')));
      const wrong = sha256(Buffer.from('something else'));
      expect(await codeOf(disk.putBytes(`${prefix}chunks/bad.bin`, data, { expectedSha256: wrong }))).toBe('CHECKSUM_MISMATCH');
      expect(await disk.stat(`${prefix}chunks/bad.bin`)).toBeNull();
      if (raw.putBytes && raw.capabilities.verifiesSha256) {
        // The storage itself refuses bytes that do not hash to the digest sent with them.
        expect(await codeOf(raw.putBytes(`${prefix}chunks/raw-bad.bin`, data, { sha256: wrong }))).toBe('CHECKSUM_MISMATCH');
        expect(await raw.stat(`${prefix}chunks/raw-bad.bin`)).toBeNull();
        expect(await raw.putBytes(`${prefix}chunks/raw-ok.bin`, data, { sha256: sha256(data) })).toEqual({
          size: data.length,
          sha256Verified: true,
        });
      }
    });

    test(
      'roundTrip',
      'getBytes reads whole objects into a buffer; null when missing; VALIDATION_FAILED when longer',
      async (disk, prefix, raw) => {
        const data = randomBytes(4 * MiB + 5);
        const odd = randomBytes(1000);
        // A key whose characters must be escaped in a URL path (read after a first read, as drivers
        // may set up a faster path on the first one).
        const oddKey = `${prefix}chunks/a b+c~(1)'!*,;=@$&ü%20.bin`;
        await disk.putBytes(`${prefix}chunks/a.bin`, data);
        await disk.putBytes(oddKey, odd);
        await disk.putBytes(`${prefix}chunks/empty.bin`, Buffer.alloc(0));
        const into = Buffer.alloc(8 * MiB, 0xaa);
        for (let round = 0; round < 2; round++) {
          const back = await disk.getBytes(`${prefix}chunks/a.bin`, into);
          expect(back?.length).toBe(data.length);
          expect(back ? sha256(back) : null).toBe(sha256(data));
          expect(back?.buffer).toBe(into.buffer);
          const oddBack = await disk.getBytes(oddKey, into);
          expect(oddBack ? sha256(oddBack) : null).toBe(sha256(odd));
          expect((await disk.getBytes(`${prefix}chunks/empty.bin`, into))?.length).toBe(0);
          expect(await disk.getBytes(`${prefix}chunks/missing.bin`, into)).toBeNull();
        }
        // Exactly long enough is enough; one byte short is refused.
        expect((await disk.getBytes(`${prefix}chunks/a.bin`, Buffer.alloc(data.length)))?.length).toBe(data.length);
        expect(await codeOf(disk.getBytes(`${prefix}chunks/a.bin`, Buffer.alloc(data.length - 1)))).toBe('VALIDATION_FAILED');
        expect(await codeOf(disk.getBytes(`${prefix}chunks/a.bin`, Buffer.alloc(10)))).toBe('VALIDATION_FAILED');
        if (raw.getBytes) {
          expect(await raw.getBytes(`${prefix}chunks/a.bin`, into)).toBe(data.length);
          expect(await raw.getBytes(`${prefix}chunks/missing.bin`, into)).toBeNull();
        }
        const aborted = new AbortController();
        aborted.abort();
        expect(await codeOf(disk.getBytes(`${prefix}chunks/a.bin`, into, { signal: aborted.signal }))).toBe('CANCELLED');
      },
    );

    test('range', 'get with a byte range returns exactly that slice (end inclusive; open end reads to the end)', async (disk, prefix) => {
      const data = randomBytes(MiB + 777);
      await disk.put(`${prefix}range.bin`, bodyOf(data));
      const slice = await readAll(await disk.get(`${prefix}range.bin`, { range: { start: 1000, end: 1999 } }));
      expect(slice.equals(data.subarray(1000, 2000))).toBe(true);
      const tail = await readAll(await disk.get(`${prefix}range.bin`, { range: { start: MiB } }));
      expect(tail.equals(data.subarray(MiB))).toBe(true);
      const first = await readAll(await disk.get(`${prefix}range.bin`, { range: { start: 0, end: 0 } }));
      expect(first.equals(data.subarray(0, 1))).toBe(true);
      const last = await readAll(await disk.get(`${prefix}range.bin`, { range: { start: data.length - 1, end: data.length - 1 } }));
      expect(last.equals(data.subarray(data.length - 1))).toBe(true);
      const beyond = await readAll(await disk.get(`${prefix}range.bin`, { range: { start: data.length - 10, end: data.length + 1000 } }));
      expect(beyond.equals(data.subarray(data.length - 10))).toBe(true);
    });

    test('overwrite', 'a second put to the same key replaces the object completely', async (disk, prefix) => {
      const first = randomBytes(2 * MiB);
      const second = randomBytes(300 * 1024);
      await disk.put(`${prefix}same.qcow2`, bodyOf(first));
      const result = await disk.put(`${prefix}same.qcow2`, bodyOf(second));
      expect(result.sha256).toBe(sha256(second));
      expect((await disk.stat(`${prefix}same.qcow2`))?.size).toBe(second.length);
      expect(sha256(await readAll(await disk.get(`${prefix}same.qcow2`)))).toBe(sha256(second));
      const { keys } = await listAll(disk, prefix, 100);
      expect(keys).toEqual([`${prefix}same.qcow2`]);
      expect((await disk.listIncomplete()).filter((u) => u.key.startsWith(prefix))).toEqual([]);
    });

    test('missing', 'stat of a missing key is null and get of it is NOT_FOUND', async (disk, prefix) => {
      expect(await disk.stat(`${prefix}does-not-exist`)).toBeNull();
      expect(await disk.stat(`${prefix}no/such/dir/file`)).toBeNull();
      expect(await codeOf(disk.get(`${prefix}does-not-exist`))).toBe('NOT_FOUND');
      await disk.put(`${prefix}dir/file`, bodyOf(Buffer.from('x')));
      // a "directory" is not an object
      expect(await disk.stat(`${prefix}dir`)).toBeNull();
    });

    test('delete', 'delete removes the object and is idempotent', async (disk, prefix) => {
      await disk.put(`${prefix}doomed`, bodyOf(Buffer.from('bye')));
      await disk.delete(`${prefix}doomed`);
      expect(await disk.stat(`${prefix}doomed`)).toBeNull();
      await disk.delete(`${prefix}doomed`);
      await disk.delete(`${prefix}never/existed`);
      expect((await listAll(disk, prefix, 100)).keys).toEqual([]);
    });

    test('paging', 'list pages through more than one page in key order, filtered by prefix, without temp files', async (disk, prefix) => {
      const names = ['b.qcow2', 'a.qcow2', 'sub/c.raw', 'sub/deeper/d.raw', 'e.iso', 'a-longer-name.qcow2', 'z'];
      for (const name of names) await disk.put(`${prefix}${name}`, bodyOf(Buffer.from(name)));
      await disk.put(`other-${prefix}outside`, bodyOf(Buffer.from('not listed')));
      try {
        const expected = names.map((n) => `${prefix}${n}`).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        const { keys, pages } = await listAll(disk, prefix, 3);
        expect(keys).toEqual(expected);
        expect(pages).toBeGreaterThanOrEqual(3);
        const first = await disk.list({ prefix, limit: 3 });
        expect(first.items.length).toBe(3);
        expect(first.nextCursor).not.toBeNull();
        const item = (await disk.list({ prefix: `${prefix}sub/deeper/`, limit: 10 })).items;
        expect(item.map((i) => [i.key, i.size])).toEqual([[`${prefix}sub/deeper/d.raw`, 'sub/deeper/d.raw'.length]]);
        const partial = await listAll(disk, `${prefix}a`, 1);
        expect(partial.keys).toEqual([`${prefix}a-longer-name.qcow2`, `${prefix}a.qcow2`]);
        expect((await disk.list({ prefix: `${prefix}nothing-here/` })).items).toEqual([]);
      } finally {
        await disk.delete(`other-${prefix}outside`);
      }
    });

    test('keySafety', 'unsafe keys are rejected with VALIDATION_FAILED before the driver is called', async (_disk, prefix, raw) => {
      const { driver, calls } = spyOn(raw);
      const disk = wrapStorageDriver(driver);
      const unsafe = [
        '../escape',
        `${prefix}../../escape`,
        '/etc/passwd',
        `${prefix}a//b`,
        `${prefix}./x`,
        `${prefix}trailing/`,
        '',
        `${prefix}line\nbreak`,
        `${prefix}nul\u0000byte`,
        `${prefix}tab\tkey`,
        `${prefix}${'x'.repeat(1100)}`,
        `${prefix}back\\slash`,
      ];
      for (const key of unsafe) {
        expect(await codeOf(disk.put(key, bodyOf(Buffer.from('no'))))).toBe('VALIDATION_FAILED');
        expect(await codeOf(disk.get(key))).toBe('VALIDATION_FAILED');
        expect(await codeOf(disk.stat(key))).toBe('VALIDATION_FAILED');
        expect(await codeOf(disk.delete(key))).toBe('VALIDATION_FAILED');
      }
      expect(await codeOf(disk.list({ prefix: '../' }))).toBe('VALIDATION_FAILED');
      expect(calls).toEqual([]);
      // Odd but safe keys round-trip unchanged (NFC-normalized).
      const odd = `${prefix}spaces and 'quotes' $(x) ; \`y\` * ünïcødé.qcow2`;
      const data = randomBytes(1000);
      await disk.put(odd, bodyOf(data));
      expect(sha256(await readAll(await disk.get(odd)))).toBe(sha256(data));
      const decomposed = `${prefix}cafe\u0301`;
      await disk.put(decomposed, bodyOf(Buffer.from('nfc')));
      expect((await disk.stat(`${prefix}caf\u00e9`))?.size).toBe(3);
    });

    test(
      'cancel',
      'aborting a put midway rejects with CANCELLED and leaves neither the key nor an incomplete upload',
      async (disk, prefix) => {
        const key = `${prefix}cancelled.qcow2`;
        await disk.put(key, bodyOf(Buffer.from('previous version')));
        const { body, sent } = stallingBody(randomBytes(2 * MiB));
        const controller = new AbortController();
        const put = disk.put(key, body, { signal: controller.signal });
        await sent;
        await new Promise((resolve) => setTimeout(resolve, 200));
        controller.abort();
        expect(await codeOf(put)).toBe('CANCELLED');
        // the previous version is untouched: readers never see a partial object
        expect(sha256(await readAll(await disk.get(key)))).toBe(sha256(Buffer.from('previous version')));
        await disk.delete(key);
        const { body: body2, sent: sent2 } = stallingBody(randomBytes(MiB));
        const controller2 = new AbortController();
        const put2 = disk.put(`${prefix}fresh.qcow2`, body2, { signal: controller2.signal });
        await sent2;
        controller2.abort();
        expect(await codeOf(put2)).toBe('CANCELLED');
        expect(await disk.stat(`${prefix}fresh.qcow2`)).toBeNull();
        // With the size announced: cancelled midway, and cancelled after every announced byte was
        // sent but before the body ended.
        for (const [sent, announced] of [
          [MiB, 2 * MiB],
          [MiB, MiB],
        ] as const) {
          const { body: body3, sent: sent3 } = stallingBody(randomBytes(sent));
          const controller3 = new AbortController();
          const put3 = disk.put(`${prefix}sized.qcow2`, body3, { signal: controller3.signal, size: announced });
          await sent3;
          await new Promise((resolve) => setTimeout(resolve, 200));
          controller3.abort();
          expect(await codeOf(put3)).toBe('CANCELLED');
          expect(await disk.stat(`${prefix}sized.qcow2`)).toBeNull();
        }
        expect((await disk.listIncomplete()).filter((u: IncompleteUpload) => u.key.startsWith(prefix))).toEqual([]);
        expect((await listAll(disk, prefix, 100)).keys).toEqual([]);
      },
    );

    test('concurrency', 'concurrent puts of different keys all land intact', async (disk, prefix) => {
      const blobs = Array.from({ length: 4 }, (_, i) => randomBytes(MiB + i * 1001));
      const results = await Promise.all(blobs.map((data, i) => disk.put(`${prefix}parallel/${i}.raw`, bodyOf(data, 64 * 1024))));
      expect(results.map((r) => r.sha256)).toEqual(blobs.map(sha256));
      for (const [i, data] of blobs.entries()) {
        expect(sha256(await readAll(await disk.get(`${prefix}parallel/${i}.raw`)))).toBe(sha256(data));
      }
    });

    test('freeSpace', 'freeSpace is a non-negative integer (null only for unlimited backends) and health reports ok', async (disk) => {
      const free = await disk.freeSpace();
      if (disk.capabilities.pathAccess) {
        expect(typeof free).toBe('number');
        expect(free ?? -1).toBeGreaterThan(0);
      }
      if (free !== null) expect(Number.isSafeInteger(free) && free >= 0).toBe(true);
      const health = await disk.health();
      expect(health.ok).toBe(true);
      expect(typeof health.message).toBe('string');
    });

    test(
      'incompleteUploads',
      'an in-flight put is listed as incomplete; aborting it makes the put fail and leaves nothing',
      async (disk, prefix) => {
        const key = `${prefix}in-flight.qcow2`;
        const started = new Date(Date.now() - 60_000);
        const { body, sent } = stallingBody(randomBytes(options.incompleteUploadBytes ?? 6 * MiB));
        const controller = new AbortController();
        const put = disk.put(key, body, { signal: controller.signal });
        const settled = put.then(
          () => 'resolved',
          () => 'rejected',
        );
        await sent;
        const upload = await waitFor(async () => (await disk.listIncomplete()).find((u) => u.key === key), 30_000);
        expect(upload?.key).toBe(key);
        if (upload) {
          expect(typeof upload.id).toBe('string');
          if (upload.startedAt) expect(upload.startedAt.getTime()).toBeGreaterThan(started.getTime());
          // olderThan filters by start time: this upload started after `started`
          expect((await disk.listIncomplete({ olderThan: started })).some((u) => u.key === key)).toBe(false);
          await disk.abortIncomplete(upload);
          await disk.abortIncomplete(upload); // idempotent
        }
        controller.abort();
        expect(await settled).toBe('rejected');
        expect(await disk.stat(key)).toBeNull();
        expect((await disk.listIncomplete()).filter((u) => u.key.startsWith(prefix))).toEqual([]);
      },
    );
  });
}
