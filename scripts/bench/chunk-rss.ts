/**
 * Peak RSS of the panel process while it captures a running guest into a chunked S3 storage, for a
 * 1 GiB and an 8 GiB disk (issue 14: "constant from 1 to 8 GiB disks"); `npm run bench -- chunk-rss`,
 * holding the shared lock (`flock /tmp/itest.lock ...`).
 *
 * Every 1 GiB of each disk holds the same 1 GiB of random data, aligned to the chunks: the capture
 * of the 8 GiB disk reads, hashes and hands all 8 GiB through the panel (NBD over the test sshd,
 * SHA-256 per 4 MiB chunk, the chunk store's backpressure), while deduplication keeps its upload
 * at the 1 GiB the test cluster has room for. Each capture runs in a fresh child process (`--child
 * GiB`), so that no earlier allocation counts; the sizes alternate RUNS times (default 3). Prints
 * each size's median peak RSS (after the SDK is loaded, before the capture; and during it), the
 * spread, and the ratio 8 GiB ÷ 1 GiB (goal ≤ 1.10); exits non-zero when it is missed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSshExecutor } from '../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { s3StorageDriver } from '../../drivers/storage/s3';
import { createChunkStore } from '../../src/chunks';
import { wrapStorageDriver } from '../../src/storage';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import {
  adminClient,
  createBucket,
  deleteBucket,
  driverOptions,
  freshBucketName,
  loadS3TestEnv,
} from '../../test/integration/storage-s3/s3-env';
import { createTestGuest, virsh } from '../../test/support/guests';
import { median, MiB } from '../lib/bench';

const RUNS = Number(process.env.RUNS ?? 3);
const SIZES = [1, 8];
const GOAL = 1.1;
const scratch = '/var/tmp/ii-bench-chunk-rss';

/** One capture of a `gib` GiB disk in this process; prints `RSS <before> <peak>` (bytes). */
async function child(gib: number): Promise<void> {
  const target = await sshTarget();
  const s3 = await loadS3TestEnv();
  if ('skip' in target || !s3.env) throw new Error(`services missing: ${'skip' in target ? target.skip : s3.missing}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const guest = createTestGuest({ start: false, diskMiB: gib * 1024, writes: [], cdrom: false, agentChannel: false });
  const client = adminClient(s3.env);
  const bucket = freshBucketName('bench-rss');
  const executor = createSshExecutor(target.connection);
  const raw = wrapStorageDriver(s3StorageDriver.create(driverOptions(s3.env, bucket), {}));
  try {
    const random = `${scratch}/random.raw`;
    const image = `${scratch}/disk.raw`;
    execFileSync('dd', ['if=/dev/urandom', `of=${random}`, 'bs=4M', 'count=256', 'status=none']);
    for (let i = 0; i < gib; i++) execFileSync('sh', ['-c', 'cat -- "$1" >> "$2"', 'sh', random, image]);
    execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', image, guest.primaryPath]);
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    execFileSync('sync');
    virsh('start', '--domain', guest.name);
    await createBucket(client, bucket);
    const hypervisor = { id: 'hv', name: 'bench', locationId: 'l', connection: target.connection, scratchDir: `${scratch}/driver` };
    const driver = createLibvirtDriver(hypervisor, executor);
    const store = createChunkStore(raw);
    globalThis.gc?.();
    const before = process.memoryUsage.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    let uploaded = 0;
    try {
      type Pending = Awaited<ReturnType<typeof store.writeImage>>;
      let pending: Pending | null = null;
      await driver.capture({
        domainName: guest.name,
        output: {
          kind: 'chunks',
          chunkSizeBytes: 4 * MiB,
          consume: async (chunks, info) => {
            pending = await store.writeImage(chunks, info, { leaseId: `bench-${randomUUID()}` });
            return { sha256: pending.manifest.imageSha256, sizeBytes: pending.uploadedBytes };
          },
        },
      });
      const done = pending as Pending | null;
      if (!done) throw new Error('the capture resolved without storing chunks');
      await done.commit('images/rss.manifest.json');
      uploaded = done.uploadedBytes;
    } finally {
      clearInterval(sampler);
    }
    console.log(`RSS ${before} ${peak} uploaded ${uploaded}`);
  } finally {
    guest.remove();
    await deleteBucket(client, bucket).catch(() => undefined);
    await raw.close().catch(() => undefined);
    await executor.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function parent(): void {
  const self = fileURLToPath(import.meta.url);
  const results = new Map<number, { before: number[]; peak: number[] }>(SIZES.map((gib) => [gib, { before: [], peak: [] }]));
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? SIZES : [...SIZES].reverse();
    for (const gib of order) {
      const out = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--child', String(gib)], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const match = /^RSS (\d+) (\d+) uploaded (\d+)$/m.exec(out.stdout ?? '');
      if (out.status !== 0 || !match) throw new Error(`the ${gib} GiB capture failed (exit ${out.status}): ${out.stdout}`);
      const entry = results.get(gib)!;
      entry.before.push(Number(match[1]));
      entry.peak.push(Number(match[2]));
      console.log(
        `   run ${run + 1}, ${gib} GiB: peak ${(Number(match[2]) / MiB).toFixed(1)} MiB, uploaded ${(Number(match[3]) / MiB).toFixed(0)} MiB`,
      );
    }
  }
  const m = (values: number[]) => `${(median(values) / MiB).toFixed(1)} MiB`;
  const spread = (values: number[]) => `${(Math.min(...values) / MiB).toFixed(1)}–${(Math.max(...values) / MiB).toFixed(1)} MiB`;
  for (const gib of SIZES) {
    const { before, peak } = results.get(gib)!;
    console.log(`${gib} GiB disk: before the capture ${m(before)}, peak during it ${m(peak)} (spread ${spread(peak)})`);
  }
  const ratio = median(results.get(8)!.peak) / median(results.get(1)!.peak);
  console.log(`peak RSS 8 GiB ÷ 1 GiB: ${ratio.toFixed(2)} (goal ≤ ${GOAL.toFixed(2)})`);
  process.exitCode = ratio <= GOAL ? 0 : 1;
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(Number(process.argv[at + 1]));
else parent();
