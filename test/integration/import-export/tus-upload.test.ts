/**
 * Resumable uploads (tus) over real HTTP through the Express router: a real qcow2 (made with
 * qemu-img) is uploaded in pieces; one piece's connection is cut midway (the socket destroyed),
 * the client asks HEAD for the offset and continues from there. The upload ends as an Available
 * image verified against the source: on a path storage (local, through the real libvirt driver
 * and qemu-img: `qemu-img compare` with the source) and on S3 (the real radosgw: the object is
 * the source's bytes). Nothing staged is left behind.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagesRouter } from '../../../adapters/express';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { s3StorageDriver } from '../../../drivers/storage/s3';
import { createInstanceImages, type Actor, type InstanceImages, type InstanceImagesOptions } from '../../../src';
import { freshScratchDir, imageInfo, imagesIdentical, libvirtSkipReason, localHypervisor } from '../libvirt/setup';
import { allObjectKeys, driverOptions, loadS3TestEnv, useTestBucket } from '../storage-s3/s3-env';

const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const TUS = { 'Tus-Resumable': '1.0.0' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A real qcow2 with recognizable data. */
function makeQcow2(dir: string): string {
  const path = `${dir}/source.qcow2`;
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
  execFileSync('qemu-io', ['-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 20M 3M', path]);
  return path;
}

/** A panel: the SDK behind the Express router, every request Alice's. */
async function startPanel(options: InstanceImagesOptions): Promise<{ ii: InstanceImages; url: string; server: Server; staging: string }> {
  const staging = mkdtempSync(join(tmpdir(), 'ii-it-tus-'));
  const ii = createInstanceImages({ ...options, uploads: { directory: staging } });
  const app = express();
  app.use('/api', createImagesRouter({ service: ii, resolveActor: () => ALICE }));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { ii, server, staging, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Sends `declared` bytes' worth of headers but only `sent` bytes, then destroys the socket. */
function cutPiece(url: string, offset: number, piece: Buffer, sent: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(url, {
      method: 'PATCH',
      headers: {
        ...TUS,
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Offset': String(offset),
        'Content-Length': piece.length,
      },
    });
    req.on('error', () => resolve());
    req.write(piece.subarray(0, sent), () => setTimeout(() => req.destroy(), 100));
    req.on('close', () => resolve());
  });
}

/**
 * Uploads `bytes` as a tus client that loses its connection once: pieces of `pieceBytes`, the
 * second cut after half of it; then HEAD, and on from the offset the panel reports.
 */
async function uploadWithCut(panelUrl: string, bytes: Buffer, pieceBytes: number): Promise<{ imageId: string; resumedAt: number }> {
  const created = await fetch(`${panelUrl}/api/uploads`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': String(bytes.length), 'Upload-Metadata': `name ${b64('uploaded disk')},locationId ${b64('loc')}` },
  });
  expect(created.status).toBe(201);
  const location = `${panelUrl}${created.headers.get('location')}`;
  const patch = (offset: number, piece: Buffer) =>
    fetch(location, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
      body: piece,
    });
  expect((await patch(0, bytes.subarray(0, pieceBytes))).status).toBe(204);
  await cutPiece(location, pieceBytes, bytes.subarray(pieceBytes, 2 * pieceBytes), pieceBytes / 2);
  const head = await fetch(location, { method: 'HEAD', headers: TUS });
  const resumedAt = Number(head.headers.get('upload-offset'));
  // The bytes that arrived before the cut count; the rest comes again.
  expect(resumedAt).toBeGreaterThan(pieceBytes);
  expect(resumedAt).toBeLessThanOrEqual(pieceBytes + pieceBytes / 2);
  let offset = resumedAt;
  let last: Response | null = null;
  while (offset < bytes.length) {
    const piece = bytes.subarray(offset, offset + pieceBytes);
    last = await patch(offset, piece);
    expect(last.status).toBe(204);
    offset = Number(last.headers.get('upload-offset'));
  }
  return { imageId: last?.headers.get('upload-image-id') ?? '', resumedAt };
}

const libvirtSkip = libvirtSkipReason();
describe.skipIf(libvirtSkip !== null)(`tus upload into a path storage${libvirtSkip ? ` (skipped: ${libvirtSkip})` : ''}`, () => {
  let work: string;
  let storageDir: string;
  let scratch: string;
  let panel: Awaited<ReturnType<typeof startPanel>>;

  beforeAll(async () => {
    work = freshScratchDir('tus-work');
    storageDir = freshScratchDir('tus-storage');
    scratch = freshScratchDir('tus-scratch');
    const hypervisor = localHypervisor(scratch);
    const executor = createLocalExecutor();
    panel = await startPanel({
      hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null) },
      storageDrivers: builtinStorageDrivers,
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
    });
    await panel.ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true, pricePerGbMonth: '0.05' });
    const storage = await panel.ii.storages.createStorage(ADMIN, { name: 'local', driver: 'local', config: { path: storageDir } });
    await panel.ii.storages.bindHypervisor(ADMIN, storage.id, hypervisor.id);
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => panel?.server.close(() => resolve()));
    await panel?.ii.close();
    for (const dir of [work, storageDir, scratch, panel?.staging]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('uploads a qcow2 in pieces across a dropped connection and ends with an available, identical image', async () => {
    const source = makeQcow2(work);
    const bytes = readFileSync(source);
    const { imageId } = await uploadWithCut(panel.url, bytes, 256 * 1024);
    await panel.ii.idle();
    const image = await panel.ii.images.getImage(ALICE, imageId);
    expect(image).toMatchObject({ status: 'available', format: 'qcow2', virtualSizeBytes: 64 * 1024 * 1024 });
    const stored = `${storageDir}/${image.fileKey}`;
    expect(imageInfo(stored)).toMatchObject({ format: 'qcow2', backing: null });
    expect(imagesIdentical(source, stored)).toBe(true);
    expect(sha256(readFileSync(stored))).toBe(image.sha256);
    // Billed from available; only the small record of where the upload went is staged.
    const usage = await panel.ii.repositories.usage.list({ imageId }, { limit: 10 });
    expect(usage.items).toHaveLength(1);
    expect(readdirSync(panel.staging).filter((name) => name.endsWith('.part'))).toEqual([]);
  });
});

const loaded = await loadS3TestEnv();
describe.skipIf(loaded.env === null)(`tus upload into S3${loaded.missing ? ` (skipped: ${loaded.missing})` : ''}`, () => {
  const env = loaded.env!;
  const bucket = useTestBucket(env, 'tus');
  let work: string;
  let scratch: string;
  let panel: Awaited<ReturnType<typeof startPanel>>;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ii-it-tus-src-'));
    scratch = freshScratchDir('tus-s3-scratch');
    const executor = createLocalExecutor();
    panel = await startPanel({
      hostDirectory: {
        getInstance: async () => null,
        getHypervisor: async (id) =>
          id === 'hv-1' ? { id, name: 'hv', locationId: 'loc', connection: { type: 'local' }, scratchDir: scratch } : null,
      },
      storageDrivers: [s3StorageDriver],
      // The hypervisor bound to the bucket converts VMDK, VHDX and VHD images.
      executors: () => executor,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
    });
    await panel.ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
    const storage = await panel.ii.storages.createStorage(ADMIN, {
      name: 'rgw',
      driver: 's3',
      config: { ...driverOptions(env, bucket.bucket), prefix: 'p' },
    });
    await panel.ii.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => panel?.server.close(() => resolve()));
    await panel?.ii.close();
    for (const dir of [work, scratch, panel?.staging]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('uploads a qcow2 in pieces across a dropped connection and stores exactly its bytes', async () => {
    const bytes = readFileSync(makeQcow2(work));
    const { imageId } = await uploadWithCut(panel.url, bytes, 128 * 1024);
    await panel.ii.idle();
    const image = await panel.ii.images.getImage(ALICE, imageId);
    expect(image).toMatchObject({
      status: 'available',
      format: 'qcow2',
      sizeBytes: bytes.length,
      sha256: sha256(bytes),
      virtualSizeBytes: 64 * 1024 * 1024,
    });
    expect(await allObjectKeys(bucket.admin, bucket.bucket)).toEqual([`p/${image.fileKey}`]);
    expect(readdirSync(panel.staging).filter((name) => name.endsWith('.part'))).toEqual([]);
  });

  it.skipIf(libvirtSkip !== null)('converts an uploaded VMDK to qcow2 on the bound hypervisor and stores it in the bucket', async () => {
    const source = makeQcow2(work);
    const vmdkPath = `${work}/source.vmdk`;
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', source, vmdkPath]);
    const before = (await allObjectKeys(bucket.admin, bucket.bucket)).length;
    const { imageId } = await uploadWithCut(panel.url, readFileSync(vmdkPath), 128 * 1024);
    await panel.ii.idle();
    const image = await panel.ii.images.getImage(ALICE, imageId);
    expect(image).toMatchObject({ status: 'available', format: 'qcow2', virtualSizeBytes: 64 * 1024 * 1024 });
    const link = await panel.ii.exports.createDownloadLink(ALICE, imageId);
    const stored = Buffer.from(await (await fetch(link.kind === 'presigned' ? link.url : '')).arrayBuffer());
    expect(sha256(stored)).toBe(image.sha256);
    writeFileSync(`${work}/stored.qcow2`, stored);
    expect(imageInfo(`${work}/stored.qcow2`)).toMatchObject({ format: 'qcow2', backing: null });
    expect(imagesIdentical(source, `${work}/stored.qcow2`)).toBe(true);
    expect(await allObjectKeys(bucket.admin, bucket.bucket)).toHaveLength(before + 1);
    expect(readdirSync(scratch)).toEqual([]);
  });
});
