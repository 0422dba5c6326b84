/**
 * Helpers shared by the benchmarks in scripts/bench/ (this folder is not run as a bench).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { QEMU_NBD_MALLOC_ENV } from '../../drivers/hypervisor/libvirt/commands';
import { createTestGuest, virsh, type TestGuest } from '../../test/support/guests';

/** Bytes in a MiB. */
export const MiB = 1024 * 1024;
/** Bytes in a GiB. */
export const GiB = 1024 * MiB;

/** `--name value` from the command line (children get the same flags). */
export function flag(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : undefined;
}

/** The median of some measurements. */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
}

/**
 * Node flags of the measuring child processes: V8's defaults, unless `--cap-young-gen` caps the
 * young generation (`--max-semi-space-size=4`), which otherwise grows with the allocation rate and
 * makes peak RSS wander between identical runs.
 */
export const CHILD_NODE_FLAGS: string[] = process.argv.includes('--cap-young-gen') ? ['--max-semi-space-size=4'] : [];

/**
 * A stream of `size` bytes made of one repeated 1 MiB random block (no disk, constant memory), or
 * with `fresh`, of new random bytes in every block (slower to make). Durable writes of a repeated
 * block measured much slower than of fresh random data on this machine's virtual disk (a real
 * disk image repeats no 1 MiB block a thousand times), so throughput against a disk uses `fresh`.
 */
export function generated(size: number, fresh = false): Readable {
  const block = randomBytes(MiB);
  let sent = 0;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const length = Math.min(block.length, size - sent);
      const chunk = fresh ? randomBytes(length) : block.subarray(0, length);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/**
 * A TCG test guest with a 2 GiB disk holding `dataMiB` of random data (started unless `start: false`).
 * With `QEMU_MALLOC=1` in the environment, the guest's QEMU runs with the malloc tunables the driver
 * gives its own qemu-nbd (see docs/operations.md, Troubleshooting), so that a bench shows what an
 * operator's `<qemu:env>` does to the backup export's reads.
 */
export function guestWithRandomData(dataMiB: number, options: { start?: boolean; iothread?: boolean; diskMiB?: number } = {}): TestGuest {
  const guest = createTestGuest({
    start: false,
    diskMiB: options.diskMiB ?? 2048,
    writes: [],
    cdrom: false,
    agentChannel: false,
    iothread: options.iothread ?? false,
    ...(process.env.QEMU_MALLOC === '1' ? { qemuEnv: { GLIBC_TUNABLES: QEMU_NBD_MALLOC_ENV.replace(/^GLIBC_TUNABLES=/, '') } } : {}),
  });
  const random = `${guest.dir}/random.raw`;
  execFileSync('dd', ['if=/dev/urandom', `of=${random}`, 'bs=4M', `count=${Math.ceil(dataMiB / 4)}`, 'status=none']);
  execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', random, guest.primaryPath]);
  rmSync(random);
  execFileSync('sync');
  if (options.start !== false) virsh('start', '--domain', guest.name);
  return guest;
}

/**
 * With `CPU=1`, the CPU seconds each program (node, radosgw, ceph-osd, sshd, qemu-nbd…) used
 * between the call and `stop()`, sampled from /proc by a separate process every 100 ms (the bench's
 * own process is `panel`); without it, `stop()` returns null. The sampler itself is left out.
 */
export async function sampleCpu(): Promise<{ stop(): Promise<Record<string, number> | null> }> {
  if (process.env.CPU !== '1') return { stop: async () => null };
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [new URL('./cpu-sampler.mjs', import.meta.url).pathname, String(process.pid)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (text: string) => {
      output += text;
      if (output.startsWith('ready\n')) resolve();
    }),
  );
  return {
    stop: async () => {
      const ended = new Promise((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      await ended;
      return JSON.parse(output.slice('ready\n'.length)) as Record<string, number>;
    },
  };
}

/** The programs of a CPU sample that used at least 0.2 s, largest first: `node 4.10, radosgw 2.00, …; total 9.00`. */
export function cpuLine(sample: Record<string, number> | null, least = 0.2): string {
  if (sample === null) return '';
  const total = Object.values(sample).reduce((sum, s) => sum + s, 0);
  const top = Object.entries(sample)
    .filter(([, s]) => s >= least)
    .sort((a, b) => b[1] - a[1])
    .map(([comm, s]) => `${comm} ${s.toFixed(2)}`);
  return `cpu s: ${top.join(', ')}; total ${total.toFixed(2)}`;
}
