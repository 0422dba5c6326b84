/**
 * CPU seconds per program while a bench's step runs (used by the benches with CPU=1). Started
 * once, before anything is timed, and told over its stdin when to sample: on a line `start` it
 * reads utime + stime of every process in /proc, then every 100 ms; on a line `stop` it prints one
 * JSON line mapping each program name (comm) to the CPU seconds its processes used since `start`.
 * It ends with its stdin. A process that started and ended between two samples is missed (the
 * machine's busy time not accounted to any sampled process is reported as `(unsampled)`); one that
 * ended counts up to its last sample. The process whose pid is the first argument (the bench) is
 * named `panel`; the sampler leaves itself out.
 *
 * With `CPU_THREADS` set to a comma-separated list of program names (e.g.
 * `qemu-system-x86,libvirtd`), those programs are also broken down by thread, as
 * `program/thread` entries beside the program's own (a thread's name is its comm: QEMU names its
 * vCPU threads `CPU 0/TCG`, its I/O threads `IO ...`, its block workers `worker`).
 *
 * Started once rather than per step: a process the bench forks makes every page of the bench
 * copy-on-write, and the timed step after it would pay a fault on each page it writes (see
 * scripts/lib/runner.mjs).
 */
import { readdirSync, readFileSync } from 'node:fs';
import process from 'node:process';
import { createInterface } from 'node:readline';
import { HZ, parseStat } from './proc-stat.mjs';
import { clearInterval, setInterval } from 'node:timers';

const panelPid = process.argv[2];
let first = new Map();
let last = new Map();
let busyAtStart = 0;
let timer = null;
const threadsOf = new Set((process.env.CPU_THREADS ?? '').split(',').filter(Boolean));

/** Whether `key` of a sample is a thread's entry (`program/thread` of a program in CPU_THREADS). */
function isThreadEntry(key) {
  const slash = key.indexOf('/');
  return slash > 0 && threadsOf.has(key.slice(0, slash));
}

function scanThreads(pid, comm, initial) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Numbered threads (`worker`s) are one entry.
    const [thread, ticks] = parseStat(stat);
    const key = `${pid}/${tid}`;
    if (!first.has(key)) first.set(key, initial ? ticks : 0);
    last.set(key, { comm: `${comm}/${thread.replace(/\d+$/, 'N')}`, ticks });
  }
}

function scan(initial) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    if (Number(name) === process.pid) continue;
    const [own, ticks] = parseStat(stat);
    // Kernel workers rename themselves after their current work item: one name for all of them.
    let comm = own.replace(/^kworker\/.*/, 'kworker');
    if (name === panelPid) comm = 'panel';
    if (!first.has(name)) first.set(name, initial ? ticks : 0);
    last.set(name, { comm, ticks });
    if (threadsOf.has(comm)) scanThreads(name, comm, initial);
  }
}

/** Busy ticks of the whole machine (everything but idle and iowait), from /proc/stat. */
function machineBusy() {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
  return user + nice + system + irq + softirq + steal;
}

function start() {
  first = new Map();
  last = new Map();
  busyAtStart = machineBusy();
  scan(true);
  clearInterval(timer);
  timer = setInterval(() => scan(false), 100);
  process.stdout.write('started\n');
}

function stop() {
  clearInterval(timer);
  timer = null;
  scan(false);
  const perComm = {};
  for (const [pid, { comm, ticks }] of last) {
    const used = (ticks - (first.get(pid) ?? 0)) / HZ;
    if (used > 0) perComm[comm] = (perComm[comm] ?? 0) + used;
  }
  // What the samples missed (processes shorter than 100 ms, e.g. each `sync -d`): the machine's busy time minus the rest.
  // A thread's entry is a share of its program's, not more (kernel threads such as `ksoftirqd/0` are programs).
  const sampled = Object.entries(perComm).reduce((sum, [comm, s]) => (isThreadEntry(comm) ? sum : sum + s), 0);
  perComm['(unsampled)'] = Math.max(0, (machineBusy() - busyAtStart) / HZ - sampled);
  process.stdout.write(`${JSON.stringify(perComm)}\n`);
}

createInterface({ input: process.stdin })
  .on('line', (line) => (line === 'start' ? start() : line === 'stop' ? stop() : undefined))
  .on('close', () => process.exit(0));
process.stdout.write('ready\n');
