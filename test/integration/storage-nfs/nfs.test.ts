import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { nfsStorageDriver } from '../../../drivers/storage/nfs';
import { isInstanceImagesError } from '../../../src/errors';
import type { ExecOptions, Executor } from '../../../src/ports/executor';
import { wrapStorageDriver } from '../../../src/storage/disk';
import { testStorageDriver } from '../../../src/testing/storage-driver-suite';
import { sshTarget } from '../exec/ssh-target';

// This kernel has no NFS client (ENVIRONMENT.md): nothing can really be mounted over NFS here.
// What runs for real: findmnt's view of the mount point (plain directory, missing directory, a
// tmpfs that even carries the export's name as its source), and `mount -t nfs` failing. The file
// operations at a verified mount point run for real on a local directory, with only findmnt's
// answer replaced by what it prints for an NFS mount (see the last describe block).

const SERVER = '127.0.0.1';
const EXPORT = '/export/images';
const target = await sshTarget();

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
    return { code: 'resolved', message: '' };
  } catch (error) {
    return isInstanceImagesError(error) ? { code: error.code, message: error.message } : { code: 'raw', message: String(error) };
  }
}

/** Records every argv, running them on the real executor underneath. */
function recording(inner: Executor): Executor & { commands: string[][] } {
  const commands: string[][] = [];
  return {
    label: inner.label,
    commands,
    run: (argv, options) => (commands.push([...argv]), inner.run(argv, options)),
    stream: (argv, options) => (commands.push([...argv]), inner.stream(argv, options)),
    close: () => inner.close(),
  };
}

let base: string;
beforeAll(() => {
  base = mkdtempSync('/var/tmp/ii-nfs-');
});
afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

describe('nfs mount verification with the real findmnt and mount', () => {
  it('a plain directory is not an NFS mount: health says why, and nothing is written underneath', async () => {
    const mountPoint = `${base}/plain`;
    execFileSync('mkdir', ['-p', mountPoint]);
    const executor = recording(createLocalExecutor());
    const disk = wrapStorageDriver(
      nfsStorageDriver.create(nfsStorageDriver.optionsSchema.parse({ server: SERVER, exportPath: EXPORT, mountPoint }), { executor }),
      { retries: { attempts: 1 } },
    );
    const health = await disk.health();
    expect(health.ok).toBe(false);
    expect(health.message).toContain(`nothing is mounted at ${mountPoint}`);
    const put = await failure(disk.put('image.qcow2', Readable.from([Buffer.from('data')])));
    expect(put.code).toBe('STORAGE_UNAVAILABLE');
    expect(put.message).toContain('autoMount is off');
    for (const operation of [disk.stat('image.qcow2'), disk.list(), disk.delete('image.qcow2'), disk.freeSpace(), disk.listIncomplete()]) {
      expect((await failure(operation)).code).toBe('STORAGE_UNAVAILABLE');
    }
    expect(readdirSync(mountPoint)).toEqual([]);
    expect(executor.commands.every((argv) => argv[0] === 'findmnt')).toBe(true);
  });

  it('a missing mount point is reported as missing', async () => {
    const executor = createLocalExecutor();
    const driver = nfsStorageDriver.create(
      nfsStorageDriver.optionsSchema.parse({ server: SERVER, exportPath: EXPORT, mountPoint: `${base}/missing` }),
      { executor },
    );
    const health = await driver.health();
    expect(health).toEqual({ ok: false, message: `${SERVER}:${EXPORT} is not usable on local: ${base}/missing does not exist` });
  });

  describe('a non-NFS filesystem mounted at the mount point', () => {
    let mountPoint: string;
    beforeAll(() => {
      mountPoint = `${base}/tmpfs`;
      execFileSync('mkdir', ['-p', mountPoint]);
      // tmpfs accepts any source name: this one even carries the export's name.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', `${SERVER}:${EXPORT}`, mountPoint]);
    });
    afterAll(() => {
      execFileSync('umount', [mountPoint]);
    });

    it('is rejected by its type even with the right source name, and autoMount never mounts over it', async () => {
      const executor = recording(createLocalExecutor());
      const driver = nfsStorageDriver.create(
        nfsStorageDriver.optionsSchema.parse({ server: SERVER, exportPath: EXPORT, mountPoint, autoMount: true }),
        { executor },
      );
      const health = await driver.health();
      expect(health.ok).toBe(false);
      expect(health.message).toContain(`${mountPoint} is a tmpfs mount of ${SERVER}:${EXPORT}, not NFS`);
      expect((await failure(driver.stat('x'))).code).toBe('STORAGE_UNAVAILABLE');
      expect(executor.commands.some((argv) => argv.includes('mount'))).toBe(false);
    });
  });

  const executors: Array<[string, () => Executor]> = [['local executor', () => createLocalExecutor()]];
  if (!('skip' in target)) executors.push(['SSH executor', () => createSshExecutor(target.connection)]);
  for (const [label, makeExecutor] of executors) {
    it(`with autoMount, the real mount -t nfs is run and its failure is reported as STORAGE_UNAVAILABLE (${label})`, async () => {
      const mountPoint = `${base}/auto-${label.split(' ')[0]}`;
      const inner = makeExecutor();
      const executor = recording(inner);
      try {
        const driver = nfsStorageDriver.create(
          nfsStorageDriver.optionsSchema.parse({
            server: SERVER,
            exportPath: EXPORT,
            mountPoint,
            autoMount: true,
            mountOptions: 'vers=4.2,soft,timeo=50',
          }),
          { executor },
        );
        const health = await driver.health();
        expect(health.ok).toBe(false);
        expect(health.message).toMatch(
          /Mounting 127\.0\.0\.1:\/export\/images at .* failed: .*(unknown filesystem type|No such device|helper program)/,
        );
        const mountCommand = executor.commands.find((argv) => argv.includes('mount'));
        expect(mountCommand?.slice(-7)).toEqual(['mount', '-t', 'nfs', '-o', 'vers=4.2,soft,timeo=50', `${SERVER}:${EXPORT}`, mountPoint]);
        const put = await failure(driver.put('x', Readable.from([Buffer.from('x')])));
        expect(put.code).toBe('STORAGE_UNAVAILABLE');
        // the mount point was created, but nothing was written into it
        expect(readdirSync(mountPoint)).toEqual([]);
      } finally {
        await inner.close();
      }
    });
  }
});

/** What findmnt -J prints for an NFS mount of the export at `mountPoint` (format of util-linux 2.38). */
function nfsFindmntJson(mountPoint: string): string {
  return JSON.stringify(
    {
      filesystems: [
        {
          target: mountPoint,
          source: `${SERVER}:${EXPORT}`,
          fstype: 'nfs4',
          options: 'rw,relatime,vers=4.2,rsize=1048576,wsize=1048576,hard,proto=tcp,timeo=600',
        },
      ],
    },
    null,
    3,
  );
}

/** The real local executor, except that findmnt for the mount point answers as for an NFS mount. */
function nfsMountedExecutor(mountPoint: string): Executor {
  const inner = createLocalExecutor();
  const isFindmnt = (argv: readonly string[]) => argv[0] === 'findmnt' && argv.includes(mountPoint);
  return {
    label: 'local (findmnt answers as for an NFS mount)',
    async run(argv, options?: ExecOptions) {
      if (isFindmnt(argv)) return { exitCode: 0, stdout: nfsFindmntJson(mountPoint), stderr: '' };
      return inner.run(argv, options);
    },
    stream: (argv, options) => inner.stream(argv, options),
    close: () => inner.close(),
  };
}

describe('file operations at a verified NFS mount point', () => {
  const mountPoint = mkdtempSync('/var/tmp/ii-nfs-mounted-');
  afterAll(() => rmSync(mountPoint, { recursive: true, force: true }));

  it('health reports the mount and the directory', async () => {
    const driver = nfsStorageDriver.create(nfsStorageDriver.optionsSchema.parse({ server: SERVER, exportPath: `${EXPORT}/`, mountPoint }), {
      executor: nfsMountedExecutor(mountPoint),
    });
    const health = await driver.health();
    expect(health.ok).toBe(true);
    expect(health.message).toContain(`${SERVER}:${EXPORT}/ is mounted at ${mountPoint} (nfs4`);
    expect(driver.pathOf?.('a/b.qcow2')).toBe(`${mountPoint}/a/b.qcow2`);
  });

  testStorageDriver(
    { describe, it, expect },
    {
      name: 'nfs (at a mount point that findmnt reports as the export)',
      create: () =>
        nfsStorageDriver.create(nfsStorageDriver.optionsSchema.parse({ server: SERVER, exportPath: EXPORT, mountPoint }), {
          executor: nfsMountedExecutor(mountPoint),
        }),
    },
  );
});
