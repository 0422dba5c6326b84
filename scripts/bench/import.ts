/**
 * Benchmark of URL imports into a local (path) storage through the libvirt driver on this machine:
 * a qcow2 of `--size-mib` MiB of random data served by a local HTTP server, imported with
 * `imports.importImage` (download, format detection, receive on the hypervisor, qemu-img info,
 * a clean qcow2 kept as received, otherwise converted with explicit formats; fsync; hash) against
 * the baseline `curl -o file && qemu-img convert -f qcow2 -O qcow2 file out` in the same run
 * (goal ≥ 0.9×), and against the same baseline made durable (`&& sync out`), since the SDK fsyncs
 * what it stores and the literal baseline leaves it in the page cache. Next to them, the same import
 * with `imports.fetchOnHypervisor` (curl on the hypervisor downloads, hashes and the driver keeps the
 * clean qcow2: no byte crosses the panel). Then the export: a GET of
 * the whole file through the signed panel route against `curl` of the same stored file from a plain
 * static file server (`fs.createReadStream` piped to the response, as `express.static` does), and,
 * for reference, from a server holding the bytes in memory.
 *
 * The cases alternate (their order rotates each round); each import also prints its per-command
 * timeline (every command the SDK ran on the hypervisor, start–end in s from the import's start,
 * medians over the runs), so that a note can say where the time goes.
 *
 * The image server runs in a node process of its own (`--server in-process`: in this one, sharing
 * the SDK's event loop, which slows the import and not curl).
 *
 * Run: node --import tsx scripts/bench/import.ts [--runs N] [--size-mib N] [--server in-process] [--settle S]
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createImagesRouter } from '../../adapters/express';
import { createLocalExecutor } from '../../drivers/exec/local';
import type { Executor } from '../../src/ports/executor';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../drivers/storage';
import { createInstanceImages, type Actor } from '../../src';
import { serveBytes } from '../../test/support/image-server';
import { flag, median, MiB } from '../lib/bench';

const RUNS = Number(flag('runs') ?? 3);
/**
 * `--settle S`: seconds of idle before each case (after its `sync`). On a VM whose balloon reports
 * free pages to its host (virtio-balloon free page reporting, as on this project's test machine),
 * memory freed more than ~2 s ago is handed back to the host and faulted in again when reused: a
 * case that runs right after another one freed its 2 GiB of page cache writes its own into backed
 * pages, one that runs later pays a host fault per page (`dd` of 1 GiB into the page cache: 0.55–0.6 s
 * right after a free, 1.0 s after 6 s idle; a baseline's `qemu-img convert` 0.35 s or 2.7 s). That,
 * not writeback, made the durable baseline measure faster than the page-cache one: it always ran
 * right after it. With a settle, every case starts with its memory handed back (default 0: as
 * before, back to back; the phases printed under the baselines show which state each one met).
 * The export's GETs settle too.
 */
const SETTLE_S = Number(flag('settle') ?? 0);
const SIZE_MIB = Number(flag('size-mib') ?? 1024);
/** `--server in-process`: the image server shares this process's event loop with the SDK (as before). */
const IN_PROCESS_SERVER = flag('server') === 'in-process';
const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-bench' };

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
/** Runs a program without blocking the event loop (the servers it talks to live in this process). */
const exec = promisify(execFile);

/**
 * Serves `file` (read into memory) from a node process of its own, as a real image server is: one
 * in this process would share its event loop with the import it serves, and slow both.
 */
async function serveFromChild(file: string): Promise<{ url: string; close(): Promise<void> }> {
  const code = `
    const bytes = require('node:fs').readFileSync(process.argv[1]);
    const server = require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-length': String(bytes.length), 'content-type': 'application/octet-stream' });
      res.end(bytes);
    });
    server.listen(0, '127.0.0.2', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', code, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (data: Buffer) => resolve(data.toString().trim()));
    child.once('exit', (status) => reject(new Error(`the image server exited (${status})`)));
  });
  return {
    url: `http://127.0.0.2:${port}/image`,
    close: () => new Promise<void>((resolve) => (child.kill(), child.once('close', () => resolve()))),
  };
}

/** A short name of a command the SDK ran, for the timeline. */
function commandLabel(argv: readonly string[]): string {
  const text = argv.join(' ');
  const known: [RegExp, string][] = [
    [/exec dd /, 'receive (dd)'],
    [/curl -sS -K - --proto/, 'fetch (curl | dd, then hash)'],
    [/\$2" -dc --/, 'prepare (hash or decompress)'],
    [/^head -c/, 'read head'],
    [/qemu-img check/, 'qemu-img check'],
    [/qemu-img info/, 'qemu-img info'],
    [/qemu-img convert/, 'qemu-img convert'],
    [/mv -f -T -- "\$2" "\$3"/, 'publish'],
  ];
  for (const [pattern, label] of known) if (pattern.test(text)) return label;
  if (argv[0] === 'sh') {
    // The last line of a script says what it does (the first ones define helpers).
    const script = (argv[2] ?? '').trim().split('\n').at(-1) ?? '';
    return `sh: ${script.trim().slice(0, 40)}`;
  }
  return argv.slice(0, 2).join(' ');
}

type Stages = Map<string, { start: number; end: number }>;

/** An executor that records when each command ran, relative to `t0()`; repeated labels get a #n suffix. */
function tracing(inner: Executor, t0: () => number, stages: () => Stages): Executor {
  const record = (argv: readonly string[], start: number) => {
    const map = stages();
    const base = commandLabel(argv);
    let label = base;
    for (let n = 2; map.has(label); n++) label = `${base} #${n}`;
    map.set(label, { start: start - t0(), end: performance.now() - t0() });
  };
  return {
    ...inner,
    async run(argv, options) {
      const start = performance.now();
      try {
        return await inner.run(argv, options);
      } finally {
        record(argv, start);
      }
    },
    async stream(argv, options) {
      const start = performance.now();
      const opened = await inner.stream(argv, options);
      void opened.done.finally(() => record(argv, start)).catch(() => undefined);
      return opened;
    },
  };
}

/** Median start–end of each stage over the runs, in the order the stages start. */
function timeline(runs: Stages[]): string {
  const names = [...new Set(runs.flatMap((s) => [...s.keys()]))];
  const rows = names.map((name) => {
    const of = runs.map((s) => s.get(name)).filter((x) => x !== undefined);
    return { name, start: median(of.map((x) => x.start)), end: median(of.map((x) => x.end)) };
  });
  rows.sort((a, b) => a.start - b.start);
  return rows.map((r) => `${r.name} ${(r.start / 1000).toFixed(2)}–${(r.end / 1000).toFixed(2)}`).join('\n  ');
}

const spread = (values: number[]) => `spread ${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)} s`;

async function main(): Promise<void> {
  const work = mkdtempSync('/var/tmp/ii-bench-import-');
  try {
    const raw = `${work}/random.raw`;
    const source = `${work}/source.qcow2`;
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, source]);
    rmSync(raw);
    const bytes = readFileSync(source);
    const server = IN_PROCESS_SERVER ? await serveBytes(bytes, { host: '127.0.0.2' }) : await serveFromChild(source);
    const hypervisor = { id: 'hv', name: 'hv', locationId: 'loc', connection: { type: 'local' as const }, scratchDir: `${work}/scratch` };
    let importStart = 0;
    let stages: Stages = new Map();
    const traces: Stages[] = [];
    const fetchTraces: Stages[] = [];
    const executor = tracing(
      createLocalExecutor(),
      () => importStart,
      () => stages,
    );
    const ii = createInstanceImages({
      hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === 'hv' ? hypervisor : null) },
      storageDrivers: builtinStorageDrivers,
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
      imports: { allowNetworks: ['127.0.0.2/32'] },
      exports: { secret: 'bench-export-secret-0123456789abcdefghij' },
    });
    await ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
    const storage = await ii.storages.createStorage(ADMIN, { name: 'local', driver: 'local', config: { path: `${work}/storage` } });
    await ii.storages.bindHypervisor(ADMIN, storage.id, 'hv');
    // The same, the hypervisor fetching the URL itself.
    const iiFetch = createInstanceImages({
      hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === 'hv' ? hypervisor : null) },
      storageDrivers: builtinStorageDrivers,
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
      imports: { allowNetworks: ['127.0.0.2/32'], fetchOnHypervisor: true },
    });
    await iiFetch.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
    const fetchStorage = await iiFetch.storages.createStorage(ADMIN, {
      name: 'local',
      driver: 'local',
      config: { path: `${work}/storage-fetch` },
    });
    await iiFetch.storages.bindHypervisor(ADMIN, fetchStorage.id, 'hv');
    const app = express();
    app.use('/api', createImagesRouter({ service: ii, resolveActor: () => ALICE }));
    const panel = createServer(app);
    await new Promise<void>((resolve) => panel.listen(0, '127.0.0.1', resolve));
    const panelUrl = `http://127.0.0.1:${(panel.address() as AddressInfo).port}`;

    // A plain static file server of the storage directory: the export's like-for-like baseline.
    const files = createServer((req, res) => {
      const path = `${work}/storage/${decodeURIComponent((req.url ?? '/').slice(1))}`;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(statSync(path).size) });
      createReadStream(path).pipe(res);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

    const baseline: number[] = [];
    const durable: number[] = [];
    const exportFile: number[] = [];
    const ours: number[] = [];
    const fetched: number[] = [];
    const exportOurs: number[] = [];
    const exportPlain: number[] = [];
    const baselinePhases: string[] = [];
    const baselineCase = async (durably: boolean, after: string) => {
      const start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', `${work}/dl.qcow2`, server.url]);
      const fetchedAt = seconds(start);
      await exec('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', `${work}/dl.qcow2`, `${work}/out.qcow2`]);
      const convertedAt = seconds(start);
      if (durably) await exec('sync', [`${work}/out.qcow2`]);
      const total = seconds(start);
      (durably ? durable : baseline).push(total);
      baselinePhases.push(
        `${durably ? 'durable   ' : 'page-cache'} after ${after.padEnd(10)}: curl ${fetchedAt.toFixed(2)}, convert ${(convertedAt - fetchedAt).toFixed(2)}, sync ${(total - convertedAt).toFixed(2)} = ${total.toFixed(2)} s`,
      );
      rmSync(`${work}/dl.qcow2`);
      rmSync(`${work}/out.qcow2`);
    };
    const importCase = async (run: number) => {
      stages = new Map();
      importStart = performance.now();
      const start = process.hrtime.bigint();
      const started = await ii.imports.importImage(ALICE, { url: server.url, name: `bench ${run}`, locationId: 'loc' });
      await ii.idle();
      ours.push(seconds(start));
      stages.set('(done)', { start: performance.now() - importStart, end: performance.now() - importStart });
      traces.push(stages);
      const image = await ii.images.getImage(ALICE, started.image.id);
      if (image.status !== 'available') throw new Error(`the import failed: ${JSON.stringify(image.statusReason)}`);

      const link = await ii.exports.createDownloadLink(ALICE, image.id);
      if (link.kind !== 'signed') throw new Error('expected a signed link');
      const url = `${panelUrl}/api/downloads/images/${image.id}?account=${link.accountId}&expires=${link.expires}&signature=${link.signature}`;
      const fileUrl = `${filesUrl}/${(await ii.repositories.images.get(image.id))?.fileKey ?? ''}`;
      const get = async (from: string, into: number[]) => {
        if (SETTLE_S > 0) await new Promise((resolve) => setTimeout(resolve, 1000 * SETTLE_S));
        const begin = process.hrtime.bigint();
        await exec('curl', ['-s', '-o', '/dev/null', from]);
        into.push(seconds(begin));
      };
      // The GETs alternate too (the first reader of the new file may find it colder than the next).
      const gets = [() => get(url, exportOurs), () => get(fileUrl, exportFile), () => get(server.url, exportPlain)];
      for (let k = 0; k < gets.length; k++) await gets[(k + run) % gets.length]!();
      await ii.images.deleteImage(ALICE, image.id);
      await ii.idle();
    };
    const fetchCase = async (run: number) => {
      stages = new Map();
      importStart = performance.now();
      const start = process.hrtime.bigint();
      const started = await iiFetch.imports.importImage(ALICE, { url: server.url, name: `bench fetch ${run}`, locationId: 'loc' });
      await iiFetch.idle();
      fetched.push(seconds(start));
      stages.set('(done)', { start: performance.now() - importStart, end: performance.now() - importStart });
      fetchTraces.push(stages);
      const image = await iiFetch.images.getImage(ALICE, started.image.id);
      if (image.status !== 'available') throw new Error(`the fetch import failed: ${JSON.stringify(image.statusReason)}`);
      await iiFetch.images.deleteImage(ALICE, image.id);
      await iiFetch.idle();
    };
    let previous = '(start)';
    for (let run = 0; run < RUNS; run++) {
      // Alternate the cases, and rotate their order each round, so drift in the machine's load spreads evenly.
      const names = ['page-cache', 'durable', 'import', 'fetch'];
      const cases = [() => baselineCase(false, previous), () => baselineCase(true, previous), () => importCase(run), () => fetchCase(run)];
      // Each case starts with no dirty pages: the page-cache baseline leaves 2 GiB of them, whose
      // writeback the next case would otherwise pay for (its durable twin once measured 1.8 s against its 4.3 s).
      for (let k = 0; k < cases.length; k++) {
        await exec('sync', []);
        if (SETTLE_S > 0) await new Promise((resolve) => setTimeout(resolve, 1000 * SETTLE_S));
        await cases[(k + run) % cases.length]!();
        previous = names[(k + run) % cases.length]!;
      }
    }
    const mib = bytes.length / MiB;
    const line = (name: string, values: number[]) =>
      `${name}: median ${median(values).toFixed(2)} s (${(mib / median(values)).toFixed(0)} MiB/s), ${spread(values)}, runs ${values.map((v) => v.toFixed(2)).join(' ')}`;
    console.log(`qcow2 of ${mib.toFixed(0)} MiB, ${RUNS} runs, alternating`);
    console.log(line('curl -o + qemu-img convert', baseline));
    console.log(line('imports.importImage (path storage)', ours));
    console.log(`  commands on the hypervisor (median start–end in s from the import's start):\n  ${timeline(traces)}`);
    console.log(line('curl -o + qemu-img convert + sync', durable));
    console.log(`  the baselines' phases, in the order they ran:\n  ${baselinePhases.join('\n  ')}`);
    console.log(
      `import ratio: ${(median(baseline) / median(ours)).toFixed(2)}× the page-cache baseline, ${(median(durable) / median(ours)).toFixed(2)}× the durable one (goal ≥ 0.9×)`,
    );
    console.log(line('imports.importImage, fetchOnHypervisor (path storage)', fetched));
    console.log(`  commands on the hypervisor (median start–end in s from the import's start):\n  ${timeline(fetchTraces)}`);
    console.log(
      `fetch-on-hypervisor ratio: ${(median(baseline) / median(fetched)).toFixed(2)}× the page-cache baseline, ${(median(durable) / median(fetched)).toFixed(2)}× the durable one (goal ≥ 0.9×)`,
    );
    console.log(line('plain GET (curl, static file server)', exportFile));
    console.log(line('plain GET (curl, bytes in memory)', exportPlain));
    console.log(line('signed export route (curl)', exportOurs));
    console.log(
      `export ratio: ${(median(exportFile) / median(exportOurs)).toFixed(2)}× the static file server (goal ≥ 0.9×), ${(median(exportPlain) / median(exportOurs)).toFixed(2)}× the in-memory one`,
    );
    await new Promise<void>((resolve) => files.close(() => resolve()));
    await new Promise<void>((resolve) => panel.close(() => resolve()));
    await server.close();
    await ii.close();
    await iiFetch.close();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
