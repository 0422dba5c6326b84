import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createSshExecutor, type SshExecutor } from '../../../drivers/exec/ssh';
import { LibvirtErrorCode, LibvirtRpc, type RpcDomain } from '../../../drivers/hypervisor/libvirt/rpc/client';
import { SYSTEM_SOCKETS } from '../../../drivers/hypervisor/libvirt/rpc-start';
import { createTestGuest, sh, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, libvirtSkipReason } from './setup';

const skip = libvirtSkipReason();

describe.skipIf(skip !== null)(`libvirt RPC client against the real daemon${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let ssh: SshExecutor;

  beforeAll(async () => {
    guest = createTestGuest({ cdrom: false });
    scratch = freshScratchDir('rpc');
    const target = await sshTarget();
    if ('skip' in target) throw new Error(target.skip);
    ssh = createSshExecutor(target.connection);
  });
  afterAll(async () => {
    await ssh?.close();
    if (guest) sh('virsh', '-c', 'qemu:///system', 'undefine', '--domain', guest.name, '--checkpoints-metadata');
    guest?.remove();
    rmSync(scratch, { recursive: true, force: true });
    rmSync('/tmp/ii-pwned-rpc-client', { force: true });
  });

  const openers = {
    'over an SSH stream-local channel (the unprivileged test user, polkit)': async () =>
      LibvirtRpc.open(await ssh.openStreamLocal(SYSTEM_SOCKETS[0]), 'qemu:///system', 'ssh'),
    'over the local socket': async () =>
      LibvirtRpc.open(await createLocalExecutor().openStreamLocal!(SYSTEM_SOCKETS[0]), 'qemu:///system', 'local'),
  };

  for (const [how, open] of Object.entries(openers)) {
    it(`${how}: answers as virsh does, refuses hostile names as unknown, and closes`, async () => {
      const rpc = await open();
      try {
        const domain: RpcDomain = await rpc.lookupDomain(guest.name);
        expect(domain.name).toBe(guest.name);
        expect(await rpc.domainState(domain)).toBe(virsh('domstate', '--domain', guest.name).trim());
        expect((await rpc.domainXml(domain)).trim()).toBe(virsh('dumpxml', '--domain', guest.name).trim());
        const blocks = JSON.parse(await rpc.monitorCommand(domain, '{"execute":"query-block"}')) as { return: Array<{ device: string }> };
        expect(Array.isArray(blocks.return)).toBe(true);
        await expect(rpc.checkpointXml(domain, 'ii-no-such-checkpoint')).rejects.toMatchObject({
          code: LibvirtErrorCode.noDomainCheckpoint,
        });
        for (const name of ["x'; touch /tmp/ii-pwned-rpc-client; '", '$(touch /tmp/ii-pwned-rpc-client)', 'a\nb', '-x', '']) {
          await expect(rpc.lookupDomain(name)).rejects.toMatchObject({ code: LibvirtErrorCode.noDomain });
        }
        expect(sh('test', '-e', '/tmp/ii-pwned-rpc-client').code).not.toBe(0);
        expect(await rpc.jobType(domain)).toBe('none');
      } finally {
        await rpc.close();
      }
      expect(rpc.closed).toBe(true);
      await expect(rpc.lookupDomain(guest.name)).rejects.toMatchObject({ code: 0 });
    });
  }

  it('begins a pull-mode backup job with its checkpoint, sees it active, aborts it, and deletes the checkpoint', async () => {
    const rpc = await openers['over an SSH stream-local channel (the unprivileged test user, polkit)']();
    try {
      const domain = await rpc.lookupDomain(guest.name);
      const socket = `${scratch}/nbd.sock`;
      const backup = [
        `<domainbackup mode='pull'><server transport='unix' socket='${socket}'/>`,
        `<disks><disk name='vda' backup='yes' type='file'><scratch file='${scratch}/scratch.qcow2'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>`,
      ].join('');
      const checkpoint =
        "<domaincheckpoint><name>ii-rpc-cp</name><disks><disk name='vda' checkpoint='bitmap'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>";
      await rpc.backupBegin(domain, backup, checkpoint);
      expect(['bounded', 'unbounded']).toContain(await rpc.jobType(domain));
      expect(sh('test', '-S', socket).code).toBe(0);
      // A second job is refused by libvirt, typed, and the first one keeps running.
      await expect(rpc.backupBegin(domain, backup, null)).rejects.toMatchObject({ name: 'LibvirtRpcError' });
      expect(['bounded', 'unbounded']).toContain(await rpc.jobType(domain));
      await rpc.abortJob(domain);
      expect(await rpc.jobType(domain)).toBe('none');
      expect(await rpc.checkpointXml(domain, 'ii-rpc-cp')).toContain('<name>ii-rpc-cp</name>');
      await rpc.checkpointDelete(domain, 'ii-rpc-cp');
      await expect(rpc.checkpointXml(domain, 'ii-rpc-cp')).rejects.toMatchObject({ code: LibvirtErrorCode.noDomainCheckpoint });
      // No job: aborting is refused as an invalid operation.
      await expect(rpc.abortJob(domain)).rejects.toMatchObject({ code: LibvirtErrorCode.operationInvalid });
    } finally {
      await rpc.close();
    }
    expect(virsh('domjobinfo', '--domain', guest.name)).toMatch(/Job type:\s+None/);
    expect(virsh('checkpoint-list', '--name', '--domain', guest.name).trim()).toBe('');
  });
});
