/**
 * Helpers shared by the benchmarks in scripts/bench/ (this folder is not run as a bench).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { QEMU_NBD_MALLOC_ENV } from '../../drivers/hypervisor/libvirt/commands';
import { createTestGuest, virsh, type TestGuest } from '../../test/support/guests';
import { HZ, parseStat } from './proc-stat.mjs';

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

/** A helper process spoken to in JSON lines (see scripts/lib/runner.mjs and cpu-sampler.mjs). */
class LineChild {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #waiter: { resolve: (line: string) => void; reject: (error: Error) => void } | null = null;
  #buffer = '';
  #exited: Error | null = null;

  constructor(script: string, args: string[]) {
    this.#child = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#child.stdout?.setEncoding('utf8');
    this.#child.stdout?.on('data', (text: string) => {
      this.#buffer += text;
      for (let newline = this.#buffer.indexOf('\n'); newline >= 0; newline = this.#buffer.indexOf('\n')) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        const waiter = this.#waiter;
        this.#waiter = null;
        if (waiter) waiter.resolve(line);
        else this.#lines.push(line);
      }
    });
    // A helper that dies fails the bench's wait for it instead of leaving it with nothing to wait on.
    this.#child.once('exit', (code, signal) => {
      this.#exited = new Error(`the bench's helper ${script} exited (${signal ?? code})`);
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter?.reject(this.#exited);
    });
    // The bench must not wait for its helpers to exit: their pipes keep it alive only while it waits for an answer.
    this.#child.unref();
    this.#pipes(false);
  }

  #pipes(ref: boolean): void {
    for (const pipe of [this.#child.stdin, this.#child.stdout] as unknown as Array<{ ref(): void; unref(): void } | null>)
      if (ref) pipe?.ref();
      else pipe?.unref();
  }

  /** The next line the child prints. */
  next(): Promise<string> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.#exited) return Promise.reject(this.#exited);
    this.#pipes(true);
    return new Promise((resolve, reject) => {
      const done = () => this.#pipes(false);
      this.#waiter = {
        resolve: (answer) => (done(), resolve(answer)),
        reject: (error) => (done(), reject(error)),
      };
    });
  }

  send(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }
}

let runner: LineChild | null = null;
let runnerQueue: Promise<unknown> = Promise.resolve();
let sampler: LineChild | null = null;

/**
 * Starts the bench's helper processes — the command runner, and with `CPU=1` the CPU sampler — so
 * that nothing forks the bench's process once the measuring starts: each fork marks every page of
 * the forking process copy-on-write, and the timed work after it paid a fault per page it wrote
 * (+0.4 s on a 64 MiB recapture here). Call it before anything is timed; the helpers end with the bench.
 */
export async function startHelpers(): Promise<void> {
  if (!runner) {
    runner = new LineChild('./runner.mjs', []);
    await runner.next();
  }
  if (!sampler && process.env.CPU === '1') {
    sampler = new LineChild('./cpu-sampler.mjs', [String(process.pid)]);
    await sampler.next();
  }
}

/**
 * Runs `file` with `args` in the helper process (see {@link startHelpers}), one command at a time;
 * resolves with its stdout, rejects with its stderr when it exits non-zero.
 */
export function run(file: string, args: readonly string[]): Promise<string> {
  const result = runnerQueue.then(async () => {
    if (!runner) await startHelpers();
    const child = runner as LineChild;
    child.send(JSON.stringify({ file, args }));
    const answer = JSON.parse(await child.next()) as { code: number; stdout: string; stderr: string };
    if (answer.code !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${answer.code}: ${answer.stderr.trim()}`);
    return answer.stdout;
  });
  runnerQueue = result.catch(() => undefined);
  return result;
}

/**
 * With `CPU=1`, the CPU seconds each program (node, radosgw, ceph-osd, sshd, qemu-nbd…) used
 * between the call and `stop()`, sampled from /proc every 100 ms by the helper process that
 * {@link startHelpers} started (the bench's own process is `panel`); without it, `stop()` returns
 * null. The sampler itself is left out.
 */
export async function sampleCpu(): Promise<{ stop(): Promise<Record<string, number> | null> }> {
  if (process.env.CPU !== '1') return { stop: async () => null };
  await startHelpers();
  const child = sampler as LineChild;
  child.send('start');
  await child.next();
  return {
    stop: async () => {
      child.send('stop');
      return JSON.parse(await child.next()) as Record<string, number>;
    },
  };
}

/** The programs of a CPU sample that used at least 0.2 s, largest first: `node 4.10, radosgw 2.00, …; total 9.00`. */
export function cpuLine(sample: Record<string, number> | null, least = 0.2): string {
  if (sample === null) return '';
  // A thread's entry (`program/thread` of a program in CPU_THREADS) is a share of its program's, not
  // more; kernel threads such as `ksoftirqd/0` are programs.
  const threads = new Set((process.env.CPU_THREADS ?? '').split(',').filter(Boolean));
  const isThread = (comm: string) => comm.indexOf('/') > 0 && threads.has(comm.slice(0, comm.indexOf('/')));
  const total = Object.entries(sample).reduce((sum, [comm, s]) => (isThread(comm) ? sum : sum + s), 0);
  const top = Object.entries(sample)
    .filter(([, s]) => s >= least)
    .sort((a, b) => b[1] - a[1])
    .map(([comm, s]) => `${comm} ${s.toFixed(2)}`);
  return `cpu s: ${top.join(', ')}; total ${total.toFixed(2)}`;
}

/**
 * The process's peak RSS since the last {@link resetPeakRss}, as the kernel counts it (`VmHWM`):
 * every page, however briefly held, with no sampling in the process. Sampling `rss()` every 20 ms,
 * as the benches did, missed peaks shorter than that, and a V8 profile put 14–38 ms of a 0.8 s
 * recapture's event loop in those calls (an A/B of chunked-s3 then showed no difference in the
 * timings beyond their spread). capture-s3, chunk-read, chunk-rss and nbd still sample.
 */
export function peakRss(): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!match) throw new Error('/proc/self/status has no VmHWM line');
  return Number(match[1]) * 1024;
}

/** Starts a new peak: the next {@link peakRss} counts from the current RSS (Linux ≥ 4.0). */
export function resetPeakRss(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

/** The test Ceph's configuration, as scripts/start-services.sh writes it (under `SERVICES_DIR`, as scripts/lib/services-probe.mjs reads it). */
const TEST_CEPH_CONF = join(process.env.SERVICES_DIR ?? '/var/tmp/instance-images-test/services', 'ceph', 'ceph.conf');
/** utime + stime (in ticks) of the processes whose comm is one of `names`, summed. */
function ticksOf(names: ReadonlySet<string>): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const [comm, used] = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (names.has(comm)) ticks += used;
    } catch {
      // The process ended meanwhile.
    }
  }
  return ticks;
}

/** Milliseconds waited by {@link quietStorage} since the bench started (in all, and the longest wait), its calls, and the waits that gave up. */
export const storageWaits = { totalMs: 0, maxMs: 0, calls: 0, timedOut: 0 };

/**
 * Waits until the test Ceph (radosgw and the OSD, when this machine runs them: scripts/start-services.sh)
 * is idle, so that a timed step does not share the machine with the storage's clean-up of earlier
 * steps. Deleting a bucket of a bench's earlier run leaves its objects to radosgw's garbage
 * collection, which deletes them a minute or more later, in the middle of whatever is timed then:
 * measured here, the OSD then used 2–3 times the CPU per byte stored (6.5–8.7 s per GiB against
 * 2.1–2.9 s once idle), and a first chunked capture of 1 GiB took 11–13.6 s where it took 7.5–8.5 s
 * on an idle storage. This runs that collection at once (`radosgw-admin gc process --include-all`,
 * in the helper process: the bench's process never forks), then waits until radosgw and the OSD
 * together used less than 5 % of a core in two half-second windows in a row (at most `maxMs`).
 * `QUIET_STORAGE=0` skips it (a remote S3 storage's own work is not the bench's).
 */
export async function quietStorage(maxMs = 120_000): Promise<void> {
  if (process.env.QUIET_STORAGE === '0' || !existsSync(TEST_CEPH_CONF)) return;
  const start = performance.now();
  await run('radosgw-admin', ['-c', TEST_CEPH_CONF, 'gc', 'process', '--include-all']).catch(() => undefined);
  const names = new Set(['ceph-osd', 'radosgw']);
  const windowMs = 500;
  let calm = 0;
  for (;;) {
    if (performance.now() - start > maxMs) {
      storageWaits.timedOut += 1;
      break;
    }
    const before = ticksOf(names);
    await sleep(windowMs);
    const share = (ticksOf(names) - before) / HZ / (windowMs / 1000);
    calm = share < 0.05 ? calm + 1 : 0;
    if (calm >= 2) break;
  }
  const waited = performance.now() - start;
  storageWaits.totalMs += waited;
  storageWaits.maxMs = Math.max(storageWaits.maxMs, waited);
  storageWaits.calls += 1;
}
