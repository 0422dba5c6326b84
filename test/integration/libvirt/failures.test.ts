import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import type { CaptureMethod } from '../../../drivers/hypervisor/libvirt';
import { domainTag } from '../../../drivers/hypervisor/libvirt/names';
import { parseDomainDisks, selectPrimaryDisk } from '../../../drivers/hypervisor/libvirt/parsers';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { startTcpProxy } from '../exec/tcp-proxy';
import { freshScratchDir, leftovers, libvirtSkipReason, makeDriver, recordGuest, wipeL1, withFullDirectory } from './setup';

const skip = libvirtSkipReason();

/** Cuts a file to half its length, as a converter that stopped writing midway would leave it. */
function truncateHalf(path: string): void {
  truncateSync(path, Math.floor(statSync(path).size / 2));
}

describe.skipIf(skip !== null)(`libvirt driver: failures leave nothing behind${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;

  beforeAll(() => {
    guest = createTestGuest();
    scratch = freshScratchDir('failures');
    outDir = freshScratchDir('failures-out');
  });
  afterAll(() => {
    guest?.remove();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });

  for (const method of ['pull-backup', 'push-backup', 'snapshot-commit'] as CaptureMethod[]) {
    it(`aborting a ${method} capture mid-way ends with CANCELLED, no job, no files, the guest untouched`, async () => {
      const before = recordGuest(guest.name);
      const controller = new AbortController();
      const out = `${outDir}/aborted-${method}.qcow2`;
      const driver = makeDriver(scratch, { method, hooks: { afterJobStart: () => controller.abort() } });
      await expect(
        driver.capture({ domainName: guest.name, output: { kind: 'path', path: out }, signal: controller.signal }),
      ).rejects.toMatchObject({ code: 'CANCELLED' });
      before.expectUntouched();
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.part`)).toBe(false);
      expect(leftovers(scratch)).toEqual([]);
      expect(await driver.recover(guest.name)).toEqual([]);
    });
  }

  // Completeness comes from the converter's result, qemu-img info/check and byte counts (no second
  // read of the output): an output damaged after it was written is refused, and nothing is kept.
  const damaged = [
    { method: 'pull-backup', damage: truncateHalf, what: 'truncated' },
    { method: 'push-backup', damage: truncateHalf, what: 'truncated' },
    { method: 'snapshot-commit', damage: wipeL1, what: 'with a wiped L1 table' },
    { method: 'pull-backup', damage: wipeL1, what: 'with a wiped L1 table', stream: true },
  ] as const;
  for (const { method, damage, what, ...rest } of damaged) {
    const stream = 'stream' in rest;
    it(`a ${method} output ${what} after it was written fails the ${stream ? 'stream' : 'path'} capture with CAPTURE_FAILED and leaves nothing`, async () => {
      const before = recordGuest(guest.name);
      const out = `${outDir}/damaged-${method}.qcow2`;
      // A stream output is checked while it streams: the consumer's stream fails instead of ending.
      let ended = false;
      let failed: unknown;
      const driver = makeDriver(scratch, { method, hooks: { afterOutputWritten: ({ path }) => damage(path) } });
      const consume = async (bytes: AsyncIterable<unknown>) => {
        try {
          for await (const chunk of bytes) void chunk;
          ended = true;
        } catch (error) {
          failed = error;
          throw error;
        }
      };
      const output = stream ? ({ kind: 'stream', consume } as const) : ({ kind: 'path', path: out } as const);
      await expect(driver.capture({ domainName: guest.name, output })).rejects.toMatchObject({
        code: 'CAPTURE_FAILED',
        message: expect.stringMatching(/not complete/),
      });
      expect(ended).toBe(false);
      if (stream) expect(failed).toMatchObject({ code: 'CAPTURE_FAILED', message: expect.stringMatching(/not complete/) });
      before.expectUntouched();
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.part`)).toBe(false);
      expect(leftovers(scratch)).toEqual([]);
    });
  }

  for (const method of ['pull-backup', 'snapshot-commit'] as CaptureMethod[]) {
    it(`a ${method} capture failing right after the copy still ends its job or merges its overlay`, async () => {
      const before = recordGuest(guest.name);
      const out = `${outDir}/hook-failed-${method}.qcow2`;
      const driver = makeDriver(scratch, {
        method,
        hooks: {
          afterOutputWritten: () => {
            throw new Error('sealing refused');
          },
        },
      });
      await expect(driver.capture({ domainName: guest.name, output: { kind: 'path', path: out } })).rejects.toMatchObject({
        code: 'CAPTURE_FAILED',
      });
      before.expectUntouched();
      expect(existsSync(`${out}.part`)).toBe(false);
      expect(leftovers(scratch)).toEqual([]);
    });
  }

  it('a raw output cut short after it was written fails the cold capture', async () => {
    const cold = createTestGuest({ start: false });
    try {
      const out = `${outDir}/damaged.raw`;
      const driver = makeDriver(scratch, { hooks: { afterOutputWritten: ({ path }) => truncateHalf(path) } });
      await expect(driver.capture({ domainName: cold.name, output: { kind: 'path', path: out }, format: 'raw' })).rejects.toMatchObject({
        code: 'CAPTURE_FAILED',
        message: expect.stringMatching(/not complete/),
      });
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.part`)).toBe(false);
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      cold.remove();
    }
  });

  it('a consumer that fails mid-stream aborts the capture and removes the scratch output', async () => {
    const before = recordGuest(guest.name);
    const driver = makeDriver(scratch);
    const failing = driver.capture({
      domainName: guest.name,
      output: {
        kind: 'stream',
        async consume(stream) {
          for await (const chunk of stream) {
            void chunk;
            throw new Error('upload refused');
          }
        },
      },
    });
    await expect(failing).rejects.toMatchObject({ code: 'CAPTURE_FAILED' });
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a capture process killed between snapshot and commit is repaired by recover()', async () => {
    const before = recordGuest(guest.name);
    const out = `${outDir}/crashed.qcow2`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), guest.name, scratch, out], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).toContain('overlay-created');
    // The guest now runs on the marker overlay, as libvirt reports.
    const primary = selectPrimaryDisk(parseDomainDisks(virsh('dumpxml', '--domain', guest.name)));
    expect(primary?.source).toMatch(/\/ii-overlay-[0-9a-f]{8}-[0-9a-f]{8}\.qcow2$/);
    expect(primary?.backingChain[0]).toBe(guest.primaryPath);

    const actions = await makeDriver(scratch).recover();
    expect(actions.map((a) => a.action)).toEqual(expect.arrayContaining(['commit-overlay', 'remove-scratch-files']));
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
    rmSync(`${out}.part`, { force: true });
    expect(await makeDriver(scratch).recover()).toEqual([]);
  });

  it('recover() pivots a ready active-commit mirror and aborts a leftover pull backup of ours', async () => {
    const before = recordGuest(guest.name);
    const tag = domainTag(guest.name);
    const overlay = `${scratch}/ii-overlay-${tag}-11111111.qcow2`;
    virsh(
      'snapshot-create-as',
      '--domain',
      guest.name,
      '--disk-only',
      '--atomic',
      '--no-metadata',
      '--diskspec',
      `vda,file=${overlay}`,
      '--diskspec',
      'vdb,snapshot=no',
    );
    virsh('blockcommit', '--domain', guest.name, '--path', 'vda', '--active', '--wait');
    expect(selectPrimaryDisk(parseDomainDisks(virsh('dumpxml', '--domain', guest.name)))?.mirror).toEqual({
      job: 'active-commit',
      ready: true,
    });
    const first = await makeDriver(scratch).recover(guest.name);
    expect(first.map((a) => a.action)).toEqual(['pivot-active-commit', 'remove-scratch-files']);
    before.expectUntouched();

    const backupXml = join(outDir, 'pull.xml');
    writeFileSync(
      backupXml,
      `<domainbackup mode='pull'><server transport='unix' socket='${scratch}/ii-nbd-${tag}-22222222.sock'/><disks><disk name='vda' backup='yes' type='file'><scratch file='${scratch}/ii-scratch-${tag}-22222222.qcow2'/></disk><disk name='vdb' backup='no'/><disk name='sda' backup='no'/></disks></domainbackup>`,
    );
    virsh('backup-begin', '--domain', guest.name, '--backupxml', backupXml);
    const second = await makeDriver(scratch).recover(guest.name);
    expect(second.map((a) => a.action)).toContain('abort-backup-job');
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
    expect(await makeDriver(scratch).recover(guest.name)).toEqual([]);
  });

  it('a full scratch directory fails a stream capture with STORAGE_FULL at once; a full target fails a path capture', async () => {
    await withFullDirectory('tmpfs', async (mount) => {
      const before = recordGuest(guest.name);
      const driver = makeDriver(mount);
      await expect(
        driver.capture({ domainName: guest.name, output: { kind: 'stream', consume: async () => undefined } }),
      ).rejects.toMatchObject({ code: 'STORAGE_FULL' });
      await expect(
        makeDriver(scratch).capture({ domainName: guest.name, output: { kind: 'path', path: `${mount}/image.qcow2` } }),
      ).rejects.toMatchObject({ code: 'STORAGE_FULL' });
      before.expectUntouched();
      expect(leftovers(mount)).toEqual(['filler']);
      expect(leftovers(scratch)).toEqual([]);
    });
  });

  it('a dropped SSH connection mid-capture ends with a typed error, and recovery leaves nothing behind', async () => {
    const target = await sshTarget();
    if ('skip' in target) throw new Error(target.skip);
    const proxy = await startTcpProxy('127.0.0.1', target.connection.port ?? 22);
    const executor = createSshExecutor({ ...target.connection, port: proxy.port });
    try {
      const before = recordGuest(guest.name);
      const driver = makeDriver(scratch, { hooks: { afterJobStart: () => proxy.dropAll() } }, executor);
      const error = await driver
        .capture({ domainName: guest.name, output: { kind: 'path', path: `${outDir}/dropped.qcow2` } })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: expect.stringMatching(/^(HYPERVISOR_UNREACHABLE|CAPTURE_FAILED)$/) });
      await makeDriver(scratch).recover(guest.name);
      before.expectUntouched();
      expect(leftovers(scratch)).toEqual([]);
      expect(existsSync(`${outDir}/dropped.qcow2.part`)).toBe(false);
    } finally {
      await executor.close();
      await proxy.close();
    }
  });
});
