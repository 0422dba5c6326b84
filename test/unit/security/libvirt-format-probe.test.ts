import { describe, expect, it } from 'vitest';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import { inspectDomain, type HypervisorCapabilities } from '../../../drivers/hypervisor/libvirt/inspect';
import type { ExecResult, Executor } from '../../../src/ports/executor';

// A raw guest disk is fully controlled by the guest: it can write a qcow2 header naming a host
// file as backing file. Probing its format (qemu-img without -f) would let a later convert with
// that format copy the host file into the captured image.
const DOMAIN_XML = `<domain type='qemu'><name>vm</name><devices>
  <disk type='file' device='disk'><source file='/var/lib/libvirt/images/vm.img'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`;

const CAPS: HypervisorCapabilities = {
  libvirtVersion: '9.0.0',
  qemuVersion: '7.2.0',
  backup: true,
  zstd: true,
  liveMethods: ['pull-backup'],
};

function fakeExecutor(calls: string[][]): Executor {
  const ok = (stdout: string): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
  return {
    label: 'fake',
    async run(argv) {
      calls.push([...argv]);
      // The inspection asks one virsh: `CMD; echo -- MARK; echo --err -- MARK; CMD; ...`.
      if (argv[0] === 'virsh' && argv.length === 5) {
        let stdout = '';
        let stderr = '';
        for (const part of String(argv[4]).split('; ')) {
          const mark = part.replace(/^echo (--err )?-- /, '').replace(/'/g, '');
          if (part.startsWith('echo --err -- ')) stderr += `error: ${mark}\n`;
          else if (part.startsWith('echo -- ')) stdout += mark;
          else if (part.includes('domstate')) stdout += 'shut off\n';
          else if (part.includes('dumpxml')) stdout += DOMAIN_XML;
          else stderr += 'error: no\n';
        }
        return { exitCode: 1, stdout, stderr };
      }
      if (argv[0] === 'qemu-img' && argv[1] === 'info') {
        // What qemu-img reports when it probes a guest-written qcow2 header.
        const probed = !argv.includes('-f');
        return ok(
          JSON.stringify({
            format: probed ? 'qcow2' : argv[argv.indexOf('-f') + 1],
            'virtual-size': 1048576,
            'actual-size': 4096,
            ...(probed ? { 'backing-filename': '/etc/shadow' } : {}),
          }),
        );
      }
      return { exitCode: 1, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    },
    async stream() {
      throw new Error('not used');
    },
    async close() {},
  };
}

describe('libvirt inspect never trusts a probed disk format', () => {
  it('treats a disk without <driver type> as raw and never runs qemu-img info without -f', async () => {
    const calls: string[][] = [];
    const info = await inspectDomain(new HostCommands(fakeExecutor(calls), 'qemu:///system'), 'vm', CAPS);
    expect(info.primaryDisk.format).toBe('raw');
    const infos = calls.filter((argv) => argv[0] === 'qemu-img' && argv[1] === 'info');
    expect(infos.length).toBeGreaterThan(0);
    for (const argv of infos) expect(argv.slice(argv.indexOf('-f'), argv.indexOf('-f') + 2)).toEqual(['-f', 'raw']);
  });
});
