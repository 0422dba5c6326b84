/**
 * Benchmark of the NBD chunk reader (node --import tsx scripts/bench/nbd.ts); not part of the main
 * bench yet.
 *
 * A 1 GiB qcow2 holding 512 MiB of random data (8 MiB blocks every 16 MiB, the rest sparse) is
 * exported by qemu-nbd on a unix socket. Measured alternately, RUNS times each (default 3):
 * - baseline: `qemu-img convert` of the same file to raw into QEMU's null driver (like /dev/null):
 *   QEMU reading its own format;
 * - `readNbdChunks` over the socket: block status, 4 MiB chunks, 4 in flight, SHA-256 of each;
 * - the same reads without hashing (the protocol's own cost).
 * Prints medians and throughput ratios against the baseline, and the process's peak RSS.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { connectNbdUnix, readNbdChunks, type NbdClient } from '../../drivers/nbd';
import { GiB, MiB, median } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const dir = '/var/tmp/ii-bench-nbd';
const image = `${dir}/disk.qcow2`;
const socket = `${dir}/nbd.sock`;

async function time(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function prepareImage(): void {
  const raw = `${dir}/disk.raw`;
  execFileSync('truncate', ['-s', String(GiB), raw]);
  for (let block = 0; block < 64; block++) {
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=8M', 'count=1', `seek=${block * 2}`, 'conv=notrunc', 'status=none']);
  }
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
  rmSync(raw);
}

async function startServer(): Promise<() => void> {
  const child = spawn('qemu-nbd', ['-r', '-t', '-e', '4', '-f', 'qcow2', '-k', socket, '-x', 'vda', image], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return () => child.kill('SIGTERM');
}

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);

async function readAll(hash: boolean): Promise<{ data: number; read: number }> {
  const client: NbdClient = await connectNbdUnix(socket, { exportName: 'vda' });
  let data = 0;
  if (hash) {
    for await (const chunk of readNbdChunks(client)) if (chunk.kind === 'data') data += chunk.length;
  } else {
    // Every byte, no block status and no hashing: 4 reads of 4 MiB in flight (holes come back as hole chunks).
    const size = client.info.size;
    const buffers = [0, 1, 2, 3].map(() => Buffer.allocUnsafe(4 * MiB));
    for (let at = 0; at < size; at += 16 * MiB) {
      await Promise.all(buffers.map((into, i) => (at + i * 4 * MiB < size ? client.read(at + i * 4 * MiB, 4 * MiB, { into }) : null)));
    }
    data = client.stats.dataBytesReceived;
  }
  const read = client.stats.readBytesRequested;
  await client.close();
  return { data, read };
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.stdout.write('preparing a 1 GiB qcow2 with 512 MiB of random data... ');
  prepareImage();
  console.log('done');
  const stop = await startServer();
  try {
    const baseline: number[] = [];
    const chunked: number[] = [];
    const plain: number[] = [];
    let facts = { data: 0, read: 0 };
    for (let i = 0; i < RUNS; i++) {
      // Raw output into QEMU's null driver: /dev/null without the size check qemu-img makes on a file.
      baseline.push(
        await time(
          () => void execFileSync('qemu-img', ['convert', '-n', '-f', 'qcow2', '--target-image-opts', image, `driver=null-co,size=${GiB}`]),
        ),
      );
      chunked.push(await time(async () => void (facts = await readAll(true))));
      plain.push(await time(async () => void (await readAll(false))));
    }
    const rate = (ms: number) => `${((GiB / MiB / ms) * 1000).toFixed(0)} MiB/s of export`;
    const line = (name: string, runs: number[]) =>
      `${name.padEnd(44)} ${(median(runs) / 1000).toFixed(2)} s  ${rate(median(runs)).padEnd(22)} (runs: ${runs.map((r) => (r / 1000).toFixed(2)).join(', ')})`;
    console.log(line('baseline: qemu-img convert to raw, null target', baseline));
    console.log(line('readNbdChunks (4 MiB, 4 ahead, sha256)', chunked));
    console.log(line('NBD reads of every byte, no hash (4 × 4 MiB)', plain));
    console.log(`data chunks: ${facts.data / MiB} MiB; bytes requested: ${facts.read / MiB} MiB of ${GiB / MiB} MiB`);
    console.log(
      `throughput ratio chunk reader / baseline: ${(median(baseline) / median(chunked)).toFixed(2)}×; plain reads / baseline: ${(median(baseline) / median(plain)).toFixed(2)}×`,
    );
    console.log(`peak RSS of this process: ${(peakRss / MiB).toFixed(0)} MiB`);
  } finally {
    stop();
    clearInterval(sampler);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
