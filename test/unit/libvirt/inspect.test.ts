/**
 * The inspection asks libvirt everything in ONE virsh (state, XML, every disk's sizes) and runs
 * `qemu-img info` only when libvirt could not give the sizes; a missing domain is NOT_FOUND.
 * The fake virsh answers a command string as virsh does: each command's output, then the `echo`
 * markers (with `-q`, no newline after a marker on stdout; `echo --err` prints `error: MARK`).
 */
import { describe, expect, it } from 'vitest';
import { HostCommands } from '../../../drivers/hypervisor/libvirt/commands';
import { inspectDomain, type HypervisorCapabilities } from '../../../drivers/hypervisor/libvirt/inspect';
import { isInstanceImagesError } from '../../../src/errors';
import type { ExecResult, Executor } from '../../../src/ports/executor';

const XML = `<domain type='kvm'><name>vm</name><devices>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/vm.qcow2'/><target dev='vda' bus='virtio'/></disk>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>`;

const CAPS: HypervisorCapabilities = {
  libvirtVersion: '9.0.0',
  qemuVersion: '7.2.0',
  backup: true,
  zstd: true,
  liveMethods: ['pull-backup'],
};

type Answer = { stdout: string } | { error: string };

function fakeVirsh(answers: Record<string, Answer>, calls: string[][]): Executor {
  return {
    label: 'fake',
    async run(argv): Promise<ExecResult> {
      calls.push([...argv]);
      if (argv[0] === 'virsh' && argv.length === 5) {
        let stdout = '';
        let stderr = '';
        for (const part of String(argv[4]).split('; ')) {
          const mark = part.replace(/^echo (--err )?-- /, '').replace(/'/g, '');
          if (part.startsWith('echo --err -- ')) stderr += `error: ${mark}\n`;
          else if (part.startsWith('echo -- ')) stdout += mark;
          else {
            const command = part.replace(/'/g, '').split(' ')[0] ?? '';
            const answer = answers[command];
            if (answer && 'stdout' in answer) stdout += answer.stdout;
            else stderr += `error: ${answer?.error ?? 'unknown command'}\n`;
          }
        }
        return { exitCode: stderr.includes('error: failed') ? 1 : 0, stdout, stderr };
      }
      if (argv[0] === 'qemu-img')
        return { exitCode: 0, stdout: JSON.stringify({ format: 'qcow2', 'virtual-size': 111, 'actual-size': 22 }), stderr: '' };
      return { exitCode: 127, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    },
    async stream() {
      throw new Error('not used');
    },
    async close() {},
  };
}

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
    const info = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', CAPS);
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
    const info = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', CAPS);
    expect(calls.map((argv) => argv[0])).toEqual(['virsh', 'qemu-img']);
    expect(calls[1]).toContain('-f');
    expect(info.primaryDisk).toMatchObject({ virtualSizeBytes: 111, allocationBytes: 22 });
  });

  it('reports a missing domain as NOT_FOUND with virsh’s words', async () => {
    const missing = { error: "failed to get domain 'vm'" };
    const executor = fakeVirsh({ domstate: missing, dumpxml: missing, domblkinfo: missing }, []);
    const error = await inspectDomain(new HostCommands(executor, 'qemu:///system'), 'vm', CAPS).catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'NOT_FOUND')).toBe(true);
    expect((error as Error).message).toMatch(/virsh domstate failed.*failed to get domain/);
  });
});
