/**
 * URL imports fetched by the hypervisor itself (`imports.fetchOnHypervisor`), reached over the
 * real sshd, into a local (path) storage, from a local HTTP server of our own under a host name
 * that only the panel's resolver knows (so curl succeeds only when pinned with --resolve): a qcow2
 * (kept as fetched), a raw image, an xz-compressed qcow2 whose connection drops midway (resumed
 * with Range and If-Range) with its checksum; a host resolving to a refused address (refused
 * before anything runs on the hypervisor); a redirect followed by the panel and one to a refused
 * address; the size limit, also against a server that sends no Content-Length and never ends; a
 * checksum mismatch; a cancel while curl downloads; a URL full of shell syntax. Nothing is left in the storage after a failure, and no curl keeps running.
 */
import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type Actor, type ImportOptions, type InstanceImages } from '../../../src';
import { destinationRules } from '../../../src/import/address';
import { fetchOnHypervisor } from '../../../src/import/remote-fetch';
import type { Executor } from '../../../src/ports/executor';
import type { HostHypervisor } from '../../../src/ports/host-directory';
import { sh } from '../../support/guests';
import { serveBytes, type ImageServer, type ImageServerOptions } from '../../support/image-server';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, imagesIdentical, libvirtSkipReason } from '../libvirt/setup';

const target = await sshTarget();
const skip = libvirtSkipReason() ?? ('skip' in target ? target.skip : null);
const ADMIN: Actor = { kind: 'admin' };
const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** Host names only the panel's resolver knows. */
const HOSTS: Record<string, string> = { 'images.test': '127.0.0.2', 'internal.test': '127.0.0.1' };

function run(program: string, ...args: string[]): void {
  const result = sh(program, ...args);
  if (result.code !== 0) throw new Error(`${program} ${args.join(' ')} failed: ${result.stderr}`);
}

/** Files below `dir` (relative), and work directories of fetches. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() || entry.name.includes('.fetch-'))
    .map((entry) => `${entry.parentPath.slice(dir.length)}/${entry.name}`);
}

/** The processes of this machine whose command line contains `text` (curl's, when one runs). */
const processesWith = (text: string) =>
  execFileSync('ps', ['-eo', 'pid,pgid,stat,args'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(text));

describe.skipIf(skip !== null)(`URL import fetched on the hypervisor over SSH${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let work: string;
  let storageDir: string;
  let scratch: string;
  let source: string;
  const servers: ImageServer[] = [];
  const instances: InstanceImages[] = [];
  const commands: string[][] = [];
  const executors: Executor[] = [];

  /** An instance whose hypervisor is this machine over sshd, every command it runs there recorded. */
  const instance = async (imports: ImportOptions = {}) => {
    if ('skip' in target) throw new Error('no sshd');
    const ssh = createSshExecutor(target.connection);
    executors.push(ssh);
    const recording: Executor = {
      ...ssh,
      run: (argv, options) => (commands.push([...argv]), ssh.run(argv, options)),
      stream: (argv, options) => (commands.push([...argv]), ssh.stream(argv, options)),
    };
    const hypervisor: HostHypervisor = { id: 'hv-ssh', name: 'ssh', locationId: 'loc', connection: target.connection, scratchDir: scratch };
    const ii = createInstanceImages({
      hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null) },
      storageDrivers: builtinStorageDrivers,
      executors: () => recording,
      hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
      imports: {
        allowNetworks: ['127.0.0.2/32'],
        idleTimeoutMs: 5000,
        fetchOnHypervisor: true,
        resolveHost: async (name) => (HOSTS[name] ? [{ address: HOSTS[name], family: 4 }] : []),
        ...imports,
      },
    });
    instances.push(ii);
    await ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, urlImportEnabled: true });
    const storage = await ii.storages.createStorage(ADMIN, {
      name: `local ${instances.length}`,
      driver: 'local',
      config: { path: storageDir },
    });
    await ii.storages.bindHypervisor(ADMIN, storage.id, hypervisor.id);
    return ii;
  };
  let ii: InstanceImages;

  const serve = async (bytes: Buffer, options: ImageServerOptions = {}) => {
    const server = await serveBytes(bytes, { host: '127.0.0.2', ...options });
    servers.push(server);
    return server;
  };
  /** The server's URL under the host name only the panel resolves. */
  const named = (server: ImageServer, path = '/image') => `${server.origin.replace('127.0.0.2', 'images.test')}${path}`;
  /** curl's --resolve entry for the server (in its argv while it runs). */
  const pinOf = (server: ImageServer) => `images.test:${new URL(server.origin).port}:127.0.0.2`;
  const importFrom = async (url: string, extra: { sha256?: string } = {}, into = ii) => {
    commands.length = 0;
    const started = await into.imports.importImage(ALICE, { url, name: 'fetched disk', locationId: 'loc', ...extra });
    await into.idle();
    return { image: await into.repositories.images.get(started.image.id), task: await into.repositories.tasks.get(started.task.id) };
  };
  const curlRuns = () => commands.filter((argv) => argv.join(' ').includes('curl -sS')).length;
  /** Commands that hash a file already written (the download after a resume, or the stored file). */
  const fileHashes = () => commands.filter((argv) => argv.some((a) => a.includes('hash256 < "$1"')));

  beforeAll(async () => {
    work = freshScratchDir('fetch-work');
    storageDir = freshScratchDir('fetch-storage');
    scratch = freshScratchDir('fetch-scratch');
    source = `${work}/source.qcow2`;
    run('qemu-img', 'create', '-q', '-f', 'qcow2', source, '64M');
    run('qemu-io', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 20M 3M', source);
    ii = await instance();
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    for (const instance of instances) await instance.close();
    for (const executor of executors) await executor.close();
    for (const dir of [work, storageDir, scratch]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a qcow2 on the hypervisor (pinned to the address the panel checked) and keeps it as fetched', async () => {
    const server = await serve(readFileSync(source));
    const { image, task } = await importFrom(named(server));
    expect(task).toMatchObject({ status: 'completed', progress: { percent: 100 } });
    expect(image).toMatchObject({
      status: 'available',
      format: 'qcow2',
      virtualSizeBytes: 64 * 1024 * 1024,
      sha256: sha256(readFileSync(source)),
    });
    expect(curlRuns()).toBe(1);
    // Hashed by the fetch itself, in the same command: no other command reads the download or the stored file to hash it.
    expect(fileHashes()).toEqual([]);
    // Nothing but curl between the work directory and the driver: its first bytes came with the download.
    expect(commands.filter((argv) => argv[0] === 'head' || argv[0] === 'setsid').map((argv) => argv[0])).toEqual(['setsid']);
    const stored = `${storageDir}/${image?.fileKey}`;
    expect(sha256(readFileSync(stored))).toBe(sha256(readFileSync(source)));
    expect(filesBelow(storageDir)).toEqual([`/${image?.fileKey}`]);
    await ii.images.deleteImage(ALICE, image?.id ?? '');
    await ii.idle();
  });

  it('fetches a raw image, and an xz-compressed qcow2 whose connection drops midway (resumed with Range), checking its sha256', async () => {
    const raw = `${work}/source.raw`;
    run('qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', source, raw);
    const plain = await importFrom(named(await serve(readFileSync(raw))));
    expect(plain.task?.status).toBe('completed');
    expect(curlRuns()).toBe(1);
    const storedRaw = `${storageDir}/${plain.image?.fileKey}`;
    expect(sha256(readFileSync(storedRaw))).toBe(plain.image?.sha256);
    expect(imagesIdentical(source, storedRaw)).toBe(true);

    run('sh', '-c', `xz -1 -k -c -- '${source}' > '${work}/source.qcow2.xz'`);
    const xz = readFileSync(`${work}/source.qcow2.xz`);
    const cut = Math.floor(xz.length / 2);
    const server = await serve(xz, { cutAfter: cut });
    const compressed = await importFrom(named(server), { sha256: sha256(readFileSync(source)) });
    expect(compressed.task?.status).toBe('completed');
    expect(compressed.image).toMatchObject({ status: 'available', sha256: sha256(readFileSync(source)) });
    expect(server.requests.map((r) => [r.status, r.range, r.ifRange])).toEqual([
      [200, null, null],
      [206, `bytes=${cut}-`, '"v1"'],
    ]);
    expect(curlRuns()).toBe(2);
    expect(imagesIdentical(source, `${storageDir}/${compressed.image?.fileKey}`)).toBe(true);
    for (const image of [plain.image, compressed.image]) await ii.images.deleteImage(ALICE, image?.id ?? '');
    await ii.idle();
    expect(filesBelow(storageDir)).toEqual([]);
  });

  it('hashes a plain qcow2 resumed after a cut from the file: kept as fetched, its sha256 recorded and checked', async () => {
    const bytes = readFileSync(source);
    const plain = await importFrom(named(await serve(bytes, { cutAfter: Math.floor(bytes.length / 2) })));
    expect(plain.task?.status).toBe('completed');
    expect(curlRuns()).toBe(2);
    expect(plain.image?.sha256).toBe(sha256(bytes));
    // The whole file, appended to by the resume, is hashed by the fetch's last request.
    expect(fileHashes()).toEqual([]);
    const checked = await importFrom(named(await serve(bytes, { cutAfter: Math.floor(bytes.length / 3) })), { sha256: sha256(bytes) });
    expect(checked.image).toMatchObject({ status: 'available', sha256: sha256(bytes) });
    const wrong = await importFrom(named(await serve(bytes, { cutAfter: Math.floor(bytes.length / 3) })), { sha256: 'e'.repeat(64) });
    expect(wrong.task?.errorCode).toBe('CHECKSUM_MISMATCH');
    for (const image of [plain.image, checked.image]) await ii.images.deleteImage(ALICE, image?.id ?? '');
    await ii.idle();
    expect(filesBelow(storageDir)).toEqual([]);
  });

  it('refuses a host resolving to a refused address before anything runs on the hypervisor', async () => {
    const loopback = await serveBytes(readFileSync(source), { host: '127.0.0.1' });
    servers.push(loopback);
    const refused = await importFrom(`${loopback.origin.replace('127.0.0.1', 'internal.test')}/image`);
    expect(refused.task?.errorCode).toBe('DESTINATION_REFUSED');
    // Only the free-space probe of the storage pick, when the import was requested.
    expect(commands.filter((argv) => !argv.join(' ').includes('df -B1'))).toEqual([]);
    expect(loopback.requests).toEqual([]);
    // The same import from an allowed address runs on the hypervisor.
    const allowed = await importFrom(named(await serve(readFileSync(source))));
    expect([allowed.task?.status, curlRuns()]).toEqual(['completed', 1]);
    await ii.images.deleteImage(ALICE, allowed.image?.id ?? '');
    await ii.idle();
  });

  it('follows a redirect itself, each one checked and pinned again, and refuses one to a refused address', async () => {
    const loopback = await serveBytes(readFileSync(source), { host: '127.0.0.1' });
    servers.push(loopback);
    const image = await serve(readFileSync(source));
    const redirecting = await serve(Buffer.alloc(0), {
      redirects: { '/ok': named(image), '/bad': `${loopback.origin.replace('127.0.0.1', 'internal.test')}/image` },
    });
    const followed = await importFrom(named(redirecting, '/ok'));
    expect(followed.task?.status).toBe('completed');
    expect([redirecting.requests.map((r) => r.status), image.requests.map((r) => r.status), curlRuns()]).toEqual([[302], [200], 2]);
    const refused = await importFrom(named(redirecting, '/bad'));
    expect(refused.task?.errorCode).toBe('DESTINATION_REFUSED');
    expect(curlRuns()).toBe(1);
    expect(loopback.requests).toEqual([]);
    await ii.images.deleteImage(ALICE, followed.image?.id ?? '');
    await ii.idle();
    expect(filesBelow(storageDir)).toEqual([]);
  });

  it('stops at the size limit and at a checksum mismatch, leaving nothing', async () => {
    const limited = await instance({ maxDownloadBytes: 1024 * 1024 });
    const big = await importFrom(named(await serve(readFileSync(source))), {}, limited);
    expect(big.task).toMatchObject({ errorCode: 'DOWNLOAD_FAILED', errorMessage: expect.stringMatching(/limit of 1048576/) });
    expect(curlRuns()).toBe(1);
    const mismatch = await importFrom(named(await serve(readFileSync(source))), { sha256: 'f'.repeat(64) });
    expect(mismatch.task?.errorCode).toBe('CHECKSUM_MISMATCH');
    expect(mismatch.image).toMatchObject({ status: 'error', statusReason: { code: 'CHECKSUM_MISMATCH' } });
    expect(curlRuns()).toBe(1);
    expect(filesBelow(storageDir)).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('fetches an image exactly as large as the size limit whole, however curl hands its bytes on, and refuses one byte more', async () => {
    const bytes = readFileSync(source);
    // Not a multiple of any block size: the limit must count bytes, not blocks or reads.
    const odd = Buffer.concat([bytes, Buffer.alloc(12345)]);
    const limited = await instance({ maxDownloadBytes: odd.length });
    // The expected checksum proves every byte arrived.
    const whole = await importFrom(named(await serve(odd)), { sha256: sha256(odd) }, limited);
    expect([whole.task?.status, whole.image?.status]).toEqual(['completed', 'available']);
    // Without a Content-Length (only the client can judge it), in small pieces.
    const chunked = await importFrom(named(await serve(odd, { chunked: true })), { sha256: sha256(odd) }, limited);
    expect([chunked.task?.status, chunked.image?.status]).toEqual(['completed', 'available']);
    const over = await importFrom(named(await serve(Buffer.concat([odd, Buffer.alloc(1)]), { chunked: true })), {}, limited);
    expect(over.task).toMatchObject({
      errorCode: 'DOWNLOAD_FAILED',
      errorMessage: expect.stringMatching(new RegExp(`limit of ${odd.length}`)),
    });
    for (const image of [whole.image, chunked.image]) await limited.images.deleteImage(ALICE, image?.id ?? '');
    await limited.idle();
    expect(filesBelow(storageDir)).toEqual([]);
  });

  it('cuts a download without Content-Length (chunked, never ending) as soon as it passes the size limit, leaving nothing', async () => {
    const limit = 1024 * 1024;
    const limited = await instance({ maxDownloadBytes: limit });
    // The qcow2 sent again and again without a length: --max-filesize cannot judge it, only the client can end it.
    const server = await serve(readFileSync(source), { endless: true });
    const { image, task } = await importFrom(named(server), {}, limited);
    expect(task).toMatchObject({ status: 'failed', errorCode: 'DOWNLOAD_FAILED', errorMessage: expect.stringMatching(/limit of 1048576/) });
    expect(image).toMatchObject({ status: 'error', statusReason: { code: 'DOWNLOAD_FAILED' }, reservedBytes: null });
    expect(curlRuns()).toBe(1);
    // curl hung up once the limit was passed: the server wrote the limit and what the sockets
    // buffer, not what a fast link carries between two looks at the file's size.
    await expect.poll(() => server.requests.map((r) => [r.status, r.hungUp]), { timeout: 5000 }).toEqual([[200, true]]);
    expect(server.requests[0]?.sent).toBeLessThan(limit + 16 * 1024 * 1024);
    await expect.poll(() => processesWith(pinOf(server)), { timeout: 5000 }).toEqual([]);
    // No work directory, no part file, no usage.
    expect(filesBelow(storageDir)).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
    expect((await limited.repositories.usage.list({ imageId: image?.id ?? '' })).items).toEqual([]);
  });

  it('never lets the file grow past the limit + 1 byte (in 512-byte blocks), however fast an endless server sends', async () => {
    if ('skip' in target) throw new Error('no sshd');
    const ssh = createSshExecutor(target.connection);
    executors.push(ssh);
    const limit = 1024 * 1024 + 100;
    const server = await serve(readFileSync(source), { endless: true });
    const dir = `${scratch}/fetch-${randomUUID()}`;
    execFileSync('mkdir', ['-p', dir]);
    // Every size the script reported: while curl ran, and the file's size once it ended.
    const sizes: number[] = [];
    const fetching = fetchOnHypervisor(ssh, dir, new URL(named(server)), {
      rules: destinationRules({ allow: ['127.0.0.2/32'] }),
      maxRedirects: 0,
      maxBytes: limit,
      maxResumes: 0,
      idleTimeoutMs: 5000,
      resolve: async (name) => (HOSTS[name] ? [{ address: HOSTS[name], family: 4 }] : []),
      signal: new AbortController().signal,
      onDownloaded: (bytes) => sizes.push(bytes),
    });
    await expect(fetching).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', details: { reason: 'too-large' } });
    // curl wrote under a file size limit (limit + 1 byte, rounded up to 512-byte blocks): a write past it failed.
    expect(Math.max(...sizes)).toBeGreaterThan(limit);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(Math.ceil((limit + 1) / 512) * 512);
    rmSync(dir, { recursive: true, force: true });
  });

  it('cancels while curl downloads: curl is killed and nothing is left', async () => {
    const server = await serve(readFileSync(source), { stallAfter: 256 * 1024 });
    commands.length = 0;
    const started = await ii.imports.importImage(ALICE, { url: named(server), name: 'cancelled', locationId: 'loc' });
    await expect
      .poll(async () => (await ii.repositories.tasks.get(started.task.id))?.progress?.bytesDone ?? 0, { timeout: 15_000 })
      .toBeGreaterThan(0);
    expect(processesWith(pinOf(server)).some((line) => line.includes('curl -sS'))).toBe(true);
    await ii.imports.cancelImport(ALICE, started.task.id);
    await ii.idle();
    expect((await ii.repositories.images.get(started.image.id))?.status).toBe('error');
    await expect.poll(() => processesWith(pinOf(server)), { timeout: 5000 }).toEqual([]);
    expect(filesBelow(storageDir)).toEqual([]);
  });

  it('keeps the URL (its query token) out of every process list on the hypervisor while curl runs', async () => {
    const server = await serve(readFileSync(source), { stallAfter: 256 * 1024 });
    const token = `tok-${randomUUID()}`;
    const started = await ii.imports.importImage(ALICE, { url: `${named(server)}?sig=${token}`, name: 'secret', locationId: 'loc' });
    await expect
      .poll(async () => (await ii.repositories.tasks.get(started.task.id))?.progress?.bytesDone ?? 0, { timeout: 15_000 })
      .toBeGreaterThan(0);
    // curl runs (found by its --resolve pin), and the token shows nowhere in `ps -eo args`.
    expect(processesWith(pinOf(server)).some((line) => line.includes('curl -sS'))).toBe(true);
    expect(processesWith(token)).toEqual([]);
    expect(server.requests[0]?.target).toBe(`/image?sig=${token}`);
    await ii.imports.cancelImport(ALICE, started.task.id);
    await ii.idle();
    await expect.poll(() => processesWith(pinOf(server)), { timeout: 5000 }).toEqual([]);
  });

  it('passes a URL full of shell syntax to curl as one argument', async () => {
    const marker = `${work}/pwned`;
    const server = await serve(readFileSync(source));
    const hostile = `${named(server)}?a='$(touch${'${IFS}'}${marker})'&b="\`touch ${marker}\`"&c=;touch ${marker}&d=%0Atouch`;
    const { image, task } = await importFrom(hostile);
    expect(task?.status).toBe('completed');
    expect(curlRuns()).toBe(1);
    expect(existsSync(marker)).toBe(false);
    await ii.images.deleteImage(ALICE, image?.id ?? '');
    await ii.idle();
  });
});
