/**
 * Benchmark of the libvirt driver's live capture into a path (node --import tsx scripts/bench/libvirt.ts,
 * or `npm run bench -- libvirt`).
 *
 * A running TCG guest with a 2 GiB virtual disk holding DATA_MIB (default 1024) of random data is
 * captured into a path, durably and verified, by each live method, and compared against the floor
 * of what a verified durable capture must do, measured in the same run: a cold `qemu-img convert -U
 * -O qcow2` of the same disk, then one full hashing read of the output (`openssl dgst -sha256`)
 * alongside `sync FILE`. "Cold": before every run of every case the disk's files are evicted from
 * the page cache (`dd iflag=nocache count=0` after `sync`), as on a hypervisor whose guest data is
 * not cached but whose programs (virsh, qemu-img, openssl) are; `COLD=all` drops the whole page
 * cache instead (every program is then read from disk again: each process start costs more).
 * The cases run RUNS times (default 3) in alternation; the bench prints each case's median, spread
 * (min–max), runs, its ratio to the floor's median and a per-stage timeline (median start–end in
 * seconds from the start, from the driver's `stage` hook). Goal: the default (`auto`) ≤ 1.15× the
 * floor; the exit status says whether it was met.
 *
 * Environment: RUNS, DATA_MIB, METHODS (comma-separated, default `auto,pull-backup,push-backup,snapshot-commit`),
 * VERIFY_OFF=1 (adds each method with `verify: false`), COLD=0 (keeps the page cache) or `all`, IOTHREAD=1 (the
 * guest's disk gets its own I/O thread, which serves the backup job's NBD export), QEMU_MALLOC=1 (the
 * guest's QEMU runs with the malloc tunables of docs/operations.md, see scripts/lib/bench.ts). Runs that
 * use libvirt must hold the shared lock: `flock /tmp/itest.lock npm run bench -- libvirt`.
 * The guest and every file are removed at the end.
 */
import { execFile, execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createLocalExecutor } from '../../drivers/exec/local';
import { createLibvirtDriver, type CaptureMethod } from '../../drivers/hypervisor/libvirt';
import { guestWithRandomData, median } from '../lib/bench';

const run = promisify(execFile);
const RUNS = Number(process.env.RUNS ?? 3);
const DATA_MIB = Number(process.env.DATA_MIB ?? 1024);
const METHODS = (process.env.METHODS ?? 'auto,pull-backup,push-backup,snapshot-commit').split(',').filter(Boolean) as CaptureMethod[];
const COLD = (process.env.COLD ?? 'data') as 'data' | 'all' | '0';
const IOTHREAD = process.env.IOTHREAD === '1';
const scratchDir = '/var/tmp/ii-bench-scratch';
const outDir = '/var/tmp/ii-bench-out';

/** One measured run: its total and the start/end of each stage, in ms from its start. */
interface Sample {
  ms: number;
  stages: Map<string, { start: number; end: number }>;
  method?: string;
}

/** A case of the bench: a label and a function that runs it once. */
interface Case {
  label: string;
  once(out: string): Promise<Sample>;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Makes the next run cold (see the module comment): evicts `files` (the guest's disk), or everything. */
function dropCaches(files: readonly string[]): void {
  if (COLD === '0') return;
  execFileSync('sync');
  if (COLD === 'all') writeFileSync('/proc/sys/vm/drop_caches', '3');
  else for (const file of files) execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** Records stage start/end times relative to `t0`. */
function recorder(t0: () => number) {
  const stages = new Map<string, { start: number; end: number }>();
  return {
    stages,
    hook({ stage, phase }: { stage: string; phase: 'start' | 'end' }) {
      const now = performance.now() - t0();
      const entry = stages.get(stage) ?? { start: now, end: now };
      if (phase === 'start') entry.start = Math.min(entry.start, now);
      else entry.end = now;
      stages.set(stage, entry);
    },
  };
}

/** The floor: cold convert, then one hashing read of the output alongside its fsync. */
function floorCase(diskPath: string): Case {
  return {
    label: 'floor: convert + hash read + fsync',
    async once(out) {
      const stages = new Map<string, { start: number; end: number }>();
      const t0 = performance.now();
      const timed = async (name: string, fn: () => Promise<unknown>) => {
        const start = performance.now() - t0;
        await fn();
        stages.set(name, { start, end: performance.now() - t0 });
      };
      await timed('copy', () => run('qemu-img', ['convert', '-U', '-O', 'qcow2', diskPath, out]));
      await Promise.all([
        timed('hash', () => run('openssl', ['dgst', '-sha256', '-r', out])),
        timed('fsync', () => run('sync', ['--', out])),
      ]);
      return { ms: performance.now() - t0, stages };
    },
  };
}

/** A capture by the driver with a given method. */
function driverCase(guestName: string, method: CaptureMethod, verify: boolean): Case {
  let t0 = 0;
  let current = recorder(() => t0);
  const hypervisor = { id: 'bench', name: 'bench', locationId: 'bench', connection: { type: 'local' as const }, scratchDir };
  const driver = createLibvirtDriver(hypervisor, createLocalExecutor(), { method, verify, hooks: { stage: (info) => current.hook(info) } });
  return {
    label: `${method}${verify ? '' : ', verify off'}`,
    async once(out) {
      await driver.capabilities();
      current = recorder(() => t0);
      t0 = performance.now();
      const result = await driver.capture({ domainName: guestName, output: { kind: 'path', path: out } });
      return { ms: performance.now() - t0, stages: current.stages, method: result.method };
    },
  };
}

/** Median start–end of each stage over the samples, in the order the stages start. */
function timeline(samples: Sample[]): string {
  const names = [...new Set(samples.flatMap((s) => [...s.stages.keys()]))];
  const rows = names.map((name) => {
    const of = samples.map((s) => s.stages.get(name)).filter((x) => x !== undefined);
    return { name, start: median(of.map((x) => x.start)), end: median(of.map((x) => x.end)) };
  });
  rows.sort((a, b) => a.start - b.start);
  return rows.map((r) => `${r.name} ${(r.start / 1000).toFixed(2)}–${(r.end / 1000).toFixed(2)}`).join(', ');
}

async function main(): Promise<void> {
  rmSync(scratchDir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', scratchDir, outDir]);
  process.stdout.write(`preparing ${DATA_MIB} MiB of random data on a 2 GiB disk... `);
  const guest = guestWithRandomData(DATA_MIB, { iothread: IOTHREAD });
  try {
    console.log('done');
    const out = `${outDir}/image.qcow2`;
    const cases: Case[] = [floorCase(guest.primaryPath)];
    for (const method of METHODS) {
      cases.push(driverCase(guest.name, method, true));
      if (process.env.VERIFY_OFF === '1') cases.push(driverCase(guest.name, method, false));
    }
    const samples = new Map<Case, Sample[]>(cases.map((c) => [c, []]));
    for (let i = 0; i < RUNS; i++) {
      // Alternate the cases, and rotate their order each round, so drift in the machine's load spreads evenly.
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + i) % cases.length] as Case;
        rmSync(out, { force: true });
        dropCaches([guest.primaryPath]);
        samples.get(c)?.push(await c.once(out));
      }
    }
    rmSync(out, { force: true });
    const floorMs = median(samples.get(cases[0] as Case)?.map((s) => s.ms) ?? []);
    console.log(
      `${RUNS} runs per case, alternating, ${{ data: "the disk's files evicted from the page cache before each run", all: 'page cache dropped before each run', '0': 'page cache kept' }[COLD]}${IOTHREAD ? ', disk on its own I/O thread' : ''}; stages: median start–end in s`,
    );
    let autoRatio: number | null = null;
    for (const c of cases) {
      const list = samples.get(c) ?? [];
      const times = list.map((s) => s.ms);
      const ms = median(times);
      const chosen = list.at(-1)?.method;
      const label = c.label.startsWith('auto') && chosen ? c.label.replace('auto', `auto (${chosen})`) : c.label;
      const ratio = ms / floorMs;
      if (c.label === 'auto') autoRatio = ratio;
      console.log(
        `${label.padEnd(36)} ${seconds(ms)}  ${ratio.toFixed(2)}×  spread ${seconds(Math.min(...times))}–${seconds(Math.max(...times))}  runs: ${times.map(seconds).join(', ')}`,
      );
      console.log(`${''.padEnd(36)} ${timeline(list)}`);
    }
    console.log('goal: the default (auto, durable, verified, hashed) ≤ 1.15× the floor');
    if (autoRatio !== null) process.exitCode = autoRatio <= 1.15 ? 0 : 1;
  } finally {
    guest.remove();
    rmSync(scratchDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

await main();
