/**
 * Benchmark of the S3 storage driver against the real radosgw (scripts/start-services.sh).
 *
 * 1. Throughput: put of a 1 GiB file through the driver (a known size: its own multipart loop over
 *    a fixed pool of reused part buffers, each part one plain keep-alive request signed by the
 *    client's signer) vs a plain lib-storage Upload of the same file with the
 *    same part size and concurrency, alternating, in the same run (goal ≥ 0.9×); and the driver's
 *    put without a size (parts that grow, of the base size for the first 1,000).
 *    Also shown: the same put through the core wrapper (sha256 + verify).
 * 2. Peak RSS streaming 1 GiB and 4 GiB through put and through get, each in a fresh child process
 *    (peak RSS never goes down within a process); goal < 150 MB and 4 GiB within 10 % of 1 GiB.
 *    Each line also shows the peak V8 heap and the peak Buffer memory of that child. Each case runs
 *    `--rss-runs` times (default 3): a single peak depends on when V8 collects; goals use medians.
 *    `--put-only` measures only the peak RSS of the driver's put (no throughput, no baselines, no get).
 * Every object is deleted and radosgw's garbage collection runs at the end.
 *
 * Run: node --import tsx scripts/bench/storage-s3.ts [--runs N] [--rss-runs N] [--rss-only] [--no-rss] [--put-only] [--cap-young-gen] [--queue N] [--part-mib N]
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { CHILD_NODE_FLAGS, flag, generated, GiB, MiB } from '../lib/bench';
import { promisify } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { s3StorageDriver } from '../../drivers/storage/s3';
import { s3PartSize, S3_DEFAULT_PART_SIZE, S3_DEFAULT_QUEUE_SIZE } from '../../drivers/storage/s3/options';
import { wrapStorageDriver } from '../../src/storage/disk';
import {
  adminClient,
  createBucket,
  deleteBucket,
  driverOptions,
  loadS3TestEnv,
  SERVICES_DIR,
  type S3TestEnv,
} from '../../test/integration/storage-s3/s3-env';

const execFileAsync = promisify(execFile);
const self = fileURLToPath(import.meta.url);

/** Upload tuning under test: `--queue N` and `--part-mib N` (defaults: the driver's). */
const QUEUE_SIZE = Number(flag('queue') ?? S3_DEFAULT_QUEUE_SIZE);
const BASE_PART_SIZE = Number(flag('part-mib') ?? S3_DEFAULT_PART_SIZE / (1024 * 1024)) * 1024 * 1024;
const tuning = { queueSize: QUEUE_SIZE, partSizeBytes: BASE_PART_SIZE };
/** `--rss-runs N`: fresh processes per peak-RSS case (default 3). */
const RSS_RUNS = Number(flag('rss-runs') ?? 3);

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

async function loadEnv(): Promise<S3TestEnv> {
  const loaded = await loadS3TestEnv();
  if (loaded.env === null) throw new Error(loaded.missing);
  return loaded.env;
}

/** Child mode: stream `size` bytes through put or get once and print the peak RSS. */
async function child(mode: string, bucket: string, key: string, size: number): Promise<void> {
  const env = await loadEnv();
  const driver = s3StorageDriver.create(driverOptions(env, bucket, tuning), {});
  // Where the memory is: the V8 heap (grows with the allocation rate) vs Buffers (the part buffers).
  const peak = { heapTotal: 0, arrayBuffers: 0 };
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peak.heapTotal = Math.max(peak.heapTotal, usage.heapTotal);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, usage.arrayBuffers);
  }, 20);
  const started = performance.now();
  if (mode === 'put') {
    await driver.put(key, generated(size), { size });
  } else if (mode === 'baseline-put') {
    const client = adminClient(env);
    await new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: generated(size) },
      partSize: s3PartSize(size, BASE_PART_SIZE),
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    }).done();
    client.destroy();
  } else if (mode === 'baseline-get') {
    const client = adminClient(env);
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    let bytes = 0;
    for await (const chunk of response.Body as Readable) bytes += (chunk as Buffer).length;
    if (bytes !== size) throw new Error(`read ${bytes} bytes, expected ${size}`);
    client.destroy();
  } else if (mode === 'get') {
    let bytes = 0;
    for await (const chunk of await driver.get(key)) bytes += (chunk as Buffer).length;
    if (bytes !== size) throw new Error(`read ${bytes} bytes, expected ${size}`);
  } else {
    await driver.stat(key);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  await driver.close?.();
  process.stdout.write(
    `${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, seconds, peakHeapTotal: peak.heapTotal, peakArrayBuffers: peak.arrayBuffers })}\n`,
  );
}

/**
 * The command that runs this script as a child: a plain-node bundle (as a host application would run
 * the built package) when esbuild is available, else through tsx (which adds ~30 MB of RSS).
 */
async function childCommand(dir: string): Promise<{ args: string[]; how: string }> {
  try {
    const esbuild = await import('esbuild');
    // Inside the repository so that node resolves the external AWS SDK from node_modules.
    const outfile = `${fileURLToPath(new URL('../../node_modules/.cache/', import.meta.url))}ii-bench-storage-s3-${process.pid}.mjs`;
    await esbuild.build({
      entryPoints: [self],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      external: ['@aws-sdk/*', 'esbuild'],
      logLevel: 'error',
    });
    bundles.push(outfile);
    return { args: [outfile], how: 'plain node, bundled with esbuild' };
  } catch (error) {
    console.log(`(esbuild unavailable: ${error instanceof Error ? error.message : String(error)}; children run through tsx in ${dir})`);
    return { args: ['--import', 'tsx', self], how: 'node --import tsx' };
  }
}

const bundles: string[] = [];
let childArgs: string[] = ['--import', 'tsx', self];

/** What a child measured. */
interface ChildResult {
  maxRssBytes: number;
  seconds: number;
  peakHeapTotal: number;
  peakArrayBuffers: number;
}

/** The peak RSS with its V8 heap and Buffer parts. */
function memory(result: ChildResult): string {
  return `${mib(result.maxRssBytes)} (V8 heap ≤ ${mib(result.peakHeapTotal)}, Buffers ≤ ${mib(result.peakArrayBuffers)})`;
}

async function runChild(mode: string, bucket: string, key: string, size: number): Promise<ChildResult> {
  const output = await new Promise<string>((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        ...CHILD_NODE_FLAGS,
        ...childArgs,
        '--child',
        mode,
        bucket,
        key,
        String(size),
        '--queue',
        String(QUEUE_SIZE),
        '--part-mib',
        String(BASE_PART_SIZE / MiB),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    proc.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`child ${mode} exited with ${code}`))));
  });
  const line = output.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as ChildResult;
}

async function gc(): Promise<void> {
  await execFileAsync('radosgw-admin', ['gc', 'process', '--include-all'], {
    env: { ...process.env, CEPH_CONF: `${SERVICES_DIR}/ceph/ceph.conf` },
    timeout: 600_000,
  });
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 2;
  const env = await loadEnv();
  const admin = adminClient(env);
  const bucket = `ii-bench-s3-${Date.now().toString(36)}`;
  const dir = mkdtempSync('/var/tmp/ii-bench-s3-');
  const file = `${dir}/1gib.bin`;
  await createBucket(admin, bucket);
  try {
    console.log(`S3 driver benchmark against ${env.endpoint} (bucket ${bucket}), ${runs} alternating runs each`);
    await pipeline(
      Readable.from(
        (async function* () {
          for (let i = 0; i < 1024; i += 1) yield randomBytes(MiB);
        })(),
      ),
      createWriteStream(file),
    );

    // 1. Throughput: same file, same part size and queue size.
    const partSize = s3PartSize(GiB, BASE_PART_SIZE);
    const driver = s3StorageDriver.create(driverOptions(env, bucket, tuning), {});
    const disk = wrapStorageDriver(s3StorageDriver.create(driverOptions(env, bucket, tuning), {}));
    const times = { baseline: [] as number[], driver: [] as number[], unknown: [] as number[], wrapped: [] as number[] };
    const time = async (run: () => Promise<unknown>): Promise<number> => {
      const started = performance.now();
      await run();
      return (performance.now() - started) / 1000;
    };
    for (let run = 0; run < runs && !process.argv.includes('--rss-only') && !process.argv.includes('--put-only'); run += 1) {
      times.baseline.push(
        await time(() =>
          new Upload({
            client: admin,
            params: { Bucket: bucket, Key: 'bench/baseline.bin', Body: createReadStream(file) },
            partSize,
            queueSize: QUEUE_SIZE,
            leavePartsOnError: false,
          }).done(),
        ),
      );
      times.driver.push(await time(() => driver.put('bench/driver.bin', createReadStream(file), { size: GiB })));
      // No size: the growing-parts loop (its first 1,000 parts are of the base size), which replaced lib-storage's Upload.
      times.unknown.push(await time(() => driver.put('bench/unknown.bin', createReadStream(file))));
      times.wrapped.push(await time(() => disk.put('bench/wrapped.bin', createReadStream(file), { size: GiB })));
      await gc();
    }
    const median = (values: number[]): number => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    const rate = (seconds: number) => `${(1024 / seconds).toFixed(0)} MiB/s`;
    if (times.baseline.length > 0) {
      const baseline = median(times.baseline);
      const direct = median(times.driver);
      const unknown = median(times.unknown);
      const wrapped = median(times.wrapped);
      console.log(`\nput 1 GiB file (part size ${mib(partSize)}, queue ${QUEUE_SIZE}), median seconds:`);
      console.log(
        `  plain lib-storage Upload   ${baseline.toFixed(2)} s  ${rate(baseline)}   runs ${times.baseline.map((t) => t.toFixed(2)).join(', ')}`,
      );
      console.log(
        `  s3 driver put              ${direct.toFixed(2)} s  ${rate(direct)}   runs ${times.driver.map((t) => t.toFixed(2)).join(', ')}`,
      );
      console.log(
        `  s3 driver put, size unknown ${unknown.toFixed(2)} s  ${rate(unknown)}   runs ${times.unknown.map((t) => t.toFixed(2)).join(', ')}`,
      );
      console.log(
        `  core wrapper (sha256+stat) ${wrapped.toFixed(2)} s  ${rate(wrapped)}   runs ${times.wrapped.map((t) => t.toFixed(2)).join(', ')}`,
      );
      console.log(`  ratio driver/baseline throughput: ${(baseline / direct).toFixed(3)}x (goal >= 0.9)`);
      console.log(`  ratio driver (size unknown)/baseline throughput: ${(baseline / unknown).toFixed(3)}x`);
      console.log(`  ratio wrapper/baseline throughput: ${(baseline / wrapped).toFixed(3)}x`);
    }
    await driver.close?.();
    await disk.close();
    for (const key of ['bench/baseline.bin', 'bench/driver.bin', 'bench/unknown.bin', 'bench/wrapped.bin'])
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    await gc();

    // 2. Peak RSS, each measurement in a fresh process.
    if (process.argv.includes('--no-rss')) return;
    const command = await childCommand(dir);
    childArgs = command.args;
    const idle = await runChild('idle', bucket, 'none', 0);
    console.log(
      `\npeak RSS (a fresh process each, ${command.how}${CHILD_NODE_FLAGS.length > 0 ? ` with ${CHILD_NODE_FLAGS.join(' ')}` : ', V8 defaults'}; idle with the SDK loaded after one HeadObject: ${mib(idle.maxRssBytes)})`,
    );
    // The peak of one process depends on when V8 collects: Buffers of socket reads and parts die
    // young but are freed only by a GC, which V8 starts once about 64 MB more of them exist than
    // after the last one. So each case runs RSS_RUNS times; goals are judged on the medians.
    const rss: Record<string, number[]> = {};
    const putOnly = process.argv.includes('--put-only');
    const rssRuns = Math.max(1, RSS_RUNS);
    const measure = async (
      name: string,
      mode: string,
      key: string,
      size: number,
      label: string,
      show: (r: ChildResult) => string,
    ): Promise<void> => {
      const results: ChildResult[] = [];
      for (let i = 0; i < rssRuns; i++) {
        results.push(await runChild(mode, bucket, key, size));
        // An overwritten object's old data waits for radosgw's garbage collection: free it now, or
        // repeated 4 GiB puts fill the test cluster's 10 GiB OSD (writes then hang).
        if (mode.endsWith('put')) await gc();
      }
      rss[`${name} ${label}`] = results.map((r) => r.maxRssBytes);
      const middle = [...results].sort((a, b) => a.maxRssBytes - b.maxRssBytes)[Math.floor(results.length / 2)]!;
      console.log(
        `  ${name} ${label}: median ${show(middle)}${rssRuns > 1 ? `; runs ${results.map((r) => mib(r.maxRssBytes)).join(', ')}` : ''}`,
      );
    };
    const withRate = (size: number) => (r: ChildResult) => `${memory(r)} (${(size / MiB / r.seconds).toFixed(0)} MiB/s)`;
    for (const [label, size] of [
      ['1 GiB', GiB],
      ['4 GiB', 4 * GiB],
    ] as const) {
      const key = `bench/rss-${size}.bin`;
      if (!putOnly) await measure('plain lib-storage Upload (same part size and queue)', 'baseline-put', key, size, label, withRate(size));
      await measure('put', 'put', key, size, label, withRate(size));
      if (!putOnly) {
        await measure('plain SDK GetObject', 'baseline-get', key, size, label, withRate(size));
        await measure('get', 'get', key, size, label, withRate(size));
      }
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      await gc();
    }
    for (const op of putOnly ? ['put'] : ['put', 'get', 'plain SDK GetObject']) {
      const small = median(rss[`${op} 1 GiB`]!);
      const large = median(rss[`${op} 4 GiB`]!);
      const highest = Math.max(...rss[`${op} 1 GiB`]!, ...rss[`${op} 4 GiB`]!);
      console.log(
        `  ${op}: 4 GiB / 1 GiB median peak RSS = ${(large / small).toFixed(3)} (goal <= 1.10), medians ${mib(small)} / ${mib(large)} (goal < 150 MB = ${mib(150e6)}), highest single run ${mib(highest)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const bundle of bundles) rmSync(bundle, { force: true });
    await deleteBucket(admin, bucket);
    await gc();
    admin.destroy();
  }
}

const childIndex = process.argv.indexOf('--child');
if (childIndex > 0) {
  const [mode, bucket, key, size] = process.argv.slice(childIndex + 1);
  await child(mode ?? 'idle', bucket ?? '', key ?? '', Number(size));
} else {
  await main();
}
