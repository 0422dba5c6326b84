/**
 * CPU seconds per program while it runs (used by the benches with CPU=1): every 100 ms it reads
 * utime + stime of every process in /proc, and on SIGTERM prints one JSON object mapping each
 * program name (comm) to the CPU seconds its processes used since the sampler started. A process
 * that started and ended between two samples is missed; one that ended counts up to its last sample.
 * The process whose pid is the first argument (the bench) is named `panel`; the sampler leaves itself out.
 */
import { readdirSync, readFileSync } from 'node:fs';

const panelPid = process.argv[2];
const HZ = 100; // USER_HZ, the unit of /proc/<pid>/stat times on Linux
const first = new Map();
const last = new Map();
function scan(initial) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    if (Number(name) === process.pid) continue;
    let comm = stat.slice(stat.indexOf('(') + 1, close);
    if (name === panelPid) comm = 'panel';
    const fields = stat.slice(close + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const key = `${name}:${comm}`;
    if (!first.has(key)) first.set(key, initial ? ticks : 0);
    last.set(key, ticks);
  }
}
scan(true);
const timer = setInterval(() => scan(false), 100);
process.on('SIGTERM', () => {
  clearInterval(timer);
  scan(false);
  const perComm = {};
  for (const [key, ticks] of last) {
    const comm = key.slice(key.indexOf(':') + 1);
    const used = (ticks - (first.get(key) ?? 0)) / HZ;
    if (used > 0) perComm[comm] = (perComm[comm] ?? 0) + used;
  }
  process.stdout.write(JSON.stringify(perComm));
  process.exit(0);
});
process.stdout.write('ready\n');
