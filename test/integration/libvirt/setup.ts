import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { expect } from 'vitest';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver, type LibvirtDriverOptions } from '../../../drivers/hypervisor/libvirt';
import type { Executor } from '../../../src/ports/executor';
import type { HostHypervisor } from '../../../src/ports/host-directory';
import { diskChainSnapshot, libvirtUnavailableReason, qemuPid, sh, virsh } from '../../support/guests';

/** Why the libvirt suites cannot run here, or null. In CI a missing service is a failure. */
export function libvirtSkipReason(): string | null {
  const reason = libvirtUnavailableReason();
  if (reason !== null && process.env.CI) throw new Error(`Integration service missing in CI: ${reason}`);
  return reason;
}

/** A fresh scratch directory for one suite. */
export function freshScratchDir(name: string): string {
  const dir = `/var/tmp/ii-it-${name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The hypervisor record of this machine, with a given scratch dir. */
export function localHypervisor(scratchDir: string): HostHypervisor {
  return { id: 'hv-local', name: 'local', locationId: 'loc', connection: { type: 'local' }, scratchDir };
}

/** A driver on the local executor (or the given one). */
export function makeDriver(scratchDir: string, options: LibvirtDriverOptions = {}, executor: Executor = createLocalExecutor()) {
  return createLibvirtDriver(localHypervisor(scratchDir), executor, options);
}

/** What a guest looks like before a capture; `expectUntouched` compares after. */
export function recordGuest(name: string) {
  const chain = diskChainSnapshot(name);
  const pid = qemuPid(name);
  return {
    chain,
    pid,
    expectUntouched() {
      expect(virsh('domstate', '--domain', name).trim()).toBe('running');
      expect(qemuPid(name)).toBe(pid);
      expect(diskChainSnapshot(name)).toEqual(chain);
      expect(virsh('domjobinfo', '--domain', name)).toMatch(/Job type:\s+None/);
    },
  };
}

/** Files left in a scratch directory. */
export function leftovers(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** `qemu-img compare -U` of two images; true when identical. */
export function imagesIdentical(a: string, b: string): boolean {
  const result = sh('qemu-img', 'compare', '-U', a, b);
  return result.code === 0;
}

/** The image's backing filename (null when standalone) and format. */
export function imageInfo(path: string): { format: string; backing: string | null; virtualSize: number } {
  const info = JSON.parse(sh('qemu-img', 'info', '--output=json', '-U', path).stdout) as Record<string, unknown>;
  return {
    format: String(info.format),
    backing: (info['backing-filename'] as string | undefined) ?? null,
    virtualSize: Number(info['virtual-size']),
  };
}

/** Zeroes a qcow2 file's L1 table: every data cluster stays in the file, but the image reads as zeros. */
export function wipeL1(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    const header = Buffer.alloc(48);
    readSync(fd, header, 0, 48, 0);
    const entries = header.readUInt32BE(36);
    writeSync(fd, Buffer.alloc(entries * 8), 0, entries * 8, Number(header.readBigUInt64BE(40)));
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `fn` with a directory on an 8 MiB tmpfs that a 7 MiB file fills (its only entry, `filler`),
 * unmounted and removed afterwards: a scratch or target directory without room.
 */
export async function withFullDirectory(name: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const mount = `/var/tmp/ii-it-${name}-${process.pid}`;
  sh('mkdir', '-p', mount);
  const mounted = sh('mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount);
  expect(mounted.code, mounted.stderr).toBe(0);
  try {
    sh('dd', 'if=/dev/zero', `of=${mount}/filler`, 'bs=1M', 'count=7', 'status=none');
    await fn(mount);
  } finally {
    sh('umount', mount);
    rmSync(mount, { recursive: true, force: true });
  }
}
