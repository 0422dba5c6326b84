/**
 * Benchmark of the libvirt driver's live capture (node --import tsx scripts/bench/libvirt.ts).
 *
 * A running TCG guest with a 2 GiB virtual disk holding 1 GiB of random data is captured into a
 * path, durably (fsynced), by each live method, and compared against the physical floor measured in
 * the same run: a cold `qemu-img convert -U -O qcow2` of the same disk + `sync FILE`.
 * Prints medians of RUNS runs (default 3) and the ratio driver/floor (goal ≤ 1.15 for the default).
 * The guest and every file are removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createLocalExecutor } from '../../drivers/exec/local';
import { createLibvirtDriver, type CaptureMethod } from '../../drivers/hypervisor/libvirt';

import { guestWithRandomData, median } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const scratchDir = '/var/tmp/ii-bench-scratch';
const outDir = '/var/tmp/ii-bench-out';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function time(fn: () => Promise<void> | void): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function main(): Promise<void> {
  rmSync(scratchDir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
  execFileSync('mkdir', ['-p', scratchDir, outDir]);
  process.stdout.write('preparing 1 GiB of random data on a 2 GiB disk... ');
  const guest = guestWithRandomData(1024);
  try {
    console.log('done');

    const out = `${outDir}/image.qcow2`;
    const floor: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      rmSync(out, { force: true });
      floor.push(
        await time(() => {
          execFileSync('qemu-img', ['convert', '-U', '-O', 'qcow2', guest.primaryPath, out]);
          execFileSync('sync', ['--', out]);
        }),
      );
    }
    rmSync(out, { force: true });
    const floorMs = median(floor);
    console.log(`floor: cold qemu-img convert + fsync   ${seconds(floorMs)}  (runs: ${floor.map(seconds).join(', ')})`);

    const hypervisor = { id: 'bench', name: 'bench', locationId: 'bench', connection: { type: 'local' as const }, scratchDir };
    const methods: CaptureMethod[] = ['auto', 'pull-backup', 'push-backup', 'snapshot-commit'];
    for (const method of methods) {
      for (const verify of [true, false]) {
        if (method === 'auto' && !verify) continue;
        const driver = createLibvirtDriver(hypervisor, createLocalExecutor(), { method, verify });
        await driver.capabilities();
        const runs: number[] = [];
        let chosen = '';
        for (let i = 0; i < RUNS; i++) {
          rmSync(out, { force: true });
          runs.push(
            await time(async () => {
              const result = await driver.capture({ domainName: guest.name, output: { kind: 'path', path: out } });
              chosen = result.method;
            }),
          );
        }
        rmSync(out, { force: true });
        const ms = median(runs);
        const label = `${method}${method === 'auto' ? ` (${chosen})` : ''}${verify ? '' : ', verify off'}`;
        console.log(`driver ${label.padEnd(34)} ${seconds(ms)}  ratio ${(ms / floorMs).toFixed(2)}×  (runs: ${runs.map(seconds).join(', ')})`);
      }
    }
    console.log('goal: driver (auto, durable, compared, hashed) ≤ 1.15× the floor');
  } finally {
    guest.remove();
    rmSync(scratchDir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

await main();
