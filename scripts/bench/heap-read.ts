/**
 * What a bulk read over SSH costs a panel whose heap is large, with V8's default young generation
 * and with a small one (`npm run bench -- heap-read`; hold the shared lock: `flock /tmp/itest.lock ...`).
 *
 * A panel process (a child of this one) holds HEAP_MB (default 250) MiB of live objects, then reads a
 * 256 MiB export of random data, served by `qemu-nbd` on this machine, over four stream-local channels
 * of the SSH executor to the test sshd (`readNbdChunks`, as a chunked capture reads), READS times
 * (default 3; the first, which opens the connection, is left out of the figures), then writes
 * 256 MiB to a remote `wc -c` READS times (as a deploy writes). Alternating RUNS times (default 3),
 * the child runs with V8's defaults and with `--max-semi-space-size=1`. Prints, per read and write,
 * the child's user and system CPU, wall time and garbage collections by kind, then the medians and
 * the ratio of the small young generation's CPU to the default's, for reads and for writes.
 *
 * Why: the read allocates about one byte of `ArrayBuffer` per byte (docs/measurements.md, "The panel's
 * garbage collector") and few JavaScript objects. A young generation that grew large fills slowly,
 * so the dead buffers wait for its rare scavenges while their bytes count as external memory, and at
 * 64 MB more than after the last full collection V8 starts a full one ("external memory pressure" in
 * `--trace-incremental-marking`), whose cost is the whole heap's marking. Node 24 lets the young
 * generation grow so (3–4 scavenges per 256 MiB here, against 8–9 on Node 20 and 22).
 *
 * `NODE_BIN` runs the children with another Node binary (e.g. `.tmp/node24/...`, from
 * `npm run test:node-versions`); ssh2's native binding loads only into the Node it was built for
 * (scripts/ssh2-binding.sh; for the Nodes in .tmp/, test-node-versions.sh builds one, which the
 * children then load), and without it ssh2 decrypts in JavaScript, which the figures then include:
 * the first line says which. `FLAGS` replaces `--max-semi-space-size=1` (e.g. `FLAGS=--max-semi-space-size=2`).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { connectNbd } from '../../drivers/nbd';
import { readNbdChunks } from '../../drivers/nbd/chunks';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import { median, MiB } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const READS = Number(process.env.READS ?? 3);
const HEAP_MB = Number(process.env.HEAP_MB ?? 250);
const NODE_BIN = process.env.NODE_BIN ?? process.execPath;
const FLAGS = (process.env.FLAGS ?? '--max-semi-space-size=1').split(/\s+/).filter(Boolean);
const dir = '/var/tmp/ii-bench-heap-read';
const image = `${dir}/export.raw`;
const socket = `${dir}/export.sock`;
const EXPORT_MIB = 256;

/** One read's or write's figures, as the child prints them (a JSON line prefixed with `FIGURES `). */
interface Figures {
  /** `read`: the export over four NBD channels; `write`: 256 MiB to `cat > /dev/null` on one channel. */
  kind: 'read' | 'write';
  user: number;
  system: number;
  wall: number;
  minor: number;
  major: number;
}

/** The child: builds the heap, then reads the export READS times over four channels. */
async function child(): Promise<void> {
  // Live objects the size of a panel's state (about 4.9 MB per 1,024 arrays of 120 small objects).
  const ballast: unknown[] = [];
  for (let i = 0; i < Math.round((HEAP_MB * 1024) / 4.9); i++) ballast.push(Array.from({ length: 120 }, (_, j) => ({ j })));
  (globalThis as { ballast?: unknown }).ballast = ballast;
  const target = await sshTarget();
  if ('skip' in target) throw new Error(target.skip);
  const executor = createSshExecutor(target.connection);
  const gc = { minor: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
      else gc.minor++;
    }
  }).observe({ entryTypes: ['gc'] });
  try {
    for (let read = 0; read < READS; read++) {
      const [first, ...more] = await Promise.all([0, 1, 2, 3].map(async () => connectNbd(await executor.openStreamLocal(socket), {})));
      Object.assign(gc, { minor: 0, major: 0 });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let bytes = 0;
      for await (const chunk of readNbdChunks(first!, { connections: more, primeBytes: 0 })) {
        if (chunk.kind !== 'data') continue;
        bytes += chunk.bytes.length;
        chunk.release?.();
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      await Promise.all([first!, ...more].map((client) => client.close()));
      if (bytes !== EXPORT_MIB * MiB) throw new Error(`read ${bytes} bytes, expected ${EXPORT_MIB} MiB`);
      const figures: Figures = { kind: 'read', user: cpu.user / 1e6, system: cpu.system / 1e6, wall, ...gc };
      console.log(`FIGURES ${JSON.stringify({ read, ...figures })}`);
    }
    // The other direction (a deploy's): ssh2 makes a new buffer for each packet it sends.
    const piece = Buffer.alloc(MiB, 0x5a);
    for (let write = 0; write < READS; write++) {
      let sent = 0;
      const stdin = new Readable({
        read() {
          this.push(sent < EXPORT_MIB * MiB ? piece : null);
          sent += piece.length;
        },
      });
      Object.assign(gc, { minor: 0, major: 0 });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const result = await executor.run(['sh', '-c', 'wc -c'], { stdin });
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      if (result.stdout.trim() !== String(EXPORT_MIB * MiB))
        throw new Error(`wrote ${result.stdout.trim()} bytes, expected ${EXPORT_MIB} MiB`);
      const figures: Figures = { kind: 'write', user: cpu.user / 1e6, system: cpu.system / 1e6, wall, ...gc };
      console.log(`FIGURES ${JSON.stringify({ read: write, ...figures })}`);
    }
  } finally {
    await executor.close();
  }
}

/** The parent: serves the export, runs the children alternately, prints medians and the ratio. */
/**
 * The children's environment: when NODE_BIN cannot load node_modules' build of ssh2's ciphers, the
 * build scripts/test-node-versions.sh made for its ABI (.tmp/nodeMAJOR/ssh2-VERSION-abiABI), if
 * there is one, through scripts/lib/native-abi.mjs.
 */
function childEnv(): NodeJS.ProcessEnv {
  const own = spawnSync(NODE_BIN, ['-e', "require('./node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node')"]);
  if (own.status === 0) return process.env;
  const [major, abi] = execFileSync(NODE_BIN, ['-p', "process.versions.node.split('.')[0] + ' ' + process.versions.modules"], {
    encoding: 'utf8',
  })
    .trim()
    .split(' ');
  const version = (JSON.parse(readFileSync('node_modules/ssh2/package.json', 'utf8')) as { version: string }).version;
  const binary = resolve(`.tmp/node${major}/ssh2-${version}-abi${abi}/build/Release/sshcrypto.node`);
  if (!existsSync(binary)) return process.env;
  const hook = `--import=${resolve('scripts/lib/native-abi.mjs')}`;
  return { ...process.env, NODE_OPTIONS: `${hook} ${process.env.NODE_OPTIONS ?? ''}`.trim(), II_SSH2_BINARY: binary };
}

async function parent(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(image)) execFileSync('dd', ['if=/dev/urandom', `of=${image}`, 'bs=4M', `count=${EXPORT_MIB / 4}`, 'status=none']);
  rmSync(socket, { force: true });
  const server = spawn('qemu-nbd', ['--format=raw', '--read-only', '--shared=8', '--persistent', `--socket=${socket}`, image], {
    stdio: 'inherit',
  });
  try {
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    if (!existsSync(socket)) throw new Error('qemu-nbd did not listen');
    const env = childEnv();
    const binding =
      spawnSync(NODE_BIN, ['-e', "require('ssh2/lib/protocol/crypto.js').bindingAvailable || process.exit(1)"], { env }).status === 0;
    const version = execFileSync(NODE_BIN, ['--version'], { encoding: 'utf8' }).trim();
    console.log(
      `Node ${version}, ssh2's native binding ${binding ? 'loaded' : 'NOT loaded (JavaScript ciphers)'}; ` +
        `heap ${HEAP_MB} MiB of live objects; reads and writes 2–${READS} of each child`,
    );
    const variants = [
      { name: 'V8 defaults', flags: [] as string[], reads: [] as Figures[] },
      { name: FLAGS.join(' '), flags: FLAGS, reads: [] as Figures[] },
    ];
    const script = fileURLToPath(import.meta.url);
    for (let run = 0; run < RUNS; run++) {
      for (const variant of run % 2 === 0 ? variants : [...variants].reverse()) {
        const result = spawnSync(NODE_BIN, [...variant.flags, '--import', 'tsx', script, '--child'], {
          encoding: 'utf8',
          env,
        });
        if (result.status !== 0) throw new Error(`the child (${variant.name}) failed: ${result.stderr.slice(-2000)}`);
        const reads = result.stdout
          .split('\n')
          .filter((l) => l.startsWith('FIGURES '))
          .map((l) => JSON.parse(l.slice(8)) as Figures & { read: number })
          .filter((r) => r.read > 0);
        variant.reads.push(...reads);
        for (const r of reads) {
          console.log(
            `   ${r.kind} ${variant.name.padEnd(26)} ${r.wall.toFixed(2)} s; CPU user ${r.user.toFixed(2)} s, system ${r.system.toFixed(2)} s; GC ${r.minor} minor, ${r.major} major`,
          );
        }
      }
    }
    const cpu = (reads: Figures[]) => median(reads.map((r) => r.user + r.system));
    for (const kind of ['read', 'write'] as const) {
      console.log(`\n${kind === 'read' ? `${EXPORT_MIB} MiB read over four NBD channels` : `${EXPORT_MIB} MiB written to \`wc -c\``}:`);
      const of = (v: (typeof variants)[number]) => v.reads.filter((r) => r.kind === kind);
      for (const v of variants) {
        const reads = of(v);
        console.log(
          `   ${v.name.padEnd(26)} CPU median ${cpu(reads).toFixed(2)} s, wall median ${median(reads.map((r) => r.wall)).toFixed(2)} s, ` +
            `full collections ${Math.min(...reads.map((r) => r.major))}–${Math.max(...reads.map((r) => r.major))}`,
        );
      }
      console.log(`   CPU ratio, ${variants[1]!.name} / V8 defaults: ${(cpu(of(variants[1]!)) / cpu(of(variants[0]!))).toFixed(2)}`);
    }
  } finally {
    server.kill();
    rmSync(socket, { force: true });
  }
}

if (process.argv.includes('--child')) await child();
else await parent();
