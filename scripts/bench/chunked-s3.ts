/**
 * The measured goals of chunked images (issue 14), on real libvirt over the test sshd and the real
 * radosgw (`npm run bench -- chunked-s3`; hold the shared lock: `flock /tmp/itest.lock ...`).
 *
 * A running TCG guest with a 2 GiB disk holding DATA_MIB (default 1024) MiB of random data:
 * 1. first capture, alternating RUNS times (default 3), each into an empty bucket:
 *    files layout (the libvirt driver streaming a qcow2 into the S3 driver, what an S3 storage
 *    does today) vs chunks (the driver's NBD chunk reader into the chunk store), read over the
 *    driver's default NBD connections and over one. Goal ≤ 1.0×.
 * 2. RUNS times: the guest is powered off, 64 MiB of new random data written into its disk
 *    (qemu-io), started again, and once it settled (SETTLE_MS) recaptured incrementally from the previous capture's checkpoint:
 *    median time against the median first chunked capture (goal ≤ 10 %) and bytes uploaded (goal
 *    ≤ 80 MiB); the first recapture's remote commands and storage requests are traced; each
 *    recapture's minor page faults, the panel's and the guest's QEMU's, are printed (QEMU's
 *    show whether its NBD server reused its request buffers: docs/drivers.md, "QEMU's request
 *    buffers"), the panel's CPU split into user and system time, its garbage collections by kind,
 *    and, as each recapture starts, the buffers the shared chunk-buffer pool keeps and the panel's
 *    heap and ArrayBuffer bytes (`process.memoryUsage()`; see docs/measurements.md, "The panel's
 *    garbage collector");
 * 3. recaptured with the checkpoint unusable (a `since` that does not exist): a full read whose
 *    dedup uploads only the new chunks (goal ≤ 80 MiB);
 * 4. a capture aborted once half of the data is uploaded, then retried: bytes the retry uploads
 *    against the image (goal ≤ 55 %);
 * 5. deploy: files layout (stream from S3 into the driver) vs chunks (the chunk reader into the
 *    driver's NBD writer), alternating. Goal ≤ 1.1×.
 * 6. ten images of ten stopped disks cloned from one stock disk, each with 64 MiB of its own random
 *    writes, captured into one chunked store: unique stored bytes against one image (goal ≤ 1.3×).
 *    The stock disk is a stopped 4 GiB disk of its own holding STOCK_MIB (default 2560) MiB of
 *    random data (a stock OS image's size; random, so nothing dedups inside it): with exact dedup
 *    the ratio is (one image + nine clones' own writes) / one image, so it depends on the stock
 *    image's size, and the step prints the smallest one for which the goal holds.
 * Every timed run starts on an idle storage: the bench first has radosgw collect the objects of
 * the buckets it deleted and waits until radosgw and the OSD are idle (scripts/lib/bench.ts,
 * `quietStorage`; `QUIET_STORAGE=0` skips it), and prints how long it waited in all.
 * Prints medians, spreads and the panel process's peak RSS per step (the kernel's count, `VmHWM`,
 * reset as each step starts).
 *
 * `CPU=1` prints the CPU seconds per program (panel, radosgw, ceph-osd, sshd, qemu-nbd…) of each
 * first capture of step 1, each recapture of step 2 and each deploy of step 5; with
 * `CPU_THREADS=qemu-system-x86,libvirtd` also those programs' threads (scripts/lib/cpu-sampler.mjs).
 * `TRACE_ALL=1` prints every storage request of the traced recapture, not only their sums.
 * `SETTLE_MS` waits that long after step 2 starts the guest before each recapture (default 1000).
 * `WRITES=live` makes step 2's writes through the running guest's disk device instead of powering
 * it off for qemu-io (`WRITES=ab` alternates the two and prints each one's median).
 * `FORK_BEFORE=1` forks the bench's process (a `true`) just before each recapture of step 2, as
 * the bench did until its helper commands moved to a helper process: the recapture then pays a
 * copy-on-write fault on each page of the panel's memory it writes (a panel that spawns processes
 * pays the same).
 * `CPU_PROFILE=<dir>` writes a V8 CPU profile of the panel process per recapture of step 2 and per deploy of step 5 into `<dir>`.
 * `CHUNK_MIB` sets the chunk size (default 4, the storages' default).
 * `CHUNK_PARALLEL` sets the chunk store's uploads in flight (its default otherwise).
 * `LIBVIRT_RPC=0` starts and ends the backup jobs with `virsh` (the driver's `libvirtRpc: false`),
 * for comparison with the default, libvirt's RPC protocol over a unix-socket channel;
 * `LIBVIRT_RPC=ab` alternates the two in step 2 (RPC first) and prints each one's median.
 * `READ_BUFFER=<bytes>` sets the SSH executor's `readBufferBytes` (0: ssh2's own socket); `READ_BUFFER=ab`
 * runs each deploy of step 5 twice, over the default and over ssh2's own socket, in alternating order,
 * and prints each one's medians and ratio.
 * `STEPS` (default `1,2,3,4,5,6`) runs only the steps listed, e.g. `STEPS=2 RUNS=5` for the
 * incremental recapture alone: without step 1, one chunked first capture (timed once) is made as
 * the base of steps 2, 3 and 5 and as the reference of step 2's percentage.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { createSshExecutor, type SshExecutor } from '../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { s3StorageDriver } from '../../drivers/storage/s3';
import { createChunkStore, type ChunkManifest, type ChunkStore } from '../../src/chunks';
import type { CaptureResult, HypervisorDriver } from '../../src/ports/hypervisor-driver';
import { wrapStorageDriver, type StorageDisk } from '../../src/storage';
import { sharedBufferPool } from '../../src/util/buffer-pool';
import { sshTarget } from '../../test/integration/exec/ssh-target';
import {
  adminClient,
  createBucket,
  deleteBucket,
  driverOptions,
  freshBucketName,
  loadS3TestEnv,
} from '../../test/integration/storage-s3/s3-env';
import { createTestGuest, TEST_URI, type TestGuest } from '../../test/support/guests';
import {
  cpuLine,
  guestWithRandomData,
  median,
  MiB,
  peakRss,
  quietStorage,
  resetPeakRss,
  run,
  sampleCpu,
  startHelpers,
  storageWaits,
} from '../lib/bench';
import { minorFaults } from '../lib/proc-stat.mjs';

const RUNS = Number(process.env.RUNS ?? 3);
const DATA_MIB = Number(process.env.DATA_MIB ?? 1024);
const STOCK_MIB = Number(process.env.STOCK_MIB ?? 2560);
const STEPS = new Set((process.env.STEPS ?? '1,2,3,4,5,6').split(',').map((step) => Number(step.trim())));
/** CHUNK_MIB: the chunked storage's chunk size in MiB (default 4, the storage default; a power of two). */
const CHUNK = Number(process.env.CHUNK_MIB ?? 4) * MiB;
/**
 * SETTLE_MS: how long step 2 waits after starting the guest before it recaptures (default 1000). The
 * guest is powered off only to write its 64 MiB with qemu-io; its firmware keeps a CPU busy for about
 * half a second after the start (28 % of a core in the first 0.5 s, 0–2 % after). Recaptured at once,
 * the recapture shared the 2 cores with that boot, which step 1 captures (a guest running for
 * minutes) never do. `SETTLE_MS=0` recaptures at once.
 */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 1000);
/**
 * WRITES: how step 2 rewrites its 64 MiB. `offline` (default): the guest is powered off, qemu-io
 * writes the disk, the guest is started again and settles (SETTLE_MS). `live`: the running guest's
 * disk device writes them (QEMU's `qemu-io` monitor command on the device's block backend, as a
 * guest's own writes go: the checkpoint's bitmap records them), and the guest is never restarted.
 * `ab` alternates the two, offline first, and prints each one's median.
 */
const WRITES = process.env.WRITES ?? 'offline';
if (!['offline', 'live', 'ab'].includes(WRITES)) throw new Error(`WRITES must be offline, live or ab, not ${WRITES}`);
const FORK_BEFORE = process.env.FORK_BEFORE === '1';
/**
 * LIBVIRT_RPC=0: the chunked captures start and end their jobs with `virsh` in a remote script, not
 * over libvirt's RPC protocol. LIBVIRT_RPC=ab: step 2's recaptures alternate, RPC first.
 */
const LIBVIRT_RPC = process.env.LIBVIRT_RPC !== '0';
const RPC_AB = process.env.LIBVIRT_RPC === 'ab';
/** READ_BUFFER: the executor's `readBufferBytes` (unset: its default); `ab`: step 5 alternates the default and 0. */
const READ_BUFFER_AB = process.env.READ_BUFFER === 'ab';
const READ_BUFFER = process.env.READ_BUFFER && !READ_BUFFER_AB ? { readBufferBytes: Number(process.env.READ_BUFFER) } : {};
/** CHUNK_PARALLEL: the chunk store's `parallel` (uploads in flight); unset, the store's default. */
const STORE_OPTIONS = process.env.CHUNK_PARALLEL ? { parallel: Number(process.env.CHUNK_PARALLEL) } : {};
const scratch = '/var/tmp/ii-bench-chunked';

/** With CPU_PROFILE set, profiles `fn` in this process (the panel) into `<CPU_PROFILE>/<name>.cpuprofile`. */
async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = process.env.CPU_PROFILE;
  if (!dir) return fn();
  mkdirSync(dir, { recursive: true });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  }
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const line = (label: string, times: number[]) =>
  `${label}: median ${s(median(times))}, spread ${s(Math.min(...times))}–${s(Math.max(...times))} (${times.map(s).join(', ')})`;

/**
 * What an incremental capture spends its time on: every remote command (program and virsh
 * subcommand only) and every storage request, with its start and duration, while `trace.on`.
 * Measured here in the bench, around the executor and the storage, never inside the product.
 */
const trace = { on: false, start: 0, events: [] as Array<{ what: string; at: number; ms: number }> };
async function traced<T>(what: string, fn: () => Promise<T>): Promise<T> {
  if (!trace.on) return fn();
  const at = performance.now();
  try {
    return await fn();
  } finally {
    trace.events.push({ what, at: at - trace.start, ms: performance.now() - at });
  }
}
/** `virsh SUBCOMMAND`, `sh -c` scripts by their first word, or the program. */
function commandLabel(argv: readonly string[]): string {
  const virsh = argv.indexOf('virsh');
  if (virsh >= 0) return `virsh ${argv[virsh + 4] ?? ''}`;
  if (argv[0] === 'sh') return `sh ${(argv[2] ?? '').split(/\s/)[0]}… ${argv.slice(4, 9).find((a) => /^(virsh|qemu|rm|df)/.test(a)) ?? ''}`;
  return argv.slice(0, 2).join(' ');
}
function tracedExecutor(executor: SshExecutor): SshExecutor {
  return {
    get label() {
      return executor.label;
    },
    get connectionCount() {
      return executor.connectionCount;
    },
    run: (argv, options) => traced(commandLabel(argv), () => executor.run(argv, options)),
    stream: (argv, options) => traced(`stream ${commandLabel(argv)}`, () => executor.stream(argv, options)),
    openStreamLocal: (path, options) => traced('open NBD channel', () => executor.openStreamLocal(path, options)),
    close: () => executor.close(),
  };
}
function tracedDisk(disk: StorageDisk): StorageDisk {
  return {
    ...disk,
    put: (key, body, options) => traced(`s3 put ${key.split('/')[0]}`, () => disk.put(key, body, options)),
    putBytes: (key, bytes, options) => traced(`s3 put ${key.split('/')[0]}`, () => disk.putBytes(key, bytes, options)),
    get: (key, options) => traced(`s3 get ${key.split('/')[0]}`, () => disk.get(key, options)),
    getBytes: (key, into, options) => traced(`s3 get ${key.split('/')[0]}`, () => disk.getBytes(key, into, options)),
    stat: (key) => traced(`s3 stat ${key.split('/')[0]}`, () => disk.stat(key)),
    list: (options) => traced(`s3 list ${options?.prefix ?? ''}`, () => disk.list(options)),
    delete: (key) => traced(`s3 delete ${key.split('/')[0]}`, () => disk.delete(key)),
  };
}
/** Prints the traced events: remote commands one by one, storage requests summed by kind. */
function printTrace(totalMs: number): void {
  const remote = trace.events.filter((e) => !e.what.startsWith('s3 '));
  for (const e of remote.sort((a, b) => a.at - b.at)) console.log(`     +${s(e.at)} ${s(e.ms)}  ${e.what}`);
  if (process.env.TRACE_ALL === '1')
    for (const e of trace.events.filter((e) => e.what.startsWith('s3 ')).sort((a, b) => a.at - b.at))
      console.log(`     +${s(e.at)} ${s(e.ms)}  ${e.what}`);
  printRequests();
  const busy = remote.reduce((sum, e) => sum + e.ms, 0);
  console.log(`     remote commands: ${remote.length}, ${s(busy)} summed, of ${s(totalMs)} in all`);
}

/** Prints the traced storage requests summed by kind. */
function printRequests(): void {
  const byKind = new Map<string, { n: number; ms: number }>();
  for (const e of trace.events.filter((e) => e.what.startsWith('s3 '))) {
    const k = byKind.get(e.what) ?? { n: 0, ms: 0 };
    byKind.set(e.what, { n: k.n + 1, ms: k.ms + e.ms });
  }
  for (const [what, k] of byKind) console.log(`     ${what}: ${k.n} requests, ${s(k.ms)} summed (overlapping)`);
}

/** When each step of a deploy's progress was first and last reported, from the start: `write 0.21–7.52 s, done 9.90 s`. */
function phases(): { record: (p: { step: string }) => void; line: () => string } {
  const start = performance.now();
  const seen = new Map<string, { first: number; last: number }>();
  return {
    record: ({ step }) => {
      const at = (performance.now() - start) / 1000;
      const known = seen.get(step);
      if (known) known.last = at;
      else seen.set(step, { first: at, last: at });
    },
    line: () =>
      [...seen]
        .map(([step, t]) =>
          t.first === t.last ? `${step} ${t.first.toFixed(2)} s` : `${step} ${t.first.toFixed(2)}–${t.last.toFixed(2)} s`,
        )
        .join(', '),
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/**
 * Writes `mibs` MiB of fresh random data into a stopped qcow2 disk at `offsetMiB`, by the helper
 * process (`run`): the bench's own process, which plays the panel, must not fork before a timed step.
 */
async function writeRandom(diskPath: string, offsetMiB: number, mibs: number): Promise<void> {
  const source = `${scratch}/random-${randomUUID()}.raw`;
  await run('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', `count=${mibs}`, 'status=none']);
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -s ${source} ${offsetMiB}M ${mibs}M`, diskPath]);
  rmSync(source);
}

/**
 * Writes `mibs` MiB of random data at `offsetMiB` through the running domain's device for the disk
 * at `diskPath` (its block backend, as the guest's writes go), without stopping it.
 */
async function writeRandomLive(domainName: string, diskPath: string, offsetMiB: number, mibs: number): Promise<void> {
  const blocks = JSON.parse(
    await run('virsh', ['-q', '-c', TEST_URI, 'qemu-monitor-command', domainName, '{"execute":"query-block"}']),
  ) as { return: Array<{ qdev?: string; inserted?: { file?: string } }> };
  const device = blocks.return.find((b) => b.inserted?.file === diskPath)?.qdev;
  if (!device) throw new Error(`no device of ${domainName} shows ${diskPath}`);
  const source = `${scratch}/random-${randomUUID()}.raw`;
  await run('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', `count=${mibs}`, 'status=none']);
  const out = await run('virsh', [
    '-q',
    '-c',
    TEST_URI,
    'qemu-monitor-command',
    domainName,
    '--hmp',
    `qemu-io -d ${device} "write -s ${source} ${offsetMiB}M ${mibs}M"`,
  ]);
  rmSync(source);
  // qemu-io prints to QEMU's own output, not the monitor: the monitor answers only errors (and
  // the recapture's upload, printed, shows the 64 MiB were written).
  if (out.trim() !== '') throw new Error(`qemu-io through ${device} failed: ${out.trim()}`);
}

/** `virsh` by the helper process (see {@link writeRandom}). */
async function virshAway(...args: string[]): Promise<void> {
  await run('virsh', ['-q', '-c', TEST_URI, ...args]);
}

interface Bench {
  driver: HypervisorDriver;
  /** The same driver reading over one NBD connection (`nbdConnections: 1`), for comparison. */
  driverOne: HypervisorDriver;
  /** The same driver starting and ending jobs with `virsh` (`libvirtRpc: false`), for `LIBVIRT_RPC=ab`. */
  driverVirsh: HypervisorDriver;
  /** With `READ_BUFFER=ab`: the driver over an executor reading through ssh2's own socket (`readBufferBytes: 0`). */
  driverSsh2Socket: HypervisorDriver | null;
  client: ReturnType<typeof adminClient>;
  env: NonNullable<Awaited<ReturnType<typeof loadS3TestEnv>>['env']>;
  /** The buckets in use, by the (traced) disk the bench works with. */
  owned: Map<StorageDisk, { bucket: string; raw: StorageDisk }>;
}

async function freshDisk(b: Bench, name: string): Promise<StorageDisk> {
  const bucket = freshBucketName(name);
  await createBucket(b.client, bucket);
  const raw = wrapStorageDriver(s3StorageDriver.create(driverOptions(b.env, bucket), {}));
  const disk = tracedDisk(raw);
  b.owned.set(disk, { bucket, raw });
  return disk;
}

/**
 * Removes a disk's bucket as soon as its step is measured: the test cluster holds 10 GiB, and the
 * runs of step 1 alone write more than that when their buckets are kept to the end.
 */
async function dropDisk(b: Bench, disk: StorageDisk): Promise<void> {
  const entry = b.owned.get(disk);
  if (!entry) return;
  b.owned.delete(disk);
  await deleteBucket(b.client, entry.bucket).catch(() => undefined);
  await entry.raw.close().catch(() => undefined);
}

/**
 * Counts minor page faults from now, the panel's own (`process.resourceUsage()`) and the guest's
 * QEMU's (its `/proc/<pid>/stat`, all threads), and the panel's CPU split into user and system
 * time (`process.cpuUsage()`); the returned function reads them as text.
 */
function recaptureCounters(domainName: string): () => string {
  const qemu = (): number | null => {
    try {
      const pid = readFileSync(`/run/libvirt/qemu/${domainName}.pid`, 'utf8').trim();
      return minorFaults(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return null;
    }
  };
  const panel0 = process.resourceUsage().minorPageFault;
  // The process's shared pool (made here when no read made it yet: max 0 until a read raises it).
  const kept0 = sharedBufferPool(CHUNK, 0).kept;
  const mem0 = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  const qemu0 = qemu();
  // The panel's garbage collections, by kind: pauses of the main thread, counted in its user time.
  const gc = { minor: { count: 0, ms: 0 }, major: { count: 0, ms: 0 } };
  const count = (entries: PerformanceEntry[]): void => {
    for (const entry of entries) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR ? gc.major : gc.minor;
      kind.count += 1;
      kind.ms += entry.duration;
    }
  };
  const observer = new PerformanceObserver((list) => count(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    const q = qemu();
    const cpu = process.cpuUsage(cpu0);
    count(observer.takeRecords());
    observer.disconnect();
    return (
      `page faults: panel ${process.resourceUsage().minorPageFault - panel0}, QEMU ${q === null || qemu0 === null ? '?' : q - qemu0}; ` +
      `panel CPU user ${(cpu.user / 1e6).toFixed(2)} s, system ${(cpu.system / 1e6).toFixed(2)} s; ` +
      `GC ${gc.minor.count} minor ${gc.minor.ms.toFixed(0)} ms, ${gc.major.count} major ${gc.major.ms.toFixed(0)} ms; ` +
      `at start: pool kept ${kept0}, heap used ${(mem0.heapUsed / MiB).toFixed(0)} MiB, array buffers ${(mem0.arrayBuffers / MiB).toFixed(0)} MiB`
    );
  };
}

/** Marks in the trace when the first and the last chunk reach the store. */
async function* markChunks<T>(chunks: AsyncIterable<T>): AsyncGenerator<T> {
  let first = true;
  let at = performance.now();
  for await (const chunk of chunks) {
    if (first && trace.on) trace.events.push({ what: '(first chunk handed to the store)', at: performance.now() - trace.start, ms: 0 });
    first = false;
    at = performance.now();
    const kind = (chunk as { kind?: string }).kind;
    if (process.env.TRACE_ALL === '1' && trace.on && kind === 'data')
      trace.events.push({ what: `(chunk ${(chunk as { index?: number }).index} handed)`, at: at - trace.start, ms: 0 });
    yield chunk;
  }
  if (trace.on) trace.events.push({ what: '(last chunk handed to the store)', at: at - trace.start, ms: 0 });
}

/** A chunked capture into `store`, committed at `key`. */
/** Lease deletions of committed captures still running (each capture awaits those before it). */
const settling = new Set<Promise<void>>();

async function captureChunks(
  b: Bench,
  store: ChunkStore,
  domainName: string,
  key: string,
  options: {
    create?: string;
    since?: string | null;
    base?: ChunkManifest | null;
    baseKey?: string | null;
    signal?: AbortSignal;
    driver?: HypervisorDriver;
  } = {},
): Promise<{ result: CaptureResult; uploadedBytes: number; manifest: ChunkManifest }> {
  // The previous capture's lease deletion (long over by now: the bench writes the disk in between).
  await Promise.all(settling);
  type Pending = Awaited<ReturnType<ChunkStore['writeImage']>>;
  const holder: { pending: Pending | null } = { pending: null };
  const leaseId = `bench-${randomUUID()}`;
  // As the product does: the lease is written and the base proven while the job starts; the base
  // also serves a full read (its chunks are known stored).
  const prepared = store.prepareImage({
    leaseId,
    base: options.base ?? null,
    baseKey: options.base ? (options.baseKey ?? null) : null,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    const result = await (options.driver ?? b.driver).capture({
      domainName,
      ...(options.signal ? { signal: options.signal } : {}),
      output: {
        kind: 'chunks',
        chunkSizeBytes: CHUNK,
        ...(options.create ? { checkpoint: { create: options.create, since: options.since ?? null } } : {}),
        // As the capture task does: the job ends while the manifest is stored (awaited, untimed,
        // before the next capture, as the task awaits it before it ends).
        endLater: true,
        consume: async (chunks, info) => {
          const pending = await prepared.write(markChunks(chunks), info);
          holder.pending = pending;
          return { sha256: pending.manifest.imageSha256, sizeBytes: pending.uploadedBytes };
        },
      },
    });
    const done = holder.pending;
    if (!done) throw new Error('the capture resolved without storing chunks');
    if (trace.on) trace.events.push({ what: '(capture returned)', at: performance.now() - trace.start, ms: 0 });
    // As the capture task does: the image is available once its manifest is stored, while the lease
    // is deleted (the task awaits that after its status write; here the caller does, untimed).
    await done.commit(key, { releaseLater: true });
    if (trace.on) trace.events.push({ what: '(committed)', at: performance.now() - trace.start, ms: 0 });
    for (const settled of [done.settled(), result.ended?.catch(() => undefined) ?? Promise.resolve()]) {
      settling.add(settled);
      void settled.then(() => settling.delete(settled));
    }
    return { result, uploadedBytes: done.uploadedBytes, manifest: done.manifest };
  } catch (error) {
    await (holder.pending ?? prepared).abandon().catch(() => undefined);
    throw error;
  }
}

async function main(): Promise<void> {
  await startHelpers();
  const target = await sshTarget();
  const s3 = await loadS3TestEnv();
  if ('skip' in target || !s3.env) throw new Error(`services missing: ${'skip' in target ? target.skip : s3.missing}`);
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const executor = tracedExecutor(createSshExecutor(target.connection, READ_BUFFER));
  const ssh2SocketExecutor = READ_BUFFER_AB ? createSshExecutor(target.connection, { readBufferBytes: 0 }) : null;
  const hypervisor = { id: 'hv', name: 'bench', locationId: 'l', connection: target.connection, scratchDir: `${scratch}/driver` };
  // The driver's stages (the job's start, the copy) as markers in the trace.
  const hooks = {
    stage: ({ stage, phase }: { stage: string; phase: 'start' | 'end' }) => {
      if (trace.on) trace.events.push({ what: `(${stage} ${phase})`, at: performance.now() - trace.start, ms: 0 });
    },
  };
  const b: Bench = {
    driver: createLibvirtDriver(hypervisor, executor, { hooks, libvirtRpc: LIBVIRT_RPC }),
    driverOne: createLibvirtDriver(hypervisor, executor, { nbdConnections: 1, libvirtRpc: LIBVIRT_RPC }),
    driverVirsh: createLibvirtDriver(hypervisor, executor, { hooks, libvirtRpc: false }),
    driverSsh2Socket: ssh2SocketExecutor ? createLibvirtDriver(hypervisor, ssh2SocketExecutor, { libvirtRpc: LIBVIRT_RPC }) : null,
    client: adminClient(s3.env),
    env: s3.env,
    owned: new Map(),
  };
  const guests: TestGuest[] = [];
  // Once only: a signal's cleanup and the one in `finally` (when the interrupted step then fails) are the same.
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const g of guests.splice(0)) g.remove();
      for (const disk of [...b.owned.keys()]) await dropDisk(b, disk);
      await executor.close();
      await ssh2SocketExecutor?.close();
      rmSync(scratch, { recursive: true, force: true });
    })());
  // A bench stopped by a signal still removes its buckets: left behind, they fill the test cluster.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: removing the bench's buckets and guests`);
      // Work still in flight fails once its storage is gone: that must not stop the cleanup.
      process.on('unhandledRejection', () => undefined);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    process.stdout.write(`preparing a running guest: 2 GiB disk, ${DATA_MIB} MiB of random data... `);
    const guest = guestWithRandomData(DATA_MIB);
    guests.push(guest);
    console.log('done');

    // 1. First capture: files layout vs chunks (the default NBD connections, and one), each into an
    //    empty bucket, in a rotating order.
    const files: number[] = [];
    const chunked: number[] = [];
    const chunkedOne: number[] = [];
    let first: { manifest: ChunkManifest; store: ChunkStore; uploaded: number } | null = null;
    let firstDisk: StorageDisk | null = null;
    let checkpoint = 0;
    resetPeakRss();
    for (let i = 0; i < (STEPS.has(1) ? RUNS : 0); i++) {
      const runFiles = async () => {
        const disk = await freshDisk(b, 'bench-files');
        await quietStorage();
        const cpu = await sampleCpu();
        const { ms } = await timed(() =>
          b.driver.capture({
            domainName: guest.name,
            output: { kind: 'stream', consume: async (stream, size) => void (await disk.put('image.qcow2', stream, { size })) },
          }),
        );
        files.push(ms);
        const used = await cpu.stop();
        if (used) console.log(`   files ${s(ms)}: ${cpuLine(used)}`);
        await dropDisk(b, disk);
      };
      const runChunks = async () => {
        const disk = await freshDisk(b, 'bench-chunks');
        const store = createChunkStore(disk, STORE_OPTIONS);
        checkpoint += 1;
        await quietStorage();
        const cpu = await sampleCpu();
        const { ms, value } = await timed(() =>
          captureChunks(b, store, guest.name, 'images/first.manifest.json', { create: `bench-${checkpoint}` }),
        );
        chunked.push(ms);
        const used = await cpu.stop();
        if (used) console.log(`   chunks ${s(ms)}: ${cpuLine(used)}`);
        // The last one is kept: the later steps build on it.
        if (firstDisk) await dropDisk(b, firstDisk);
        firstDisk = disk;
        first = { manifest: value.manifest, store, uploaded: value.uploadedBytes };
      };
      const runChunksOne = async () => {
        const disk = await freshDisk(b, 'bench-chunks');
        const store = createChunkStore(disk, STORE_OPTIONS);
        checkpoint += 1;
        const { ms } = await timed(() =>
          captureChunks(b, store, guest.name, 'images/first.manifest.json', { create: `bench-${checkpoint}`, driver: b.driverOne }),
        );
        chunkedOne.push(ms);
        await dropDisk(b, disk);
      };
      const order = [runFiles, runChunks, runChunksOne];
      for (let k = 0; k < order.length; k++) await (order[(i + k) % order.length] as () => Promise<void>)();
    }
    if (!STEPS.has(1)) {
      // The base of the later steps: one chunked first capture, timed once as step 2's reference.
      const disk = await freshDisk(b, 'bench-chunks');
      const store = createChunkStore(disk, STORE_OPTIONS);
      checkpoint += 1;
      // Its storage requests are counted (tracing them costs a timestamp each).
      await quietStorage();
      Object.assign(trace, { on: true, start: performance.now(), events: [] });
      const { ms, value } = await timed(() =>
        captureChunks(b, store, guest.name, 'images/first.manifest.json', { create: `bench-${checkpoint}` }),
      );
      trace.on = false;
      chunked.push(ms);
      firstDisk = disk;
      first = { manifest: value.manifest, store, uploaded: value.uploadedBytes };
      console.log(`\n1. (only the base of the other steps) one chunked first capture: ${s(ms)}`);
      printRequests();
    }
    const firstRss = peakRss();
    const base = first as unknown as { manifest: ChunkManifest; store: ChunkStore; uploaded: number };
    if (STEPS.has(1)) {
      console.log(`\n1. first capture, ${RUNS} runs each, alternating (peak RSS ${mib(firstRss)}):`);
      console.log(`   ${line('files layout into S3', files)}`);
      console.log(`   ${line('chunks into S3      ', chunked)}`);
      console.log(`   ${line('chunks, 1 NBD conn. ', chunkedOne)}`);
      console.log(`   ratio chunks/files ${(median(chunked) / median(files)).toFixed(2)} (goal ≤ 1.00); uploaded ${mib(base.uploaded)}`);
      console.log(`   ratio chunks over one NBD connection/files ${(median(chunkedOne) / median(files)).toFixed(2)}`);
      // On a busy machine the runs wander together: the ratio within each run (same rotation) is steadier.
      const paired = (times: number[]) => times.map((t, i) => t / (files[i] as number));
      const ratios = (label: string, times: number[]) => {
        const r = paired(times);
        return `${label} median ${median(r).toFixed(2)}, spread ${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)} (${r.map((x) => x.toFixed(2)).join(', ')})`;
      };
      console.log(`   per-run ratios: ${ratios('chunks/files', chunked)}; ${ratios('one NBD connection/files', chunkedOne)}`);
    }

    // 2. 64 MiB rewritten offline, then an incremental recapture from the newest checkpoint, RUNS
    //    times (each from the previous one's checkpoint), the first one traced step by step.
    const recaptures: number[] = [];
    const recaptureUploads: number[] = [];
    let previous = base.manifest;
    let previousKey = 'images/first.manifest.json';
    let incrementalSince: string | null = null;
    for (let i = 0; i < (STEPS.has(2) ? RUNS : 0); i++) {
      if (WRITES === 'live' || (WRITES === 'ab' && i % 2 === 1)) {
        await writeRandomLive(guest.name, guest.primaryPath, 300 + 100 * i, 64);
      } else {
        await virshAway('destroy', '--domain', guest.name);
        await writeRandom(guest.primaryPath, 300 + 100 * i, 64);
        await virshAway('start', '--domain', guest.name);
        if (SETTLE_MS > 0) await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      }
      if (FORK_BEFORE) execFileSync('true');
      const since = `bench-${checkpoint}`;
      checkpoint += 1;
      const key = i === 0 ? 'images/second.manifest.json' : `images/second-${i}.manifest.json`;
      await quietStorage();
      const cpu = await sampleCpu();
      const counters = recaptureCounters(guest.name);
      Object.assign(trace, { on: i === 0, start: performance.now(), events: [] });
      const incremental = await profiled(`recapture-${i}`, () =>
        timed(() =>
          captureChunks(b, base.store, guest.name, key, {
            create: `bench-${checkpoint}`,
            since,
            base: previous,
            baseKey: previousKey,
            ...(RPC_AB && i % 2 === 1 ? { driver: b.driverVirsh } : {}),
          }),
        ),
      );
      trace.on = false;
      const used = await cpu.stop();
      const counted = counters();
      if (used) console.log(`   recapture ${s(incremental.ms)}: ${counted}; ${cpuLine(used, 0.01)}`);
      if (i === 0) {
        console.log('\n2. the first incremental recapture, step by step (remote commands in order; storage requests summed):');
        printTrace(incremental.ms);
      }
      previous = incremental.value.manifest;
      previousKey = key;
      incrementalSince = incremental.value.result.incrementalSince ?? null;
      recaptures.push(incremental.ms);
      recaptureUploads.push(incremental.value.uploadedBytes);
    }
    if (STEPS.has(2))
      console.log(
        `   ${line(`recapture after 64 MiB rewritten, ${RUNS} runs`, recaptures)}\n` +
          `   = ${((100 * median(recaptures)) / median(chunked)).toFixed(1)} % of the first chunked capture (goal ≤ 10 %), ` +
          `incremental since ${incrementalSince ?? 'none (full read)'}, uploaded ${recaptureUploads.map(mib).join(', ')} (goal ≤ 80 MiB)`,
      );
    if (STEPS.has(2) && RPC_AB) {
      const rpc = recaptures.filter((_, i) => i % 2 === 0);
      const virsh = recaptures.filter((_, i) => i % 2 === 1);
      console.log(`   ${line('  over libvirt RPC', rpc)}\n   ${line('  with virsh      ', virsh)}`);
      const pairs = virsh.map((v, i) => (rpc[i] as number) / v);
      console.log(
        `   RPC/virsh per pair: ${pairs.map((r) => r.toFixed(2)).join(', ')}; medians ${(median(rpc) / median(virsh)).toFixed(2)}`,
      );
    }
    if (STEPS.has(2) && WRITES === 'ab') {
      const offline = recaptures.filter((_, i) => i % 2 === 0);
      const live = recaptures.filter((_, i) => i % 2 === 1);
      console.log(`   ${line('  after offline writes', offline)}\n   ${line('  after live writes   ', live)}`);
    }

    // 3. The checkpoint unusable: a full read, dedup only.
    if (STEPS.has(3)) {
      await virshAway('destroy', '--domain', guest.name);
      await writeRandom(guest.primaryPath, 700, 64);
      await virshAway('start', '--domain', guest.name);
      const dedup = await timed(() =>
        captureChunks(b, base.store, guest.name, 'images/third.manifest.json', {
          create: 'bench-x',
          since: 'no-such-checkpoint',
          base: previous,
          baseKey: previousKey,
        }),
      );
      console.log(
        `\n3. recapture with the checkpoint unusable: ${s(dedup.ms)}, incremental since ${dedup.value.result.incrementalSince ?? 'none (full read)'}, ` +
          `uploaded ${mib(dedup.value.uploadedBytes)} (goal ≤ 80 MiB)`,
      );
      // The same without a stored image of the disk to lean on: every chunk is checked with a stat.
      await virshAway('destroy', '--domain', guest.name);
      await writeRandom(guest.primaryPath, 800, 64);
      await virshAway('start', '--domain', guest.name);
      const unbased = await timed(() =>
        captureChunks(b, base.store, guest.name, 'images/third-b.manifest.json', { create: 'bench-y', since: 'no-such-checkpoint' }),
      );
      console.log(`   the same with no base manifest (a stat per chunk): ${s(unbased.ms)}, uploaded ${mib(unbased.value.uploadedBytes)}`);
    }

    // 4. Killed at half of the disk, then retried into the same (fresh) store.
    if (STEPS.has(4)) {
      const disk = await freshDisk(b, 'bench-resume');
      const store = createChunkStore(disk, STORE_OPTIONS);
      const controller = new AbortController();
      let uploadedBeforeAbort = 0;
      const resumable = await timed(async () => {
        const leaseId = `bench-${randomUUID()}`;
        await b.driver
          .capture({
            domainName: guest.name,
            signal: controller.signal,
            output: {
              kind: 'chunks',
              chunkSizeBytes: CHUNK,
              consume: async (chunks, info) => {
                const pending = await store.writeImage(chunks, info, {
                  leaseId,
                  signal: controller.signal,
                  onProgress: (p) => {
                    uploadedBeforeAbort = p.uploadedBytes;
                    // Half of the data (the guest's random data fills the first DATA_MIB of the disk).
                    if (p.uploadedBytes >= (DATA_MIB * MiB) / 2) controller.abort();
                  },
                });
                return { sha256: pending.manifest.imageSha256, sizeBytes: pending.uploadedBytes };
              },
            },
          })
          .catch(() => undefined);
      });
      const retry = await captureChunks(b, store, guest.name, 'images/resumed.manifest.json');
      const whole = retry.uploadedBytes + uploadedBeforeAbort;
      console.log(
        `\n4. capture aborted at half the data after ${s(resumable.ms)} with ${mib(uploadedBeforeAbort)} uploaded; the retry uploaded ` +
          `${mib(retry.uploadedBytes)} = ${((100 * retry.uploadedBytes) / Math.max(1, whole)).toFixed(1)} % of the image (goal ≤ 55 %)`,
      );
      await dropDisk(b, disk);
    }

    // 5. Deploy: files layout vs chunks, alternating.
    if (STEPS.has(5)) {
      const filesDisk = await freshDisk(b, 'bench-deploy');
      await b.driver.capture({
        domainName: guest.name,
        output: { kind: 'stream', consume: async (stream, size) => void (await filesDisk.put('image.qcow2', stream, { size })) },
      });
      const manifest = ((await base.store.readManifest('images/second.manifest.json')) ?? base.manifest) as ChunkManifest;
      // With READ_BUFFER=ab each run deploys over both executors, in alternating order.
      const variants = [
        {
          label: READ_BUFFER_AB ? 'reused read buffer (default)' : '',
          driver: b.driver,
          fromFiles: [] as number[],
          fromChunks: [] as number[],
        },
        ...(b.driverSsh2Socket
          ? [{ label: "ssh2's own socket", driver: b.driverSsh2Socket, fromFiles: [] as number[], fromChunks: [] as number[] }]
          : []),
      ];
      resetPeakRss();
      for (let i = 0; i < RUNS; i++) {
        for (const [v, variant] of (i % 2 === 0 ? variants : [...variants].reverse()).entries()) {
          const { driver, fromFiles, fromChunks } = variant;
          const tag = variant.label ? ` (${variant.label})` : '';
          const runFiles = async () => {
            const targetPath = `${scratch}/deploy-files-${i}.qcow2`;
            await quietStorage();
            const cpu = await sampleCpu();
            const steps = phases();
            const { ms } = await timed(() =>
              profiled(`deploy-files-${i}${v ? '-b' : ''}`, async () =>
                driver.materialize({
                  source: { kind: 'stream', stream: await filesDisk.get('image.qcow2') },
                  sourceFormat: 'qcow2',
                  targetPath,
                  onProgress: steps.record,
                }),
              ),
            );
            fromFiles.push(ms);
            const used = await cpu.stop();
            console.log(`   files${tag} ${s(ms)}: ${steps.line()}${used ? `; ${cpuLine(used)}` : ''}`);
            rmSync(targetPath, { force: true });
          };
          const runChunks = async () => {
            const targetPath = `${scratch}/deploy-chunks-${i}.qcow2`;
            await quietStorage();
            const cpu = await sampleCpu();
            const steps = phases();
            // The first chunked deploy's remote commands, step by step.
            Object.assign(trace, { on: i === 0 && v === 0 && driver === b.driver, start: performance.now(), events: [] });
            const { ms } = await timed(() =>
              profiled(`deploy-chunks-${i}${v ? '-b' : ''}`, () =>
                driver.materialize({
                  source: {
                    kind: 'chunks',
                    virtualSizeBytes: manifest.virtualSizeBytes,
                    chunks: base.store.readImage(manifest, { leaseId: `bench-${randomUUID()}` }),
                  },
                  sourceFormat: 'raw',
                  targetPath,
                  onProgress: steps.record,
                }),
              ),
            );
            fromChunks.push(ms);
            if (trace.on) {
              trace.on = false;
              console.log('   the first chunked deploy, step by step (remote commands in order; storage requests summed):');
              printTrace(ms);
            }
            const used = await cpu.stop();
            console.log(`   chunks${tag} ${s(ms)}: ${steps.line()}${used ? `; ${cpuLine(used)}` : ''}`);
            rmSync(targetPath, { force: true });
          };
          for (const step of i % 2 === 0 ? [runFiles, runChunks] : [runChunks, runFiles]) await step();
        }
      }
      console.log(`\n5. deploy, ${RUNS} runs each, alternating (peak RSS ${mib(peakRss())}):`);
      for (const { label, fromFiles, fromChunks } of variants) {
        if (label) console.log(`   ${label}:`);
        console.log(`   ${line('files layout from S3', fromFiles)}`);
        console.log(`   ${line('chunks from S3      ', fromChunks)}`);
        console.log(`   ratio chunks/files ${(median(fromChunks) / median(fromFiles)).toFixed(2)} (goal ≤ 1.10)`);
      }
      await dropDisk(b, filesDisk);
    }

    // 6. Ten stopped instances cloned from one stock disk, each with 64 MiB of its own writes.
    if (STEPS.has(6)) {
      await virshAway('destroy', '--domain', guest.name);
      if (firstDisk) await dropDisk(b, firstDisk);
      const stock = guestWithRandomData(STOCK_MIB, { start: false, diskMiB: 4096 });
      guests.push(stock);
      const disk = await freshDisk(b, 'bench-ten');
      const store = createChunkStore(disk, STORE_OPTIONS);
      let oneImage = 0;
      let others = 0;
      for (let i = 0; i < 10; i++) {
        const clone = createTestGuest({ start: false, diskMiB: 4096, writes: [], cdrom: false, agentChannel: false });
        guests.push(clone);
        copyFileSync(stock.primaryPath, clone.primaryPath);
        await writeRandom(clone.primaryPath, 1200 + i, 64);
        const captured = await captureChunks(b, store, clone.name, `images/clone-${i}.manifest.json`);
        if (i === 0) oneImage = captured.uploadedBytes;
        else others += captured.uploadedBytes;
        clone.remove();
        guests.pop();
      }
      const stats = await store.stats();
      console.log(
        `\n6. ten images of clones of a 4 GiB stock disk holding ${STOCK_MIB} MiB, with 64 MiB of own writes each: unique ${mib(stats.uniqueBytes)}, logical ${mib(stats.logicalBytes)}, ` +
          `one image ${mib(oneImage)}; unique/one ${(stats.uniqueBytes / oneImage).toFixed(2)} (goal ≤ 1.30); dedup ratio ${stats.dedupRatio}\n` +
          `   the other nine uploaded ${mib(others)} in all, their own writes (a 64 MiB write unaligned to the chunks touches 17); ` +
          `the goal needs one image of at least ${mib(others / 0.3)} for nine clones' own writes to stay within 30 %`,
      );
      await dropDisk(b, disk);
    }
    if (storageWaits.calls > 0)
      console.log(
        `\nbefore ${storageWaits.calls} timed runs the bench waited for an idle storage (quietStorage): ${s(storageWaits.totalMs)} in all, ` +
          `${s(storageWaits.maxMs)} at most${storageWaits.timedOut > 0 ? `; ${storageWaits.timedOut} waits gave up after 120 s` : ''}`,
      );
  } finally {
    await cleanup();
  }
}

await main();
