import { describe, expect, it } from 'vitest';
import { DELETE_SCRIPT } from '../../../drivers/storage/local/commands';
import { createNfsStorageDriver } from '../../../drivers/storage/nfs/driver';
import { judgeMount, parseNfsSource } from '../../../drivers/storage/nfs/mount';
import { NfsStorageOptionsSchema } from '../../../drivers/storage/nfs/options';
import type { ExecResult, Executor } from '../../../src/ports/executor';

const options = NfsStorageOptionsSchema.parse({ server: 'nas.example', exportPath: '/export/images', mountPoint: '/mnt/images' });

describe('NFS mount judgement', () => {
  it('parses mount sources, including IPv6 servers', () => {
    expect(parseNfsSource('nas.example:/export/images/')).toEqual({ server: 'nas.example', path: '/export/images' });
    expect(parseNfsSource('[fd00::5]:/export')).toEqual({ server: 'fd00::5', path: '/export' });
    expect(parseNfsSource('/dev/vda1')).toBeNull();
  });

  it('accepts exactly an nfs/nfs4 mount of the export at the mount point', () => {
    const nfs = { target: '/mnt/images', source: 'NAS.example:/export/images', fstype: 'nfs4', options: 'rw' };
    expect(judgeMount(options, nfs).ok).toBe(true);
    expect(judgeMount(options, { ...nfs, fstype: 'nfs' }).ok).toBe(true);
    expect(judgeMount({ ...options, server: '[fd00::5]' }, { ...nfs, source: '[fd00::5]:/export/images' }).ok).toBe(true);
  });

  it.each([
    [null, '/mnt/images does not exist'],
    [{ target: '/', source: '/dev/vda', fstype: 'ext4', options: 'rw' }, 'nothing is mounted at /mnt/images'],
    [{ target: '/mnt/images', source: 'nas.example:/export/images', fstype: 'tmpfs', options: 'rw' }, 'is a tmpfs mount'],
    [
      { target: '/mnt/images', source: 'other:/export/images', fstype: 'nfs4', options: 'rw' },
      'NFS mount of other:/export/images, not of nas.example:/export/images',
    ],
    [{ target: '/mnt/images', source: 'nas.example:/export', fstype: 'nfs4', options: 'rw' }, 'not of nas.example:/export/images'],
  ])('rejects %j', (state, reason) => {
    const verdict = judgeMount(options, state);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toContain(reason);
  });

  it('rejects configs with unsafe mount options or relative paths, naming the field', () => {
    for (const [config, field] of [
      [{ ...options, mountOptions: 'vers=4; rm -rf /' }, 'mountOptions'],
      [{ ...options, exportPath: 'export' }, 'exportPath'],
      [{ ...options, mountPoint: 'mnt' }, 'mountPoint'],
      [{ ...options, server: 'nas example' }, 'server'],
    ] as const) {
      const result = NfsStorageOptionsSchema.safeParse(config);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.path).toEqual([field]);
    }
  });
});

/** A fake executor: findmnt reports what `mounted` says; `mount` flips it to mounted. */
function fakeHypervisor(): Executor & { commands: string[]; deleted: string[]; mounted: boolean } {
  const fake = {
    label: 'fake',
    commands: [] as string[],
    /** Paths removed by the delete script (`sh -c DELETE_SCRIPT sh ROOT KEY`). */
    deleted: [] as string[],
    mounted: false,
    async run(argv: readonly string[]): Promise<ExecResult> {
      fake.commands.push(argv.join(' '));
      if (argv[2] === DELETE_SCRIPT) fake.deleted.push(`${argv[4]}/${argv[5]}`);
      if (argv[0] === 'findmnt') {
        const fs = fake.mounted
          ? { target: '/mnt/images', source: 'nas.example:/export/images', fstype: 'nfs4', options: 'rw,vers=4.2' }
          : { target: '/', source: '/dev/vda', fstype: 'ext4', options: 'rw' };
        return { exitCode: 0, stdout: JSON.stringify({ filesystems: [fs] }), stderr: '' };
      }
      if (argv.includes('mount')) {
        fake.mounted = true;
        return { exitCode: 0, stdout: '', stderr: '' };
      }
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    stream: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
  };
  return fake;
}

describe('nfs driver mount handling', () => {
  it('mounts when autoMount is on and the export is absent, then trusts the check for a while', async () => {
    const executor = fakeHypervisor();
    const driver = createNfsStorageDriver({ ...options, autoMount: true, mountOptions: 'vers=4.2' }, executor, { verifiedForMs: 60_000 });
    await driver.delete('a');
    await driver.delete('b');
    expect(executor.mounted).toBe(true);
    expect(executor.commands.filter((c) => c.startsWith('findmnt'))).toHaveLength(2);
    expect(executor.commands.filter((c) => c.includes('mount -t nfs -o vers=4.2 nas.example:/export/images /mnt/images'))).toHaveLength(1);
    expect(executor.deleted).toEqual(['/mnt/images/a', '/mnt/images/b']);
  });

  it('checks again after the trust period, so an unmounted share is noticed', async () => {
    const executor = fakeHypervisor();
    executor.mounted = true;
    const driver = createNfsStorageDriver(options, executor, { verifiedForMs: 0 });
    await driver.delete('a');
    executor.mounted = false;
    await expect(driver.delete('b')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(executor.deleted).toEqual(['/mnt/images/a']);
  });
});
