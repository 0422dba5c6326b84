/**
 * URL imports through the service on in-process fakes and a real local HTTP server: resume with
 * Range after a cut, a server that ignores Range, redirects and DNS answers into refused networks,
 * checksum and size limits, decompression, cancel, the location switch and the cap. Every failure
 * leaves no file and the image in `error`.
 */
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createInstanceImages, type Actor, type ImportOptions, type InstanceImages } from '../../../src';
import { FakeWorld, sha256 } from '../../support/fakes';
import { serveBytes, type ImageServer } from '../../support/image-server';

const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const image = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i)));

let world: FakeWorld;
let ii: InstanceImages;
const servers: ImageServer[] = [];

async function setup(
  imports: ImportOptions = { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 2000 },
  settings = {},
  tasks: { heartbeatIntervalMs?: number; heartbeatTimeoutMs?: number } = {},
): Promise<void> {
  world = new FakeWorld();
  world.addHypervisor('hv-1');
  ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
    tasks: { progressIntervalMs: 0, ...tasks },
    imports,
  });
  await ii.settings.setLocationSettings(ADMIN, 'loc-1', { imagesEnabled: true, urlImportEnabled: true, ...settings });
  const storage = await ii.storages.createStorage(ADMIN, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
  await ii.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
}

async function serve(bytes: Buffer, options: Parameters<typeof serveBytes>[1] = {}): Promise<ImageServer> {
  const server = await serveBytes(bytes, { host: '127.0.0.2', ...options });
  servers.push(server);
  return server;
}

async function importFrom(url: string, extra: { sha256?: string } = {}) {
  const started = await ii.imports.importImage(ALICE, { url, name: 'imported', locationId: 'loc-1', ...extra });
  await ii.idle();
  return {
    image: await ii.repositories.images.get(started.image.id),
    task: await ii.repositories.tasks.get(started.task.id),
  };
}

const storedFiles = () => [...world.files.keys()].filter((key) => key.startsWith('bucket:'));

afterEach(async () => {
  await ii?.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('URL imports', () => {
  it('resumes a gzipped image with Range and If-Range after the connection drops midway', async () => {
    await setup();
    const gz = gzipSync(image);
    const server = await serve(gz, { cutAfter: Math.floor(gz.length / 2) });
    const { image: imported, task } = await importFrom(server.url, { sha256: sha256(image) });
    expect(task).toMatchObject({ status: 'completed', type: 'import' });
    expect(imported).toMatchObject({ status: 'available', format: 'raw', sizeBytes: image.length, sha256: sha256(image) });
    expect(server.requests.map((r) => [r.status, r.range, r.ifRange])).toEqual([
      [200, null, null],
      [206, `bytes=${Math.floor(gz.length / 2)}-`, '"v1"'],
    ]);
    expect(world.files.get(`bucket:${imported?.fileKey}`)?.bytes.equals(image)).toBe(true);
    expect(storedFiles()).toHaveLength(1);
  });

  it('reads again from the start when the server ignores Range, skipping what it has', async () => {
    await setup();
    const server = await serve(image, { cutAfter: 300_000, ignoreRange: true });
    const { image: imported } = await importFrom(server.url);
    expect(imported).toMatchObject({ status: 'available', sha256: sha256(image) });
    expect(server.requests.map((r) => [r.status, r.range])).toEqual([
      [200, null],
      [200, 'bytes=300000-'],
    ]);
  });

  it('survives a Content-Length larger than the body: the connection stalls, the resume learns the real length', async () => {
    await setup({ allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 300 });
    const server = await serve(image, { contentLength: image.length + 100 });
    const { image: imported } = await importFrom(server.url);
    expect(imported).toMatchObject({ status: 'available', sizeBytes: image.length, sha256: sha256(image) });
    expect(server.requests.map((r) => [r.status, r.range])).toEqual([
      [200, null],
      [416, `bytes=${image.length}-`],
    ]);
  });

  it('refuses a redirect to 127.0.0.1 by default (the first hop allowed), leaving nothing', async () => {
    await setup();
    const target = await serveBytes(image, { host: '127.0.0.1' });
    servers.push(target);
    const server = await serve(image, { redirects: { '/start': target.url } });
    const { image: imported, task } = await importFrom(`${server.origin}/start`);
    expect(task).toMatchObject({ status: 'failed', errorCode: 'DESTINATION_REFUSED' });
    expect(imported).toMatchObject({ status: 'error', statusReason: { code: 'DESTINATION_REFUSED' } });
    expect(target.requests).toEqual([]);
    expect(storedFiles()).toEqual([]);
  });

  it('checks the address a name resolves to when connecting (a resolver answering 127.0.0.1 is refused)', async () => {
    const target = await serveBytes(image, { host: '127.0.0.1' });
    servers.push(target);
    await setup({ resolveHost: async () => [{ address: '127.0.0.1', family: 4 }] });
    const { task } = await importFrom(target.url.replace('127.0.0.1', 'images.example.test'));
    expect(task).toMatchObject({ status: 'failed', errorCode: 'DESTINATION_REFUSED' });
    expect(target.requests).toEqual([]);
  });

  it('refuses refused literals, other schemes and credentials at once, recording nothing', async () => {
    await setup();
    for (const [url, code] of [
      ['http://127.0.0.1/x.img', 'DESTINATION_REFUSED'],
      ['http://[::ffff:169.254.169.254]/latest', 'DESTINATION_REFUSED'],
      ['http://[fe80::1]/x', 'DESTINATION_REFUSED'],
      // Numeric IPv4 forms are canonicalized by the URL parser before the check.
      ['http://2130706433/x.img', 'DESTINATION_REFUSED'],
      ['http://0x7f.1/x.img', 'DESTINATION_REFUSED'],
      ['https://[::]/x.img', 'DESTINATION_REFUSED'],
      ['file:///etc/passwd', 'VALIDATION_FAILED'],
      ['ftp://example.com/x.img', 'VALIDATION_FAILED'],
      ['http://user:secret@example.com/x.img', 'VALIDATION_FAILED'],
    ] as const) {
      await expect(ii.imports.importImage(ALICE, { url, name: 'x', locationId: 'loc-1' })).rejects.toMatchObject({ code });
    }
    expect((await ii.repositories.images.list({})).items).toEqual([]);
  });

  it('fails on a checksum mismatch and on the size limit, leaving no file', async () => {
    await setup({ allowNetworks: ['127.0.0.2/32'], maxImageBytes: image.length - 1 });
    const server = await serve(image);
    const tooLarge = await importFrom(server.url);
    expect(tooLarge.task).toMatchObject({ status: 'failed', errorCode: 'DOWNLOAD_FAILED' });
    await ii.close();
    await setup();
    const again = await serve(image);
    const mismatch = await importFrom(again.url, { sha256: 'a'.repeat(64) });
    expect(mismatch.task).toMatchObject({ status: 'failed', errorCode: 'CHECKSUM_MISMATCH' });
    expect(mismatch.image).toMatchObject({ status: 'error', statusReason: { code: 'CHECKSUM_MISMATCH' } });
    expect(storedFiles()).toEqual([]);
  });

  it('decompresses xz and bzip2 through the local programs and refuses zstd without zlib support', async () => {
    await setup();
    for (const program of ['xz', 'bzip2']) {
      const compressed = execFileSync(program, ['-c'], { input: image });
      const server = await serve(compressed);
      const { image: imported } = await importFrom(server.url);
      expect(imported).toMatchObject({ status: 'available', sha256: sha256(image) });
    }
    const zstdFrame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100)]);
    const server = await serve(zstdFrame);
    const zstd = await importFrom(server.url);
    if ('createZstdDecompress' in (await import('node:zlib'))) expect(zstd.task?.errorCode).not.toBe('DESTINATION_REFUSED');
    else expect(zstd.task).toMatchObject({ status: 'failed', errorCode: 'UNSUPPORTED_IMAGE', errorMessage: expect.stringMatching(/zstd/) });
  });

  it('is refused where the location does not allow customer imports, and counts against the cap', async () => {
    await setup(undefined, { urlImportEnabled: false });
    await expect(ii.imports.importImage(ALICE, { url: 'http://127.0.0.2/x', name: 'x', locationId: 'loc-1' })).rejects.toMatchObject({
      code: 'FEATURE_DISABLED',
    });
    await ii.settings.setLocationSettings(ADMIN, 'loc-1', { urlImportEnabled: true, defaultImageLimit: 1 });
    const server = await serve(image);
    await importFrom(server.url);
    await expect(ii.imports.importImage(ALICE, { url: server.url, name: 'y', locationId: 'loc-1' })).rejects.toMatchObject({
      code: 'IMAGE_LIMIT_REACHED',
    });
  });

  it('cancels an import in progress, leaving the image in error and no file', async () => {
    await setup();
    const server = await serve(image, { stallAfter: 100_000 });
    // The connection stalls (until the idle timeout): cancel meanwhile.
    const started = await ii.imports.importImage(ALICE, { url: server.url, name: 'x', locationId: 'loc-1' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const task = await ii.imports.cancelImport(ALICE, started.task.id);
    await ii.idle();
    expect((await ii.repositories.tasks.get(task.id))?.status).toBe('cancelled');
    expect((await ii.repositories.images.get(started.image.id))?.statusReason?.code).toBe('CANCELLED');
    expect(storedFiles()).toEqual([]);
    await expect(ii.imports.cancelImport({ kind: 'customer', accountId: 'acct-bob' }, started.task.id)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('is not taken for an orphan by recovery while it runs, and an imported image is not retried like a capture', async () => {
    await setup(undefined, {}, { heartbeatIntervalMs: 20, heartbeatTimeoutMs: 100 });
    const server = await serve(image, { stallAfter: 100_000 });
    const started = await ii.imports.importImage(ALICE, { url: server.url, name: 'x', locationId: 'loc-1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const report = await ii.recover();
    expect(report.failedImages).toEqual([]);
    expect((await ii.repositories.images.get(started.image.id))?.status).toBe('creating');
    await ii.imports.cancelImport(ALICE, started.task.id);
    await ii.idle();
    await expect(ii.images.retryImage(ALICE, started.image.id)).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringMatching(/imported from a URL/),
    });
  });
});
