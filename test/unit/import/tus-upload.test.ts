/**
 * The tus protocol over the upload service, with web Requests against the framework-agnostic
 * handler and in-process fakes: offsets, wrong offset (409), content type (415), protocol
 * version (412), too large (413), another account's upload (404), piece checksums (460), a piece
 * cut by a dropped connection, a reconnecting client taking over a stalled piece, termination and
 * expiry leaving nothing, the cap at creation and at the end, and the finished upload becoming an
 * available image through the import pipeline.
 */
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createInstanceImages, type Actor, type InstanceImages } from '../../../src';
import { failureReason } from '../../../src/messages';
import type { TaskJob, TaskQueue, TaskQueueBinding } from '../../../src/ports/task-queue';
import { createTusHandler, type TusHandler } from '../../../adapters/tus/handler';
import { sha256, type FakeWorld } from '../../support/fakes';
import { uploadWorld } from '../../support/upload-world';

const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const BOB: Actor = { kind: 'customer', accountId: 'acct-bob' };
const BASE = '/api/uploads';
const image = Buffer.concat(Array.from({ length: 32 }, (_, i) => Buffer.alloc(8 * 1024, i + 1)));

let world: FakeWorld;
let ii: InstanceImages;
let dir: string;
let tus: TusHandler;
let clock: number;

async function setup(
  uploads: { maxUploadBytes?: number; maxStagingBytes?: number; expiresAfterMs?: number } = {},
  limit?: number,
  queue?: TaskQueue,
) {
  clock = Date.parse('2026-12-01T00:00:00Z');
  ({ world, ii, dir } = await uploadWorld(
    { clock: () => new Date(clock), uploads, ...(queue ? { queue } : {}) },
    limit !== undefined ? { defaultImageLimit: limit } : {},
  ));
  // The actor comes from a header here; a host reads its own session.
  tus = createTusHandler({
    service: ii,
    resolveActor: (request) => {
      const who = request.headers.get('x-test-actor');
      return who === 'admin' ? ADMIN : who ? { kind: 'customer', accountId: who } : null;
    },
  });
}

afterEach(async () => {
  await ii?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

function send(
  actor: Actor | null,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer | ReadableStream<Uint8Array>,
): Promise<Response> {
  const who: Record<string, string> = actor === null ? {} : { 'x-test-actor': actor.kind === 'admin' ? 'admin' : actor.accountId };
  const init: RequestInit & { duplex?: string } = { method, headers: { 'Tus-Resumable': '1.0.0', ...who, ...headers } };
  if (body !== undefined) Object.assign(init, { body, duplex: 'half' });
  return tus(new Request(`http://panel${path}`, init), { basePath: BASE });
}

async function create(
  actor: Actor = ALICE,
  length: number | null = image.length,
  meta = `name ${b64('uploaded')},locationId ${b64('loc-1')}`,
) {
  const res = await send(actor, 'POST', BASE, {
    ...(length === null ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
    'Upload-Metadata': meta,
  });
  return { res, location: res.headers.get('Location') ?? '' };
}

function piece(
  actor: Actor,
  location: string,
  offset: number,
  bytes: Buffer | ReadableStream<Uint8Array>,
  extra: Record<string, string> = {},
) {
  return send(
    actor,
    'PATCH',
    location,
    { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), ...extra },
    bytes,
  );
}

const staged = () => readdirSync(dir);

describe('tus uploads', () => {
  it('advertises the protocol, and refuses another protocol version with 412', async () => {
    await setup({ maxUploadBytes: 1 << 20 });
    const options = await tus(new Request(`http://panel${BASE}`, { method: 'OPTIONS' }), { basePath: BASE });
    expect(options.status).toBe(204);
    expect(options.headers.get('Tus-Version')).toBe('1.0.0');
    expect(options.headers.get('Tus-Extension')).toBe('creation,creation-defer-length,termination,checksum,expiration');
    expect(options.headers.get('Tus-Max-Size')).toBe(String(1 << 20));
    const old = await send(ALICE, 'POST', BASE, { 'Tus-Resumable': '0.2.2', 'Upload-Length': '10' });
    expect(old.status).toBe(412);
    expect(old.headers.get('Tus-Version')).toBe('1.0.0');
    expect((await send(null, 'POST', BASE, { 'Upload-Length': '10' })).status).toBe(401);
  });

  it('takes pieces at their offsets, refuses a wrong offset (409) and content type (415), and ends with an available image', async () => {
    await setup();
    const { res, location } = await create();
    expect(res.status).toBe(201);
    expect(location).toMatch(/^\/api\/uploads\/upl_[A-Za-z0-9_-]{22}$/);
    expect(res.headers.get('Upload-Expires')).toBe(new Date(clock + 86_400_000).toUTCString());
    const first = await piece(ALICE, location, 0, image.subarray(0, 100_000));
    expect(first.status).toBe(204);
    expect(first.headers.get('Upload-Offset')).toBe('100000');
    const head = await send(ALICE, 'HEAD', location);
    expect([head.status, head.headers.get('Upload-Offset'), head.headers.get('Upload-Length')]).toEqual([
      200,
      '100000',
      String(image.length),
    ]);
    expect(head.headers.get('Cache-Control')).toBe('no-store');
    expect(head.headers.get('Upload-Metadata')).toBe(`name ${b64('uploaded')},locationId ${b64('loc-1')}`);
    const wrong = await piece(ALICE, location, 50_000, image.subarray(50_000));
    expect(wrong.status).toBe(409);
    expect(wrong.headers.get('Upload-Offset')).toBe('100000');
    expect(await wrong.json()).toMatchObject({ code: 'CONFLICT', details: { offsetBytes: 100_000 } });
    const type = await piece(ALICE, location, 100_000, image.subarray(100_000), { 'Content-Type': 'application/octet-stream' });
    expect(type.status).toBe(415);
    const last = await piece(ALICE, location, 100_000, image.subarray(100_000));
    expect(last.status).toBe(204);
    expect(last.headers.get('Upload-Offset')).toBe(String(image.length));
    const imageId = last.headers.get('Upload-Image-Id');
    const taskId = last.headers.get('Upload-Task-Id');
    expect(imageId).toBeTruthy();
    await ii.idle();
    expect(await ii.repositories.tasks.get(taskId ?? '')).toMatchObject({ type: 'import', status: 'completed' });
    const stored = await ii.repositories.images.get(imageId ?? '');
    expect(stored).toMatchObject({
      status: 'available',
      accountId: 'acct-alice',
      name: 'uploaded',
      sizeBytes: image.length,
      sha256: sha256(image),
    });
    expect(world.files.get(`bucket:${stored?.fileKey}`)?.bytes.equals(image)).toBe(true);
    // Only the small record of where it went is left, until it expires.
    expect(staged()).toEqual([`${location.split('/').pop()}.json`]);
    const info = await (await send(ALICE, 'GET', location)).json();
    expect(info).toMatchObject({ offsetBytes: image.length, imageId, taskId });
  });

  it('hands a complete upload to its import job as data: a worker with the staging directory runs it, one without fails it', async () => {
    // The web process only queues: each job crosses as JSON, and the test runs it in a worker.
    const jobs: TaskJob[] = [];
    const queueOf = (onBind: (binding: TaskQueueBinding) => void = () => undefined): TaskQueue => ({
      bind: onBind,
      enqueue: async (job) => void jobs.push(JSON.parse(JSON.stringify(job)) as TaskJob),
      cancel: () => false,
      onIdle: async () => undefined,
      close: async () => undefined,
    });
    await setup({}, undefined, queueOf());
    const worker = (uploads?: { directory: string; sweepIntervalMs: number }) => {
      let run: TaskQueueBinding['run'] = () => Promise.reject(new Error('not bound'));
      const sdk = createInstanceImages({
        hostDirectory: world.hostDirectory(),
        executors: world.executors(),
        hypervisorDriver: world.hypervisorFactory(),
        storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
        repositories: ii.repositories,
        tasks: { progressIntervalMs: 0 },
        queue: queueOf((binding) => (run = binding.run)),
        ...(uploads ? { uploads } : {}),
      });
      return { sdk, run: (job: TaskJob) => run(job, new AbortController().signal) };
    };
    const upload = async () => {
      const { location } = await create();
      const last = await piece(ALICE, location, 0, image);
      expect(last.status).toBe(204);
      return { id: location.split('/').pop() ?? '', imageId: last.headers.get('Upload-Image-Id') ?? '', job: jobs.at(-1) as TaskJob };
    };

    const first = await upload();
    expect(first.job).toMatchObject({ type: 'import', params: { source: 'upload', uploadId: first.id, lengthBytes: image.length } });
    expect(first.job.params).not.toHaveProperty('url');
    expect(Object.values(first.job.params ?? {}).every((v) => v === null || ['string', 'number'].includes(typeof v))).toBe(true);
    // A worker without uploads.directory cannot read the staged file: the task fails with the catalog's reason.
    const blind = worker();
    await blind.run(first.job).catch(() => undefined);
    expect(await ii.repositories.tasks.get(first.job.taskId)).toMatchObject({ status: 'failed', errorCode: 'FEATURE_DISABLED' });
    expect((await ii.repositories.images.get(first.imageId))?.statusReason).toEqual(failureReason('import', 'FEATURE_DISABLED'));

    // A worker sharing the staging directory imports it and removes the staged bytes.
    const second = await upload();
    expect(staged()).toContain(`${second.id}.part`);
    const sharing = worker({ directory: dir, sweepIntervalMs: 0 });
    await sharing.run(second.job);
    expect(await ii.repositories.tasks.get(second.job.taskId)).toMatchObject({ status: 'completed' });
    expect(await ii.repositories.images.get(second.imageId)).toMatchObject({ status: 'available', sha256: sha256(image) });
    expect(staged()).not.toContain(`${second.id}.part`);
    await Promise.all([blind.sdk.close(), sharing.sdk.close()]);
  });

  it('refuses what is too large with 413 and keeps nothing of it', async () => {
    await setup({ maxUploadBytes: 200_000 });
    expect((await create(ALICE, 200_001)).res.status).toBe(413);
    const { location } = await create(ALICE, null);
    const big = await piece(ALICE, location, 0, image.subarray(0, 200_001));
    expect(big.status).toBe(413);
    expect((await send(ALICE, 'HEAD', location)).headers.get('Upload-Offset')).toBe('0');
    // Past the declared length too.
    const declared = await create(ALICE, 1000);
    expect((await piece(ALICE, declared.location, 0, image.subarray(0, 1001))).status).toBe(413);
  });

  it("answers 404 for another account's upload, whatever the method", async () => {
    await setup();
    const { location } = await create(ALICE);
    await piece(ALICE, location, 0, image.subarray(0, 10));
    for (const [method, extra] of [
      ['HEAD', {}],
      ['GET', {}],
      ['DELETE', {}],
    ] as const)
      expect((await send(BOB, method, location, extra)).status).toBe(404);
    expect((await piece(BOB, location, 10, image.subarray(10, 20))).status).toBe(404);
    expect((await send(ADMIN, 'HEAD', location)).status).toBe(404);
    expect((await send(ALICE, 'HEAD', location)).headers.get('Upload-Offset')).toBe('10');
  });

  it('terminates: DELETE removes everything staged', async () => {
    await setup();
    const { location } = await create(ALICE);
    await piece(ALICE, location, 0, image.subarray(0, 5000));
    expect(staged()).toHaveLength(2);
    expect((await send(ALICE, 'DELETE', location)).status).toBe(204);
    expect(staged()).toEqual([]);
    expect((await send(ALICE, 'HEAD', location)).status).toBe(404);
  });

  it('expires: an idle upload is removed with its bytes', async () => {
    await setup({ expiresAfterMs: 60_000 });
    const { location } = await create(ALICE);
    await piece(ALICE, location, 0, image.subarray(0, 5000));
    clock += 59_000;
    expect(await ii.uploads.removeExpired()).toBe(0);
    await piece(ALICE, location, 5000, image.subarray(5000, 6000)); // a piece extends the expiry
    clock += 59_000;
    expect(await ii.uploads.removeExpired()).toBe(0);
    clock += 2_000;
    expect(await ii.uploads.removeExpired()).toBe(1);
    expect(staged()).toEqual([]);
    expect((await send(ALICE, 'HEAD', location)).status).toBe(404);
  });

  it('refuses a piece whose Upload-Checksum differs (460) and keeps none of it', async () => {
    await setup();
    const { location } = await create(ALICE);
    const bytes = image.subarray(0, 4096);
    const digest = (b: Buffer) => `sha256 ${createHash('sha256').update(b).digest('base64')}`;
    const bad = await piece(ALICE, location, 0, bytes, { 'Upload-Checksum': digest(Buffer.alloc(4096, 0xff)) });
    expect(bad.status).toBe(460);
    expect((await send(ALICE, 'HEAD', location)).headers.get('Upload-Offset')).toBe('0');
    expect((await piece(ALICE, location, 0, bytes, { 'Upload-Checksum': 'crc32 AAAA' })).status).toBe(400);
    const good = await piece(ALICE, location, 0, bytes, { 'Upload-Checksum': digest(bytes) });
    expect(good.headers.get('Upload-Offset')).toBe('4096');
  });

  it('keeps the bytes of a piece cut by a dropped connection, and a reconnecting client takes over a stalled piece', async () => {
    await setup();
    const { location } = await create(ALICE);
    let sent = 0;
    const cut = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 30_000) return controller.error(new Error('socket hang up'));
        controller.enqueue(image.subarray(sent, sent + 10_000));
        sent += 10_000;
      },
    });
    expect((await piece(ALICE, location, 0, cut)).status).toBe(409);
    expect((await send(ALICE, 'HEAD', location)).headers.get('Upload-Offset')).toBe('30000');
    // A piece that stalls (its connection is half dead): the next request stops it and sees its bytes.
    let stalled!: ReadableStreamDefaultController<Uint8Array>;
    const stall = new ReadableStream<Uint8Array>({
      start(controller) {
        stalled = controller;
        controller.enqueue(image.subarray(30_000, 40_000));
      },
    });
    const pending = piece(ALICE, location, 30_000, stall);
    // Its first bytes are on disk (a condition, not a duration: a loaded machine only waits longer).
    const part = join(dir, `${location.split('/').pop()}.part`);
    await vi.waitFor(() => expect(statSync(part).size).toBe(40_000), { timeout: 15_000 });
    const head = await send(ALICE, 'HEAD', location);
    expect(head.headers.get('Upload-Offset')).toBe('40000');
    expect((await pending).status).toBe(204);
    stalled.close();
    const rest = await piece(ALICE, location, 40_000, image.subarray(40_000));
    expect(rest.status).toBe(204);
    await ii.idle();
    const stored = await ii.repositories.images.get(rest.headers.get('Upload-Image-Id') ?? '');
    expect(stored).toMatchObject({ status: 'available', sha256: sha256(image) });
  });

  it('checks the cap at creation and again when the upload completes', async () => {
    await setup({}, 1);
    const { location } = await create(ALICE);
    // Another image takes the last place meanwhile.
    const other = await create(ALICE, 4096);
    await piece(ALICE, other.location, 0, image.subarray(0, 4096));
    await ii.idle();
    expect((await create(ALICE)).res.status).toBe(409);
    const last = await piece(ALICE, location, 0, image);
    expect(last.status).toBe(409);
    expect(await last.json()).toMatchObject({ code: 'IMAGE_LIMIT_REACHED' });
    expect(staged().filter((name) => name.startsWith(location.split('/').pop() ?? '-'))).toEqual([]);
    expect((await ii.images.listImages(ALICE, {})).items).toHaveLength(1);
  });

  it('lets operators upload stock OS images and refuses them to customers', async () => {
    await setup();
    const templates = await ii.storages.createStorage(ADMIN, {
      name: 't',
      driver: 'fake-s3',
      purpose: 'templates',
      config: { root: 'tpl' },
    });
    await ii.storages.bindHypervisor(ADMIN, templates.id, 'hv-1');
    const meta = `kind ${b64('os-image')},name ${b64('Debian 13')},osType ${b64('linux')},storageId ${b64(templates.id)},cloudInit ${b64('true')}`;
    expect((await create(ALICE, image.length, meta)).res.status).toBe(403);
    const { res, location } = await create(ADMIN, image.length, meta);
    expect(res.status).toBe(201);
    const done = await piece(ADMIN, location, 0, image);
    await ii.idle();
    expect(await ii.repositories.images.get(done.headers.get('Upload-Image-Id') ?? '')).toMatchObject({
      kind: 'stock',
      name: 'Debian 13',
      cloudInit: true,
      status: 'available',
      sha256: sha256(image),
    });
  });

  it('refuses unknown metadata keys and uploads where the operator has not allowed imports', async () => {
    await setup();
    expect((await create(ALICE, 10, `name ${b64('x')},locationId ${b64('loc-1')},colour ${b64('red')}`)).res.status).toBe(400);
    await ii.settings.setLocationSettings(ADMIN, 'loc-1', { urlImportEnabled: false });
    const off = await create(ALICE, 10);
    expect(off.res.status).toBe(403);
    expect(await off.res.json()).toMatchObject({ code: 'FEATURE_DISABLED' });
  });

  it('converts a VMDK into an object storage on a hypervisor bound to it, leaving no scratch file', async () => {
    await setup();
    const vmdk = Buffer.alloc(64 * 1024);
    vmdk.write('KDMV', 0, 'latin1');
    vmdk.writeUInt32LE(1, 4);
    vmdk.writeBigUInt64LE(2097152n, 12); // 1 GiB
    vmdk.writeBigUInt64LE(128n, 20);
    vmdk.writeBigUInt64LE(1n, 28);
    vmdk.writeBigUInt64LE(20n, 36);
    vmdk.write('# Disk DescriptorFile\ncreateType="monolithicSparse"\n', 512, 'latin1');
    const { location } = await create(ALICE, vmdk.length);
    const done = await piece(ALICE, location, 0, vmdk);
    await ii.idle();
    const stored = await ii.repositories.images.get(done.headers.get('Upload-Image-Id') ?? '');
    expect(stored).toMatchObject({ status: 'available', format: 'qcow2', fileKey: expect.stringMatching(/\.qcow2$/) });
    // The fake hypervisor "converts" by copying: the object holds what it wrote, and its scratch file is gone.
    expect(world.files.get(`bucket:${stored?.fileKey}`)?.bytes.equals(vmdk)).toBe(true);
    expect([...world.files.keys()].filter((key) => key.startsWith('hv-1:'))).toEqual([]);
  });
});
