/**
 * Benchmark of the usage report (`buildUsageReport`) over 10^5 and 10^6 usage intervals.
 *
 * The intervals come from a UsageRepository-compatible source that generates each page on the
 * fly from the cursor, so no fixture array exists and memory measures the report itself. The
 * image count is fixed (10,000 images, so 10 and 100 intervals per image): a report that streams
 * pages keeps its heap flat between the two runs; one that held every interval would grow ~10×.
 *
 * Prints time per interval, the 10^6/10^5 time ratio (must be ≤ 11: linear) and peak RSS / heap
 * used (sampled every page and every 10 ms). Exit code 1 when the ratio exceeds 11.
 *
 * Run: `node --import tsx scripts/bench/billing.ts`
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { buildUsageReport, type UsageReportSources } from '../../src/services/usage';
import type { Image } from '../../src/model/image';
import type { UsageInterval } from '../../src/model/usage-interval';
import type { ListPage, UsageFilter } from '../../src/ports/repositories';

const GIB = 2 ** 30;
const IMAGES = 10_000;
const PAGE_SIZE = 1000;
const PERIOD = { from: new Date(Date.UTC(2026, 0, 1)), to: new Date(Date.UTC(2026, 3, 1)) };

/** One benchmark run's figures. */
export interface BillingBenchRun {
  intervals: number;
  images: number;
  lines: number;
  total: string;
  ms: number;
  microsecondsPerInterval: number;
  peakRssMiB: number;
  peakHeapUsedMiB: number;
  heapGrowthMiB: number;
}

/** The benchmark's result. */
export interface BillingBenchResult {
  runs: BillingBenchRun[];
  /** Total time at 10^6 divided by total time at 10^5. */
  ratio: number;
  /** Whether the ratio is ≤ 11 (linear). */
  linear: boolean;
}

function loadGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = vm.runInNewContext('gc');
  return typeof gc === 'function' ? () => (gc as () => void)() : () => undefined;
}

class MemorySampler {
  peakRss = 0;
  peakHeapUsed = 0;
  sample(): void {
    const usage = process.memoryUsage();
    if (usage.rss > this.peakRss) this.peakRss = usage.rss;
    if (usage.heapUsed > this.peakHeapUsed) this.peakHeapUsed = usage.heapUsed;
  }
}

/**
 * A read-only UsageRepository stand-in whose pages are computed from the cursor: interval `i`
 * belongs to image `i % images` and is that image's `floor(i / images)`-th slot of the period.
 * Sizes and rates change over an image's life (≤ 4 (size, rate) pairs per image); every 7th
 * image's last interval is still open.
 */
function lazyUsageSource(total: number, images: number, sampler: MemorySampler): UsageReportSources['usage'] {
  const slotsPerImage = Math.ceil(total / images);
  const slotMs = Math.floor((PERIOD.to.getTime() - PERIOD.from.getTime()) / slotsPerImage);
  const intervalAt = (i: number): UsageInterval => {
    const image = i % images;
    const slot = Math.floor(i / images);
    const from = PERIOD.from.getTime() + slot * slotMs;
    const last = slot === slotsPerImage - 1;
    return {
      id: `u${String(i).padStart(8, '0')}`,
      imageId: `img${image}`,
      accountId: `acc${image % 500}`,
      locationId: `loc${image % 3}`,
      sizeBytes: (1 + (image % 100)) * GIB + (slot % 3 === 2 ? GIB : 0),
      rate: slot < slotsPerImage / 2 ? '0.05' : '0.0625',
      from: new Date(from),
      to: last && image % 7 === 0 ? null : new Date(from + Math.floor(slotMs * 0.9)),
    };
  };
  return {
    async list(_filter?: UsageFilter, page: ListPage = {}) {
      sampler.sample();
      // Yield to the event loop like a real database round trip (and let the timer sample).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const start = page.cursor ? Number(page.cursor) : 0;
      const end = Math.min(start + (page.limit ?? 50), total);
      const items: UsageInterval[] = [];
      for (let i = start; i < end; i += 1) items.push(intervalAt(i));
      return { items, nextCursor: end < total ? String(end) : null };
    },
  };
}

function imageSource(): UsageReportSources['images'] {
  const template: Image = {
    id: '',
    kind: 'custom',
    name: '',
    description: '',
    osType: 'linux',
    cloudInit: false,
    mediaGroupId: null,
    accountId: null,
    sourceInstanceId: null,
    sourceInstanceName: null,
    locationId: null,
    storageId: 'storage',
    hypervisorId: null,
    fileKey: 'key',
    format: 'qcow2',
    sizeBytes: GIB,
    virtualSizeBytes: GIB,
    sha256: null,
    consistency: 'cold',
    status: 'available',
    statusReason: null,
    createdAt: PERIOD.from,
    updatedAt: PERIOD.from,
    availableAt: PERIOD.from,
    deletedAt: null,
  };
  return { get: async (id: string) => ({ ...template, id, name: `image ${id}` }) };
}

async function runOnce(intervals: number, images: number, gc: () => void): Promise<BillingBenchRun> {
  gc();
  const baselineHeap = process.memoryUsage().heapUsed;
  const sampler = new MemorySampler();
  sampler.sample();
  const timer = setInterval(() => sampler.sample(), 10);
  const started = performance.now();
  const report = await buildUsageReport(
    { usage: lazyUsageSource(intervals, images, sampler), images: imageSource() },
    { period: PERIOD, currency: 'USD', pageSize: PAGE_SIZE },
  );
  const ms = performance.now() - started;
  sampler.sample();
  clearInterval(timer);
  const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  return {
    intervals,
    images,
    lines: report.images.lines.length,
    total: report.images.total,
    ms: Math.round(ms),
    microsecondsPerInterval: Math.round((ms * 1000 * 100) / intervals) / 100,
    peakRssMiB: mib(sampler.peakRss),
    peakHeapUsedMiB: mib(sampler.peakHeapUsed),
    heapGrowthMiB: mib(sampler.peakHeapUsed - baselineHeap),
  };
}

/** Runs the benchmark: a warm-up, then 10^5 and 10^6 intervals over 10,000 images. */
export async function runBillingBench(log: (line: string) => void = console.log): Promise<BillingBenchResult> {
  const gc = loadGc();
  await runOnce(20_000, 2_000, gc); // warm-up (JIT)
  const runs: BillingBenchRun[] = [];
  for (const intervals of [100_000, 1_000_000]) {
    const run = await runOnce(intervals, IMAGES, gc);
    runs.push(run);
    log(
      `billing report: ${run.intervals.toLocaleString('en-US')} intervals, ${run.images.toLocaleString('en-US')} images → ${run.lines} lines, total ${run.total} USD; ` +
        `${run.ms} ms (${run.microsecondsPerInterval} µs/interval); peak RSS ${run.peakRssMiB} MiB, peak heap used ${run.peakHeapUsedMiB} MiB (+${run.heapGrowthMiB} MiB over the baseline)`,
    );
  }
  const [small, large] = runs as [BillingBenchRun, BillingBenchRun];
  const ratio = Math.round((large.ms / small.ms) * 100) / 100;
  const linear = ratio <= 11;
  log(
    `billing report: time ratio 10^6/10^5 = ${ratio} (must be ≤ 11: ${linear ? 'linear, OK' : 'NOT LINEAR'}); heap growth ratio ${Math.round((large.heapGrowthMiB / Math.max(small.heapGrowthMiB, 0.1)) * 100) / 100}`,
  );
  return { runs, ratio, linear };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runBillingBench();
  if (!result.linear) process.exitCode = 1;
}
