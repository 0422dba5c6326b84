import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { localStorageDriver } from '../../../drivers/storage/local';
import type { Executor } from '../../../src/ports/executor';
import { wrapStorageDriver } from '../../../src/storage/disk';
import { sshTarget, SSH_HOST, SSH_PORT } from '../exec/ssh-target';
import { startTcpProxy, type TcpProxy } from '../exec/tcp-proxy';
import { codeOf } from '../../support/errors';

const MiB = 1024 * 1024;
const target = await sshTarget();

/** Yields `first` bytes, then stalls until destroyed. */
function stallingBody(first: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent < first) {
        this.push(randomBytes(64 * 1024));
        sent += 64 * 1024;
      }
    },
  });
}

/** Files in `dir` and below (names relative to it). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => `${entry.parentPath.slice(dir.length)}/${entry.name}`.replace(/^\//, ''));
}

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('local storage: announced sizes', () => {
  it('a body shorter or longer than announced fails with VALIDATION_FAILED and leaves nothing', async () => {
    const root = mkdtempSync('/var/tmp/ii-sized-');
    try {
      const disk = wrapStorageDriver(localStorageDriver.create({ path: root }, { executor: createLocalExecutor() }));
      const data = randomBytes(MiB);
      expect(await codeOf(disk.put('short', Readable.from([data]), { size: data.length + 1 }))).toBe('VALIDATION_FAILED');
      expect(await codeOf(disk.put('long', Readable.from([data, data]), { size: data.length }))).toBe('VALIDATION_FAILED');
      expect(filesUnder(root)).toEqual([]);
      const exact = await disk.put('exact', Readable.from([data]), { size: data.length });
      expect(exact.size).toBe(data.length);
      expect(filesUnder(root)).toEqual(['exact']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('local storage faults: a full filesystem', () => {
  let mountPoint: string;
  beforeAll(() => {
    mountPoint = mkdtempSync('/var/tmp/ii-tmpfs-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
  });
  afterAll(() => {
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });

  const executors: Array<[string, () => Executor]> = [['local executor', () => createLocalExecutor()]];
  if (!('skip' in target)) executors.push(['SSH executor', () => createSshExecutor(target.connection)]);
  for (const [label, makeExecutor] of executors) {
    it(`writing more than fits fails with STORAGE_FULL and leaves no temp file (${label})`, async () => {
      const executor = makeExecutor();
      const disk = wrapStorageDriver(localStorageDriver.create({ path: `${mountPoint}/images` }, { executor }));
      try {
        const free = await disk.freeSpace();
        expect(free).toBeGreaterThan(0);
        expect(free ?? 0).toBeLessThanOrEqual(4 * MiB);
        const data = randomBytes(6 * MiB);
        // with and without the size announced (one-command commit vs write-then-rename)
        for (const size of [undefined, data.length]) {
          expect(
            await codeOf(disk.put('too-big.qcow2', Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]), { size })),
          ).toBe('STORAGE_FULL');
          expect(await disk.stat('too-big.qcow2')).toBeNull();
          expect(await disk.listIncomplete()).toEqual([]);
          expect(filesUnder(mountPoint)).toEqual([]);
        }
        // what fits still works afterwards
        const fits = await disk.put('fits.qcow2', Readable.from([randomBytes(MiB)]));
        expect(fits.size).toBe(MiB);
        await disk.delete('fits.qcow2');
      } finally {
        await executor.close();
      }
    });
  }
});

const sshSuite = 'skip' in target ? describe.skip : describe;
sshSuite(
  `local storage faults: the SSH connection drops mid-put${'skip' in target ? ` (skipped: ${'skip' in target ? target.skip : ''})` : ''}`,
  () => {
    let proxy: TcpProxy;
    let root: string;
    beforeAll(async () => {
      proxy = await startTcpProxy(SSH_HOST, SSH_PORT);
      root = mkdtempSync('/var/tmp/ii-drop-');
    });
    afterAll(async () => {
      await proxy.close();
      rmSync(root, { recursive: true, force: true });
    });

    it('nothing appears under the final key; the driver removes its temp file when it can reconnect', async () => {
      if ('skip' in target) return;
      const executor = createSshExecutor({ ...target.connection, port: proxy.port });
      const disk = wrapStorageDriver(localStorageDriver.create({ path: root }, { executor }), { retries: { attempts: 1 } });
      try {
        for (const size of [undefined, 2 * MiB]) {
          // size announced: all of it is sent, but the body never ends, so no commit byte follows
          const put = disk.put('dropped.qcow2', stallingBody(2 * MiB), { size });
          await waitUntil(() => filesUnder(root).length > 0);
          expect(filesUnder(root)[0]).toMatch(/^\.dropped\.qcow2\..*\.part$/);
          await new Promise((resolve) => setTimeout(resolve, 300));
          proxy.dropAll();
          expect(await codeOf(put)).toBe('STORAGE_UNAVAILABLE');
          await waitUntil(() => filesUnder(root).length === 0);
          expect(filesUnder(root)).toEqual([]);
          expect(await disk.stat('dropped.qcow2')).toBeNull();
        }
      } finally {
        await executor.close();
      }
    });

    it('when the host stays unreachable, the temp file is left as an incomplete upload and cleanup removes it', async () => {
      if ('skip' in target) return;
      const executor = createSshExecutor({ ...target.connection, port: proxy.port }, { readyTimeoutMs: 5000 });
      const disk = wrapStorageDriver(localStorageDriver.create({ path: root }, { executor }), { retries: { attempts: 1 } });
      const cleanupExecutor = createSshExecutor(target.connection);
      const cleanup = wrapStorageDriver(localStorageDriver.create({ path: root }, { executor: cleanupExecutor }));
      try {
        const put = disk.put('sub/stranded.qcow2', stallingBody(2 * MiB));
        await waitUntil(() => filesUnder(root).length > 0);
        // Close the proxy for good: the driver's own removal of the temp file cannot reach the host.
        await proxy.close();
        expect(await codeOf(put)).toBe('STORAGE_UNAVAILABLE');
        expect(await cleanup.stat('sub/stranded.qcow2')).toBeNull();
        const leftovers = await cleanup.listIncomplete();
        expect(leftovers.map((u) => u.key)).toEqual(['sub/stranded.qcow2']);
        expect((await cleanup.list()).items).toEqual([]);
        for (const upload of leftovers) await cleanup.abortIncomplete(upload);
        expect(await cleanup.listIncomplete()).toEqual([]);
        expect(filesUnder(root)).toEqual([]);
      } finally {
        await executor.close();
        await cleanupExecutor.close();
      }
    });
  },
);
