import { describe, expect, it } from 'vitest';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import { inspectDomain } from '../../../drivers/hypervisor/libvirt/inspect';
import type { ExecResult, Executor } from '../../../src/ports/executor';
import { fakeVirshExecutor, TEST_CAPABILITIES, type VirshAnswer } from '../../support/fake-virsh';

// A raw guest disk is fully controlled by the guest: it can write a qcow2 header naming a host
// file as backing file. Probing its format (qemu-img without -f) would let a later convert with
// that format copy the host file into the captured image.
const DOMAIN_XML = `<domain type='qemu'><name>vm</name><devices>
  <disk type='file' device='disk'><source file='/var/lib/libvirt/images/vm.img'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`;

/** The inspection asks one virsh; the disk's sizes fail there, so `qemu-img info` runs. */
function fakeExecutor(calls: string[][]): Executor {
  const answers: Record<string, VirshAnswer> = {
    domstate: { stdout: 'shut off\n' },
    dumpxml: { stdout: DOMAIN_XML },
    domblkinfo: { error: 'no' },
  };
  return fakeVirshExecutor(calls, answers, (argv): ExecResult => {
    if (argv[1] !== 'info') return { exitCode: 1, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    // What qemu-img reports when it probes a guest-written qcow2 header.
    const probed = !argv.includes('-f');
    const info = {
      format: probed ? 'qcow2' : argv[argv.indexOf('-f') + 1],
      'virtual-size': 1048576,
      'actual-size': 4096,
      ...(probed ? { 'backing-filename': '/etc/shadow' } : {}),
    };
    return { exitCode: 0, stdout: JSON.stringify(info), stderr: '' };
  });
}

describe('libvirt inspect never trusts a probed disk format', () => {
  it('treats a disk without <driver type> as raw and never runs qemu-img info without -f', async () => {
    const calls: string[][] = [];
    const info = await inspectDomain(new HostCommands(fakeExecutor(calls), 'qemu:///system'), 'vm', TEST_CAPABILITIES);
    expect(info.primaryDisk.format).toBe('raw');
    const infos = calls.filter((argv) => argv[0] === 'qemu-img' && argv[1] === 'info');
    expect(infos.length).toBeGreaterThan(0);
    for (const argv of infos) expect(argv.slice(argv.indexOf('-f'), argv.indexOf('-f') + 2)).toEqual(['-f', 'raw']);
  });
});
