/**
 * The inspection asks libvirt everything in ONE virsh (state, XML, every disk's sizes) and runs
 * `qemu-img info` only when libvirt could not give the sizes; a missing domain is NOT_FOUND.
 * The fake virsh (test/support/fake-virsh.ts) answers the command string as virsh does.
 */
import { describe, expect, it } from 'vitest';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import { inspectDomain } from '../../../drivers/hypervisor/libvirt/inspect';
import { isInstanceImagesError } from '../../../src/errors';
import type { ExecResult } from '../../../src/ports/executor';
import { fakeVirshExecutor, TEST_CAPABILITIES, type VirshAnswer } from '../../support/fake-virsh';

const XML = `<domain type='kvm'><name>vm</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/vm.qcow2'/><target dev='vda' bus='virtio'/></disk>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>`;

const qemuImgInfo = (): ExecResult => ({
  exitCode: 0,
  stdout: JSON.stringify({ format: 'qcow2', 'virtual-size': 111, 'actual-size': 22 }),
  stderr: '',
});
const fakeVirsh = (answers: Record<string, VirshAnswer>, calls: string[][]) => fakeVirshExecutor(calls, answers, qemuImgInfo);

describe('inspectDomain', () => {
  it('asks one virsh for state, XML and the sizes, and reads the primary disk’s row', async () => {
    const calls: string[][] = [];
    const executor = fakeVirsh(
      {
        domstate: { stdout: 'running\n' },
        dumpxml: { stdout: XML },
        domblkinfo: { stdout: ' vda   2147483648   1074081792   1074135040\n vdb   16777216     1318912      1376256\n' },
      },
      calls,
    );
    const info = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', TEST_CAPABILITIES);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.slice(0, 4)).toEqual(['virsh', '-q', '-c', 'qemu:///system']);
    expect(info.state).toBe('running');
    expect(info.primaryDisk).toMatchObject({
      target: 'vda',
      path: '/images/vm.qcow2',
      format: 'qcow2',
      virtualSizeBytes: 2147483648,
      allocationBytes: 1074081792,
    });
  });

  it('falls back to qemu-img info (format given) when libvirt gives no sizes', async () => {
    const calls: string[][] = [];
    const executor = fakeVirsh({ domstate: { stdout: 'shut off\n' }, dumpxml: { stdout: XML }, domblkinfo: { error: 'no sizes' } }, calls);
    const info = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', TEST_CAPABILITIES);
    expect(calls.map((argv) => argv[0])).toEqual(['virsh', 'qemu-img']);
    expect(calls[1]).toContain('-f');
    expect(info.primaryDisk).toMatchObject({ virtualSizeBytes: 111, allocationBytes: 22 });
  });

  it('reports a missing domain as NOT_FOUND with virsh’s words', async () => {
    const missing = { error: "failed to get domain 'vm'" };
    const executor = fakeVirsh({ domstate: missing, dumpxml: missing, domblkinfo: missing }, []);
    const error = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', TEST_CAPABILITIES).catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'NOT_FOUND')).toBe(true);
    expect((error as Error).message).toMatch(/virsh domstate failed.*failed to get domain/);
  });
});
