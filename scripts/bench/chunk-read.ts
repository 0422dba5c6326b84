/**
 * Benchmark of the chunked capture's read (`npm run bench -- chunk-read`): a running TCG guest
 * whose 2 GiB disk holds DATA_MIB (default 1024) MiB of random data is captured, alternately,
 * RUNS times each (default 3):
 * - baseline: the files-layout capture of the same disk (pull-mode backup, `qemu-img convert` to a
 *   qcow2 path output, sealed and hashed), as a storage with path access stores it today;
 * - the chunked capture with the local executor: a pull-mode backup whose NBD export is read from
 *   this process in 4 MiB chunks, each hashed (SHA-256), handed to a consumer that keeps nothing
 *   (no store: this measures the read);
 * - the same over SSH (a stream-local channel to the export's socket), when the test sshd runs.
 * Prints medians, the ratio of each chunked case to the baseline and the peak RSS; exits non-zero
 * when the local chunked read takes longer than the files-layout capture (goal ≤ 1.0×).
 */
import { rmSync, mkdirSync } from 'node:fs';
import { createLocalExecutor } from '../../drivers/exec/local';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import type { Executor } from '../../src/ports/executor';
import type { ChunkCaptureOutput } from '../../src/ports/hypervisor-driver';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import { guestWithRandomData, median, MiB } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const DATA_MIB = Number(process.env.DATA_MIB ?? 1024);
const GOAL = 1.0;
const scratchDir = '/var/tmp/ii-bench-chunk-scratch';
const outDir = '/var/tmp/ii-bench-chunk-out';

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);

/** A chunk consumer that counts what it is handed and keeps nothing. */
function discardingOutput(facts: { data: number; zero: number }): ChunkCaptureOutput {
  return {
    kind: 'chunks',
    chunkSizeBytes: 4 * MiB,
    async consume(chunks) {
      for await (const chunk of chunks) {
        if (chunk.kind === 'data') facts.data++;
        else facts.zero++;
      }
      return { sha256: '0'.repeat(64), sizeBytes: facts.data * 4 * MiB };
    },
  };
}

function driverOn(executor: Executor) {
  return createLibvirtDriver({ id: 'bench', name: 'bench', locationId: 'bench', connection: { type: 'local' }, scratchDir }, executor);
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function main(): Promise<void> {
  for (const dir of [scratchDir, outDir]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  process.stdout.write(`preparing a running guest with a 2 GiB disk holding ${DATA_MIB} MiB of random data... `);
  const guest = guestWithRandomData(DATA_MIB);
  console.log('done');
  const target = await sshTarget();
  const ssh = 'skip' in target ? null : createSshExecutor(target.connection);
  const local = driverOn(createLocalExecutor());
  const facts = { data: 0, zero: 0 };
  const cases: Array<{ label: string; once: () => Promise<unknown> }> = [
    {
      label: 'baseline: files-layout capture (pull-backup to a qcow2 path)',
      once: async () => {
        const out = `${outDir}/image.qcow2`;
        await local.capture({ domainName: guest.name, output: { kind: 'path', path: out } });
        rmSync(out, { force: true });
      },
    },
    {
      label: 'chunked read, local socket (4 MiB, sha256)',
      once: () => local.capture({ domainName: guest.name, output: discardingOutput(facts) }),
    },
  ];
  if (ssh) {
    const overSsh = driverOn(ssh);
    cases.push({
      label: 'chunked read over SSH stream-local (4 MiB, sha256)',
      once: () => overSsh.capture({ domainName: guest.name, output: discardingOutput({ data: 0, zero: 0 }) }),
    });
  }
  const samples = cases.map(() => [] as number[]);
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const [index, c] of cases.entries()) samples[index]?.push(await time(c.once));
    }
  } finally {
    await ssh?.close();
    guest.remove();
    clearInterval(sampler);
    rmSync(scratchDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
  const base = median(samples[0] ?? []);
  console.log(`${RUNS} runs per case, alternating; ${DATA_MIB} MiB of random data in a 2 GiB disk`);
  for (const [index, c] of cases.entries()) {
    const runs = samples[index] ?? [];
    const ms = median(runs);
    console.log(
      `${c.label.padEnd(64)} ${(ms / 1000).toFixed(2)} s  ${(ms / base).toFixed(2)}×  (runs: ${runs.map((r) => (r / 1000).toFixed(2)).join(', ')})`,
    );
  }
  if (!ssh) console.log(`over SSH: skipped (${'skip' in target ? target.skip : ''})`);
  console.log(
    `chunks per local read: ${facts.data / RUNS} data, ${facts.zero / RUNS} zero; peak RSS of this process: ${(peakRss / MiB).toFixed(0)} MiB`,
  );
  const ratio = median(samples[1] ?? []) / base;
  if (ratio > GOAL) {
    console.log(`goal missed: the chunked read took ${ratio.toFixed(2)}× the files-layout capture (goal ≤ ${GOAL}×)`);
    process.exitCode = 1;
  }
}

await main();
