/**
 * Incremental recaptures of this tree's code against another checkout's, alternating in ONE
 * process (`BASE=/path/to/other/checkout npm run bench -- recapture-ab`, under the shared lock):
 * both libvirt drivers (each on its own SSH executor) and both chunk stores (each on its own S3
 * disk) recapture one running guest with a 2 GiB disk and 1 GiB of random data, after 64 MiB of
 * new random data written into its stopped disk each time, in alternating order (PAIRS pairs,
 * default 6, after one unmeasured warm-up each). On a machine whose load wanders, the pairs are
 * steadier than two bench runs back to back. Prints both medians and spreads, the per-pair ratios,
 * and each median as a share of one first chunked capture (this tree's) of the same run.
 * Without `BASE` it prints how to run it and exits 0 (`npm run bench` runs every bench).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { createSshExecutor } from '../../drivers/exec/ssh';
import type { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import type { s3StorageDriver } from '../../drivers/storage/s3';
import type { createChunkStore } from '../../src/chunks';
import { type ChunkManifest } from '../../src/chunks';
import type { wrapStorageDriver } from '../../src/storage';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import {
  adminClient,
  createBucket,
  deleteBucket,
  driverOptions,
  freshBucketName,
  loadS3TestEnv,
} from '../../test/integration/storage-s3/s3-env';
import { virsh } from '../../test/support/guests';
import { guestWithRandomData, median, MiB } from '../lib/bench';

const PAIRS = Number(process.env.PAIRS ?? 6);
const scratch = '/var/tmp/ii-bench-recapture-ab';
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The parts of a tree a recapture uses, loaded from this tree or from `BASE`. */
interface Tree {
  createSshExecutor: typeof createSshExecutor;
  createLibvirtDriver: typeof createLibvirtDriver;
  createChunkStore: typeof createChunkStore;
  s3StorageDriver: typeof s3StorageDriver;
  wrapStorageDriver: typeof wrapStorageDriver;
}

async function loadTree(root: string): Promise<Tree> {
  const load = (path: string) => import(resolve(root, path)) as Promise<Record<string, unknown>>;
  const [exec, libvirt, chunks, s3, storage] = await Promise.all([
    load('drivers/exec/ssh.ts'),
    load('drivers/hypervisor/libvirt/index.ts'),
    load('src/chunks/index.ts'),
    load('drivers/storage/s3/index.ts'),
    load('src/storage/index.ts'),
  ]);
  return {
    createSshExecutor: exec.createSshExecutor,
    createLibvirtDriver: libvirt.createLibvirtDriver,
    createChunkStore: chunks.createChunkStore,
    s3StorageDriver: s3.s3StorageDriver,
    wrapStorageDriver: storage.wrapStorageDriver,
  } as Tree;
}

/** Writes `mibs` MiB of fresh random data into a stopped qcow2 disk at `offsetMiB`. */
function writeRandom(diskPath: string, offsetMiB: number, mibs: number): void {
  const source = `${scratch}/random-${randomUUID()}.raw`;
  execFileSync('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', `count=${mibs}`, 'status=none']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -s ${source} ${offsetMiB}M ${mibs}M`, diskPath], { stdio: 'ignore' });
  rmSync(source);
}

async function main(): Promise<void> {
  if (!process.env.BASE) {
    console.log('recapture-ab: set BASE to another checkout (with node_modules) to compare its recapture with this tree’s');
    return;
  }
  const target = await sshTarget();
  const s3 = await loadS3TestEnv();
  if ('skip' in target || !s3.env) throw new Error(`services missing: ${'skip' in target ? target.skip : s3.missing}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const client = adminClient(s3.env);
  const bucket = freshBucketName('bench-ab');
  await createBucket(client, bucket);
  const hypervisor = { id: 'hv', name: 'ab', locationId: 'l', connection: target.connection, scratchDir: `${scratch}/driver` };
  const trees = { base: await loadTree(process.env.BASE), this: await loadTree(resolve(import.meta.dirname, '../..')) };
  const sides = (['base', 'this'] as const).map((name) => {
    const tree = trees[name];
    const executor = tree.createSshExecutor(target.connection);
    return {
      name,
      executor,
      driver: tree.createLibvirtDriver(hypervisor, executor),
      store: tree.createChunkStore(tree.wrapStorageDriver(tree.s3StorageDriver.create(driverOptions(s3.env!, bucket), {}))),
      times: [] as number[],
    };
  });
  const guest = guestWithRandomData(1024);
  let checkpoint = 0;
  let previous: { manifest: ChunkManifest; key: string } | null = null;
  const capture = async (side: (typeof sides)[number], since: string | null): Promise<number> => {
    checkpoint += 1;
    const key = `images/ab-${checkpoint}.manifest.json`;
    const holder: { pending: Awaited<ReturnType<typeof side.store.writeImage>> | null } = { pending: null };
    const start = performance.now();
    await side.driver.capture({
      domainName: guest.name,
      output: {
        kind: 'chunks',
        chunkSizeBytes: 4 * MiB,
        checkpoint: { create: `ab-${checkpoint}`, since },
        consume: async (chunks, info) => {
          const pending = await side.store.writeImage(chunks, info, {
            leaseId: `ab-${randomUUID()}`,
            base: previous?.manifest ?? null,
            baseKey: previous?.key ?? null,
          });
          holder.pending = pending;
          return { sha256: pending.manifest.imageSha256, sizeBytes: pending.uploadedBytes };
        },
      },
    });
    const pending = holder.pending;
    if (!pending) throw new Error('the capture resolved without storing chunks');
    await pending.commit(key);
    const ms = performance.now() - start;
    previous = { manifest: pending.manifest, key };
    return ms;
  };
  try {
    const first = await capture(sides[1]!, null);
    console.log(`first chunked capture (this tree): ${s(first)}`);
    for (let pair = 0; pair <= PAIRS; pair++) {
      for (const side of pair % 2 === 0 ? sides : [...sides].reverse()) {
        virsh('destroy', '--domain', guest.name);
        writeRandom(guest.primaryPath, 300 + ((7 * checkpoint) % 600), 64);
        virsh('start', '--domain', guest.name);
        const ms = await capture(side, `ab-${checkpoint}`);
        if (pair > 0) side.times.push(ms);
        console.log(`  ${pair === 0 ? 'warm-up ' : ''}${side.name}: ${s(ms)}`);
      }
    }
    for (const side of sides)
      console.log(
        `${side.name}: median ${s(median(side.times))}, spread ${s(Math.min(...side.times))}–${s(Math.max(...side.times))}, ` +
          `${((100 * median(side.times)) / first).toFixed(1)} % of the first capture`,
      );
    const [base, self] = sides as [(typeof sides)[number], (typeof sides)[number]];
    const ratios = self.times.map((t, i) => t / (base.times[i] as number));
    console.log(`per-pair this/base: median ${median(ratios).toFixed(2)} (${ratios.map((r) => r.toFixed(2)).join(', ')})`);
  } finally {
    guest.remove();
    await deleteBucket(client, bucket).catch(() => undefined);
    for (const side of sides) await side.executor.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
