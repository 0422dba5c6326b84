/**
 * Benchmark of a deploy from a chunked image (node --import tsx scripts/bench/chunk-deploy.ts, or
 * `npm run bench -- chunk-deploy`).
 *
 * A 2 GiB disk holding DATA_MIB (default 1024) of random data in 4 MiB chunks (every other chunk
 * of the first 2 × DATA_MIB, the rest zero) is deployed by the libvirt driver into a new qcow2
 * disk, both ways, through the SSH executor (EXECUTOR=local for the local one):
 * - baseline: the files layout, the existing stream materialize of the same image as a qcow2 file
 *   (received on the hypervisor, checked against its sha256, converted, compared);
 * - chunks: the data chunks held in memory, written over NBD into the disk qemu-nbd serves.
 * The cases run RUNS times (default 3) in alternation; the bench prints each case's median, spread
 * and runs, and the ratio chunks / baseline. Goal (issue 14): ≤ 1.1×; the exit status says whether
 * it was met. COLD=0 keeps the page cache (dropped before every run by default). Hold the shared
 * lock: `flock /tmp/itest.lock npm run bench -- chunk-deploy`. CPU=1 prints each run's CPU seconds per program.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, createReadStream, mkdirSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { createLocalExecutor } from '../../drivers/exec/local';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import type { Executor } from '../../src/ports/executor';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import { cpuLine, GiB, MiB, median, sampleCpu, startHelpers } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const DATA_MIB = Number(process.env.DATA_MIB ?? 1024);
const COLD = process.env.COLD !== '0';
const CHUNK = 4 * MiB;
const SIZE = 2 * GiB;
const scratchDir = '/var/tmp/ii-bench-cd-scratch';
const outDir = '/var/tmp/ii-bench-cd-out';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function dropCaches(): void {
  if (!COLD) return;
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** The raw disk, its qcow2 image (the files layout) with its sha256, and the data chunks in memory. */
function prepare(): { image: string; sha256: string; chunks: Array<{ offset: number; bytes: Buffer }> } {
  const raw = `${outDir}/disk.raw`;
  execFileSync('truncate', ['-s', String(SIZE), raw]);
  const count = Math.min(DATA_MIB / 4, SIZE / CHUNK / 2);
  for (let i = 0; i < count; i++) {
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=4M', 'count=1', `seek=${2 * i}`, 'conv=notrunc', 'status=none']);
  }
  const image = `${outDir}/image.qcow2`;
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  const sha256 = execFileSync('openssl', ['dgst', '-sha256', '-r', image], { encoding: 'utf8' }).split(' ')[0] ?? '';
  const chunks: Array<{ offset: number; bytes: Buffer }> = [];
  const fd = openSync(raw, 'r');
  for (let i = 0; i < count; i++) {
    const offset = 2 * i * CHUNK;
    const bytes = Buffer.alloc(CHUNK);
    readSync(fd, bytes, 0, CHUNK, offset);
    chunks.push({ offset, bytes });
  }
  closeSync(fd);
  rmSync(raw);
  return { image, sha256, chunks };
}

async function executor(): Promise<Executor> {
  if (process.env.EXECUTOR === 'local') return createLocalExecutor();
  const target = await sshTarget();
  if ('skip' in target) throw new Error(target.skip);
  return createSshExecutor(target.connection);
}

async function main(): Promise<void> {
  await startHelpers();
  for (const dir of [scratchDir, outDir]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  process.stdout.write(`preparing ${DATA_MIB} MiB of random data on a 2 GiB disk... `);
  const { image, sha256, chunks } = prepare();
  console.log('done');
  const exec = await executor();
  const hypervisor = { id: 'bench', name: 'bench', locationId: 'bench', connection: { type: 'local' as const }, scratchDir };
  const driver = createLibvirtDriver(hypervisor, exec);
  const target = `${outDir}/deployed.qcow2`;
  async function* inMemory() {
    for (const chunk of chunks) yield chunk;
  }
  const cases: Array<{ label: string; once(): Promise<unknown> }> = [
    {
      label: 'files: stream materialize',
      once: () =>
        driver.materialize({
          source: { kind: 'stream', stream: createReadStream(image) },
          sourceFormat: 'qcow2',
          sha256,
          targetPath: target,
        }),
    },
    {
      label: 'chunks: NBD writes',
      once: () =>
        driver.materialize({
          source: { kind: 'chunks', virtualSizeBytes: SIZE, chunks: inMemory() },
          sourceFormat: 'raw',
          targetPath: target,
        }),
    },
  ];
  const samples = cases.map(() => [] as number[]);
  try {
    for (let i = 0; i < RUNS; i++) {
      for (let k = 0; k < cases.length; k++) {
        const index = (k + i) % cases.length;
        rmSync(target, { force: true });
        dropCaches();
        const cpu = await sampleCpu();
        const start = performance.now();
        await (cases[index] as (typeof cases)[number]).once();
        samples[index]?.push(performance.now() - start);
        const used = await cpu.stop();
        if (used) console.log(`  ${cases[index]?.label}: ${seconds(performance.now() - start)}, ${cpuLine(used)}`);
      }
    }
    console.log(`${RUNS} runs per case, alternating, ${exec.label}, ${COLD ? 'page cache dropped before each run' : 'page cache kept'}`);
    const medians = samples.map((times) => median(times));
    cases.forEach((c, i) => {
      const times = samples[i] ?? [];
      console.log(
        `${c.label.padEnd(28)} ${seconds(medians[i] ?? 0)}  spread ${seconds(Math.min(...times))}–${seconds(Math.max(...times))}  runs: ${times.map(seconds).join(', ')}`,
      );
    });
    const ratio = (medians[1] ?? 0) / (medians[0] ?? 1);
    console.log(`chunks / files: ${ratio.toFixed(2)}× (goal ≤ 1.10×)`);
    process.exitCode = ratio <= 1.1 ? 0 : 1;
  } finally {
    await exec.close();
    rmSync(scratchDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

await main();
