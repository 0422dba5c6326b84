/**
 * Benchmark of URL imports into a local (path) storage through the libvirt driver on this machine:
 * a qcow2 of `--size-mib` MiB of random data served by a local HTTP server, imported with
 * `imports.importImage` (download, format detection, receive on the hypervisor, qemu-img info,
 * a clean qcow2 kept as received, otherwise converted with explicit formats; fsync; hash) against
 * the baseline `curl -o file && qemu-img convert -f qcow2 -O qcow2 file out` in the same run
 * (goal ≥ 0.9×), and against the same baseline made durable (`&& sync out`), since the SDK fsyncs
 * what it stores and the literal baseline leaves it in the page cache. Then the export: a GET of
 * the whole file through the signed panel route against `curl` of the same stored file from a plain
 * static file server (`fs.createReadStream` piped to the response, as `express.static` does), and,
 * for reference, from a server holding the bytes in memory.
 *
 * Run: node --import tsx scripts/bench/import.ts [--runs N] [--size-mib N]
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createImagesRouter } from '../../adapters/express';
import { createLocalExecutor } from '../../drivers/exec/local';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../drivers/storage';
import { createInstanceImages, type Actor } from '../../src';
import { serveBytes } from '../../test/support/image-server';
import { flag, median, MiB } from '../lib/bench';

const RUNS = Number(flag('runs') ?? 3);
const SIZE_MIB = Number(flag('size-mib') ?? 1024);
const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-bench' };

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
/** Runs a program without blocking the event loop (the servers it talks to live in this process). */
const exec = promisify(execFile);

async function main(): Promise<void> {
  const work = mkdtempSync('/var/tmp/ii-bench-import-');
  try {
    const raw = `${work}/random.raw`;
    const source = `${work}/source.qcow2`;
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, source]);
    rmSync(raw);
    const bytes = readFileSync(source);
    const server = await serveBytes(bytes, { host: '127.0.0.2' });
    const hypervisor = { id: 'hv', name: 'hv', locationId: 'loc', connection: { type: 'local' as const }, scratchDir: `${work}/scratch` };
    const executor = createLocalExecutor();
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
    const exportOurs: number[] = [];
    const exportPlain: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      let start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', `${work}/dl.qcow2`, server.url]);
      await exec('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', `${work}/dl.qcow2`, `${work}/out.qcow2`]);
      baseline.push(seconds(start));
      rmSync(`${work}/dl.qcow2`);
      rmSync(`${work}/out.qcow2`);
      start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', `${work}/dl.qcow2`, server.url]);
      await exec('qemu-img', ['convert', '-f', 'qcow2', '-O', 'qcow2', `${work}/dl.qcow2`, `${work}/out.qcow2`]);
      await exec('sync', [`${work}/out.qcow2`]);
      durable.push(seconds(start));
      rmSync(`${work}/dl.qcow2`);
      rmSync(`${work}/out.qcow2`);

      start = process.hrtime.bigint();
      const started = await ii.imports.importImage(ALICE, { url: server.url, name: `bench ${run}`, locationId: 'loc' });
      await ii.idle();
      ours.push(seconds(start));
      const image = await ii.images.getImage(ALICE, started.image.id);
      if (image.status !== 'available') throw new Error(`the import failed: ${JSON.stringify(image.statusReason)}`);

      const link = await ii.exports.createDownloadLink(ALICE, image.id);
      if (link.kind !== 'signed') throw new Error('expected a signed link');
      const url = `${panelUrl}/api/downloads/images/${image.id}?account=${link.accountId}&expires=${link.expires}&signature=${link.signature}`;
      start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', '/dev/null', url]);
      exportOurs.push(seconds(start));
      start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', '/dev/null', server.url]);
      exportPlain.push(seconds(start));
      start = process.hrtime.bigint();
      await exec('curl', ['-s', '-o', '/dev/null', `${filesUrl}/${(await ii.repositories.images.get(image.id))?.fileKey ?? ''}`]);
      exportFile.push(seconds(start));
      await ii.images.deleteImage(ALICE, image.id);
      await ii.idle();
    }
    const mib = bytes.length / MiB;
    const line = (name: string, values: number[]) =>
      `${name}: median ${median(values).toFixed(2)} s (${(mib / median(values)).toFixed(0)} MiB/s)`;
    console.log(`qcow2 of ${mib.toFixed(0)} MiB, ${RUNS} runs`);
    console.log(line('curl -o + qemu-img convert', baseline));
    console.log(line('imports.importImage (path storage)', ours));
    console.log(line('curl -o + qemu-img convert + sync', durable));
    console.log(
      `import ratio: ${(median(baseline) / median(ours)).toFixed(2)}× the page-cache baseline, ${(median(durable) / median(ours)).toFixed(2)}× the durable one (goal ≥ 0.9×)`,
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
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
