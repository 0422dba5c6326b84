/**
 * URL imports into a local (path) storage through the real libvirt driver and qemu-img, from a
 * local HTTP server of our own: a real qcow2 (made with qemu-img) served gzipped with the
 * connection cut midway (resumed with Range), a VMDK from a server that ignores Range, a redirect
 * to 127.0.0.1 (refused), qcow2 images naming a backing file or an external data file (refused),
 * a checksum mismatch; the size limit held against a server that sends no Content-Length and never
 * ends (chunked); then the export of an imported image through the signed panel route with a Range
 * request, served both by the Express router and by the web-standard handler on node:http.
 * Nothing is left in the storage after a failure.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagesRouter } from '../../../adapters/express';
import { createImagesHandler, toNodeListener } from '../../../adapters/http';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type Actor, type ImportOptions, type InstanceImages } from '../../../src';
import { sh } from '../../support/guests';
import { serveBytes, type ImageServer } from '../../support/image-server';
import { freshScratchDir, imageInfo, imagesIdentical, libvirtSkipReason, localHypervisor } from '../libvirt/setup';

const skip = libvirtSkipReason();
const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function run(program: string, ...args: string[]): void {
  const result = sh(program, ...args);
  if (result.code !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${result.stderr}`);
}

/** Every file below `dir` (relative), recursively. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => `${entry.parentPath.slice(dir.length)}/${entry.name}`);
}

describe.skipIf(skip !== null)(`URL import into a path storage, and export${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let work: string;
  let storageDir: string;
  let scratch: string;
  let ii: InstanceImages;
  let source: string;
  const servers: ImageServer[] = [];
  const panels: { server: 'express' | 'handler'; http: Server; url: string }[] = [];

  const serve = async (bytes: Buffer, options: Parameters<typeof serveBytes>[1] = {}) => {
    const server = await serveBytes(bytes, { host: '127.0.0.2', ...options });
    servers.push(server);
    return server;
  };
  const importFrom = async (url: string, extra: { sha256?: string } = {}, into = ii) => {
    const started = await into.imports.importImage(ALICE, { url, name: 'imported disk', locationId: 'loc', ...extra });
    await into.idle();
    return { image: await into.repositories.images.get(started.image.id), task: await into.repositories.tasks.get(started.task.id) };
  };
  const instances: InstanceImages[] = [];
  /** An instance over the local libvirt driver with a local storage at `dir` (the import options added). */
  const instance = async (dir: string, scratchDir: string, imports: ImportOptions = {}) => {
    const hypervisor = localHypervisor(scratchDir);
    const executor = createLocalExecutor();
    const created = createInstanceImages({
      hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null) },
      storageDrivers: builtinStorageDrivers,
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
      imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 5000, ...imports },
      exports: { secret: 'integration-export-secret-0123456789abcdef' },
    });
    instances.push(created);
    await created.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true, pricePerGbMonth: '0.05' });
    const storage = await created.storages.createStorage(ADMIN, { name: 'local', driver: 'local', config: { path: dir } });
    await created.storages.bindHypervisor(ADMIN, storage.id, hypervisor.id);
    return created;
  };

  beforeAll(async () => {
    work = freshScratchDir('import-work');
    storageDir = freshScratchDir('import-storage');
    scratch = freshScratchDir('import-scratch');
    // A real qcow2 with recognizable data.
    source = `${work}/source.qcow2`;
    run('qemu-img', 'create', '-q', '-f', 'qcow2', source, '64M');
    run('qemu-io', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 20M 3M', source);
    ii = await instance(storageDir, scratch);
    const app = express();
    app.use('/api', createImagesRouter({ service: ii, resolveActor: () => ALICE }));
    const handler = createImagesHandler({ service: ii, resolveActor: () => ALICE, basePath: '/api' });
    for (const [server, listener] of [
      ['express', app],
      ['handler', toNodeListener(handler)],
    ] as const) {
      const http = createServer(listener);
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      panels.push({ server, http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` });
    }
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    for (const panel of panels) await new Promise<void>((resolve) => panel.http.close(() => resolve()));
    for (const each of instances) await each.close();
    for (const dir of [work, storageDir, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('imports a gzipped qcow2 whose connection drops midway, resuming with Range, then exports it through the signed route with a Range', async () => {
    const gz = gzipSync(readFileSync(source));
    const cut = Math.floor(gz.length / 2);
    const server = await serve(gz, { cutAfter: cut });
    const { image, task } = await importFrom(server.url, { sha256: sha256(readFileSync(source)) });
    expect(task).toMatchObject({ status: 'completed', progress: { percent: 100 } });
    expect(image).toMatchObject({ status: 'available', format: 'qcow2', virtualSizeBytes: 64 * 1024 * 1024 });
    expect(server.requests.map((r) => [r.status, r.range, r.ifRange])).toEqual([
      [200, null, null],
      [206, `bytes=${cut}-`, '"v1"'],
    ]);
    const stored = `${storageDir}/${image?.fileKey}`;
    expect(imageInfo(stored)).toMatchObject({ format: 'qcow2', backing: null });
    expect(imagesIdentical(source, stored)).toBe(true);
    expect(sha256(readFileSync(stored))).toBe(image?.sha256);
    expect(filesBelow(storageDir)).toEqual([`/${image?.fileKey}`]);

    // Export: the link (201), then the file through the signed route with a Range, and whole; over both servers.
    for (const { url: panelUrl } of panels) await exportThrough(panelUrl, image, stored);
  });

  it('stores a clean qcow2 as it was received (no conversion), and converts one with an internal snapshot or leaked clusters', async () => {
    const clean = await importFrom((await serve(readFileSync(source))).url);
    expect(clean.task?.status).toBe('completed');
    const kept = `${storageDir}/${clean.image?.fileKey}`;
    expect(sha256(readFileSync(kept))).toBe(sha256(readFileSync(source)));
    expect(clean.image?.sha256).toBe(sha256(readFileSync(source)));

    const withSnapshot = `${work}/snapshot.qcow2`;
    run('cp', source, withSnapshot);
    run('qemu-img', 'snapshot', '-c', 'old', withSnapshot);
    run('qemu-io', '-c', 'write -P 0x11 0 1M', withSnapshot);
    const snapshotted = await importFrom((await serve(readFileSync(withSnapshot))).url);
    const converted = `${storageDir}/${snapshotted.image?.fileKey}`;
    expect(snapshotted.task?.status).toBe('completed');
    expect(sh('qemu-img', 'snapshot', '-l', converted).stdout.trim()).toBe('');
    expect(imagesIdentical(withSnapshot, converted)).toBe(true);
    expect(sha256(readFileSync(converted))).toBe(snapshotted.image?.sha256);

    // Leaked clusters: the first L1 entry wiped, so its L2 table and data clusters are referenced by nothing.
    const leaky = `${work}/leaky.qcow2`;
    run('cp', source, leaky);
    const header = readFileSync(leaky);
    const l1Offset = Number(header.readBigUInt64BE(40));
    run('dd', 'if=/dev/zero', `of=${leaky}`, 'bs=8', 'count=1', `seek=${l1Offset / 8}`, 'conv=notrunc', 'status=none');
    expect(sh('qemu-img', 'check', '-f', 'qcow2', leaky).code).toBe(3);
    const leaked = await importFrom((await serve(readFileSync(leaky))).url);
    expect(leaked.task?.status).toBe('completed');
    const cleaned = `${storageDir}/${leaked.image?.fileKey}`;
    expect(sh('qemu-img', 'check', '-f', 'qcow2', cleaned).code).toBe(0);
    expect(imagesIdentical(leaky, cleaned)).toBe(true);
    expect(filesBelow(storageDir)).toEqual(
      expect.arrayContaining([`/${clean.image?.fileKey}`, `/${snapshotted.image?.fileKey}`, `/${leaked.image?.fileKey}`]),
    );
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('never writes a received image through a link planted under its name next to the target', async () => {
    const victim = `${work}/victim`;
    run('sh', '-c', `printf keep > ${victim}`);
    const targetDir = freshScratchDir('import-planted');
    const target = `${targetDir}/disk.qcow2`;
    run('ln', '-s', victim, `${target}.received`);
    const driver = createLibvirtDriver(localHypervisor(scratch), createLocalExecutor());
    const { Readable } = await import('node:stream');
    const result = await driver.materialize({
      source: { kind: 'stream', stream: Readable.from([readFileSync(source)]) },
      sourceFormat: 'qcow2',
      targetPath: target,
      reuseSource: true,
    });
    expect(result.keptSource).toBe(true);
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(sha256(readFileSync(target))).toBe(sha256(readFileSync(source)));
    expect(readdirSync(targetDir)).toEqual(['disk.qcow2']);
    rmSync(targetDir, { recursive: true, force: true });
  });

  it('keeps a clean received qcow2 in four commands on the hypervisor, and refuses an existing target or a missing directory in one', async () => {
    const targetDir = freshScratchDir('import-commands');
    const target = `${targetDir}/disk.qcow2`;
    const local = createLocalExecutor();
    const commands: string[][] = [];
    const counting = {
      ...local,
      run: (argv: readonly string[], options?: Parameters<typeof local.run>[1]) => (commands.push([...argv]), local.run(argv, options)),
    };
    const driver = createLibvirtDriver(localHypervisor(scratch), counting);
    const { Readable } = await import('node:stream');
    const materialize = (path: string) =>
      driver.materialize({
        source: { kind: 'stream', stream: Readable.from([readFileSync(source)]) },
        sourceFormat: 'qcow2',
        targetPath: path,
        reuseSource: true,
      });
    const result = await materialize(target);
    expect(result.keptSource).toBe(true);
    expect(sha256(readFileSync(target))).toBe(sha256(readFileSync(source)));
    // The target's check, the receive, size + info + check, fsync + rename + directory fsync.
    expect(commands).toHaveLength(4);
    expect(commands.at(-1)?.join(' ')).toMatch(/sync -- "\$2"[\s\S]*mv -f -T/);

    commands.length = 0;
    await expect(materialize(target)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(materialize(`${targetDir}/missing/disk.qcow2`)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      fields: [{ path: 'targetPath' }],
    });
    expect(commands).toHaveLength(2);
    expect(readdirSync(targetDir)).toEqual(['disk.qcow2']);
    rmSync(targetDir, { recursive: true, force: true });
  });

  /** Asks `panelUrl` for a download link of `image`, then downloads it with a Range and whole. */
  async function exportThrough(panelUrl: string, image: { id: string; sha256: string | null } | null, stored: string): Promise<void> {
    const linkResponse = await fetch(`${panelUrl}/api/images/${image?.id}/download-link`, { method: 'POST' });
    expect(linkResponse.status).toBe(201);
    const link = (await linkResponse.json()) as { kind: string; url: string; sizeBytes: number; sha256: string };
    expect(link).toMatchObject({ kind: 'signed', sizeBytes: statSync(stored).size, sha256: image?.sha256 });
    const bytes = readFileSync(stored);
    const part = await fetch(`${panelUrl}${link.url}`, { headers: { range: 'bytes=100-1123' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1123/${bytes.length}`);
    expect(part.headers.get('content-length')).toBe('1024');
    expect(part.headers.get('repr-digest')).toBe(`sha-256=:${Buffer.from(image?.sha256 ?? '', 'hex').toString('base64')}:`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 1124))).toBe(true);
    const whole = await fetch(`${panelUrl}${link.url}`);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-disposition')).toBe('attachment; filename="imported-disk.qcow2"');
    expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(image?.sha256);
    // A forged signature, or the link of another image, is refused.
    const forged = await fetch(`${panelUrl}${link.url.replace(/signature=[^&]+/, 'signature=AAAA')}`);
    expect(forged.status).toBe(403);
    const beyond = await fetch(`${panelUrl}${link.url}`, { headers: { range: `bytes=${bytes.length}-` } });
    expect([beyond.status, beyond.headers.get('content-range')]).toEqual([416, `bytes */${bytes.length}`]);
  }

  it('converts a VMDK served by a server that ignores Range (read again from the start after a cut)', async () => {
    const vmdk = `${work}/source.vmdk`;
    run('qemu-img', 'convert', '-f', 'qcow2', '-O', 'vmdk', source, vmdk);
    const bytes = readFileSync(vmdk);
    const server = await serve(bytes, { cutAfter: Math.floor(bytes.length / 3), ignoreRange: true });
    const { image, task } = await importFrom(server.url);
    expect(task?.status).toBe('completed');
    expect(server.requests.map((r) => r.status)).toEqual([200, 200]);
    expect(imagesIdentical(source, `${storageDir}/${image?.fileKey}`)).toBe(true);
  });

  it('refuses a redirect to 127.0.0.1, qcow2 images naming a backing file or a data file, and a checksum mismatch, leaving nothing', async () => {
    const before = filesBelow(storageDir);
    const loopback = await serveBytes(readFileSync(source), { host: '127.0.0.1' });
    servers.push(loopback);
    const redirecting = await serve(Buffer.alloc(0), { redirects: { '/go': loopback.url } });
    const redirected = await importFrom(`${redirecting.origin}/go`);
    expect(redirected.task?.errorCode).toBe('DESTINATION_REFUSED');
    expect(loopback.requests).toEqual([]);

    const overlay = `${work}/overlay.qcow2`;
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', source, '-F', 'qcow2', overlay);
    const backed = await importFrom((await serve(readFileSync(overlay))).url);
    expect(backed.task).toMatchObject({ errorCode: 'UNSUPPORTED_IMAGE', errorMessage: expect.stringMatching(/backing file/) });

    const withDataFile = `${work}/external.qcow2`;
    run('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', `data_file=${work}/external.raw`, withDataFile, '16M');
    const external = await importFrom((await serve(readFileSync(withDataFile))).url);
    expect(external.task).toMatchObject({ errorCode: 'UNSUPPORTED_IMAGE', errorMessage: expect.stringMatching(/data file/) });

    const mismatch = await importFrom((await serve(gzipSync(readFileSync(source)))).url, { sha256: 'f'.repeat(64) });
    expect(mismatch.task?.errorCode).toBe('CHECKSUM_MISMATCH');
    expect(mismatch.image).toMatchObject({ status: 'error', statusReason: { code: 'CHECKSUM_MISMATCH' } });

    expect(filesBelow(storageDir)).toEqual(before);
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('cuts a download without Content-Length (chunked, never ending) once it passes the size limit, leaving nothing', async () => {
    const limitedDir = freshScratchDir('import-limited');
    const limitedScratch = freshScratchDir('import-limited-scratch');
    const limit = 1024 * 1024;
    const limited = await instance(limitedDir, limitedScratch, { maxDownloadBytes: limit });
    // The qcow2 sent again and again without a length: only the client can end it.
    const server = await serve(readFileSync(source), { endless: true });
    const { image, task } = await importFrom(server.url, {}, limited);
    expect(task).toMatchObject({ status: 'failed', errorCode: 'DOWNLOAD_FAILED', errorMessage: expect.stringMatching(/limit of 1048576/) });
    expect(image).toMatchObject({ status: 'error', statusReason: { code: 'DOWNLOAD_FAILED' }, reservedBytes: null });
    // The client hung up soon after the limit: what the server wrote is the limit and what the
    // sockets buffer, far from the endless body.
    await expect.poll(() => server.requests.map((r) => [r.status, r.hungUp]), { timeout: 5000 }).toEqual([[200, true]]);
    expect(server.requests[0]?.sent).toBeLessThan(limit + 16 * 1024 * 1024);
    // No received or part file next to the target, nothing in the scratch directory, no usage.
    expect(filesBelow(limitedDir)).toEqual([]);
    expect(readdirSync(limitedScratch)).toEqual([]);
    expect((await limited.repositories.usage.list({ imageId: image?.id ?? '' })).items).toEqual([]);
    for (const dir of [limitedDir, limitedScratch]) rmSync(dir, { recursive: true, force: true });
  });
});
