/**
 * The whole story of the feature on real infrastructure: libvirtd + QEMU TCG guests reached over the
 * real sshd (two hypervisor entries on this machine, separate directories), a real Ceph radosgw, and
 * the memory repositories. See issue 6.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutorPool, type ExecutorPool } from '../../../drivers/exec';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import {
  createInstanceImages,
  type Actor,
  type HostHypervisor,
  type HostInstance,
  type Image,
  type InstanceImages,
  type InstanceImagesEvents,
  type Task,
} from '../../../src';
import { createTestGuest, sh, uniqueSuffix, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { libvirtSkipReason } from '../libvirt/setup';
import {
  adminClient,
  allObjectKeys,
  createBucket,
  deleteBucket,
  freshBucketName,
  loadS3TestEnv,
  type S3TestEnv,
} from '../storage-s3/s3-env';

const admin: Actor = { kind: 'admin', userId: 'operator' };
const customer: Actor = { kind: 'customer', accountId: 'acct-e2e' };
const T0 = new Date('2026-11-03T10:00:00.000Z');
const HOUR = 3_600_000;

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const libvirtMissing = libvirtSkipReason();
const ssh = await sshTarget();
const s3 = await loadS3TestEnv();
const missing = libvirtMissing ?? ('skip' in ssh ? ssh.skip : null) ?? s3.missing;

describe.skipIf(missing !== null)(`the Instance Images story on real infrastructure${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const base = `/var/tmp/instance-images-test/e2e/${suffix}`;
  const bucket = freshBucketName('e2e');
  const clock = { now: T0 };
  const instances = new Map<string, HostInstance>();
  const hypervisors = new Map<string, HostHypervisor>();
  const guests: TestGuest[] = [];
  let deployedGuest: string | null = null;
  let pool: ExecutorPool;
  let ii: InstanceImages;
  let env: S3TestEnv;
  const progress: Task[] = [];
  let localStorageId = '';
  let s3StorageId = '';

  beforeAll(async () => {
    if ('skip' in ssh || !s3.env) throw new Error('unreachable');
    env = s3.env;
    await createBucket(adminClient(env), bucket);
    mkdirSync(`${base}/images-a`, { recursive: true });
    for (const id of ['hv-a', 'hv-b']) {
      hypervisors.set(id, { id, name: id, locationId: 'loc-e2e', connection: ssh.connection, scratchDir: `${base}/scratch-${id}` });
    }
    const g1 = createTestGuest({ diskMiB: 64 });
    const g2 = createTestGuest({ diskMiB: 64, writes: ['write -P 0x11 0 2M', 'write -P 0x22 40M 1M'] });
    guests.push(g1, g2);
    instances.set('vm-1', {
      id: 'vm-1',
      name: 'web-1',
      accountId: 'acct-e2e',
      locationId: 'loc-e2e',
      hypervisorId: 'hv-a',
      domainName: g1.name,
    });
    instances.set('vm-2', {
      id: 'vm-2',
      name: 'db-1',
      accountId: 'acct-e2e',
      locationId: 'loc-e2e',
      hypervisorId: 'hv-b',
      domainName: g2.name,
    });
    instances.set('vm-3', {
      id: 'vm-3',
      name: 'from-image',
      accountId: 'acct-e2e',
      locationId: 'loc-e2e',
      hypervisorId: 'hv-b',
      domainName: `ii-e2e-deployed-${suffix}`,
    });
    pool = createExecutorPool();
    ii = createInstanceImages({
      hostDirectory: { getInstance: async (id) => instances.get(id) ?? null, getHypervisor: async (id) => hypervisors.get(id) ?? null },
      executors: pool.executorFor,
      hypervisorDriver: createLibvirtDriver,
      storageDrivers: builtinStorageDrivers,
      clock: () => clock.now,
      tasks: { progressIntervalMs: 0 },
    });
    ii.events.on('task.progress', ({ task }) => progress.push(task));
  });

  afterAll(async () => {
    await ii?.close();
    await pool?.close();
    for (const guest of guests) guest.remove();
    if (deployedGuest) {
      sh('virsh', '-c', 'qemu:///system', 'destroy', '--domain', deployedGuest);
      sh('virsh', '-c', 'qemu:///system', 'undefine', '--domain', deployedGuest);
    }
    rmSync(base, { recursive: true, force: true });
    if (env) await deleteBucket(adminClient(env), bucket).catch(() => undefined);
  });

  it('an operator sets up a local and an S3 image storage, the price and a cap of 2', async () => {
    const local = await ii.storages.createStorage(admin, { name: 'local on hv-a', driver: 'local', config: { path: `${base}/images-a` } });
    const remote = await ii.storages.createStorage(admin, {
      name: 'radosgw',
      driver: 's3',
      config: {
        endpoint: env.endpoint,
        region: env.region,
        bucket,
        prefix: 'customer-images',
        accessKeyId: env.accessKeyId,
        secretAccessKey: env.secretAccessKey,
        forcePathStyle: true,
      },
    });
    expect(remote.config.secretAccessKey).toBe('********');
    await ii.storages.bindHypervisor(admin, local.id, 'hv-a');
    await ii.storages.bindHypervisor(admin, remote.id, 'hv-b');
    localStorageId = local.id;
    s3StorageId = remote.id;
    expect((await ii.storages.checkHealth(admin, local.id)).ok).toBe(true);
    expect((await ii.storages.checkHealth(admin, remote.id)).ok).toBe(true);
    await ii.settings.setLocationSettings(admin, 'loc-e2e', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 2 });
  });

  let first: Image;
  let second: Image;

  it('a customer captures a running guest into each storage and watches it become Available', async () => {
    const a = await ii.images.createImage(customer, { instanceId: 'vm-1', name: 'web-1 golden' });
    const b = await ii.images.createImage(customer, { instanceId: 'vm-2', name: 'db-1 golden' });
    expect(a.image.status).toBe('creating');
    expect(a.image.storageId).toBe(localStorageId);
    expect(b.image.storageId).toBe(s3StorageId);
    first = await waitFor('first image available', async () => {
      const image = await ii.images.getImage(customer, a.image.id);
      if (image.status === 'error') throw new Error(`capture failed: ${JSON.stringify(image.statusReason)}`);
      return image.status === 'available' ? image : null;
    });
    second = await waitFor('second image available', async () => {
      const image = await ii.images.getImage(customer, b.image.id);
      if (image.status === 'error') throw new Error(`capture failed: ${JSON.stringify(image.statusReason)}`);
      return image.status === 'available' ? image : null;
    });
    expect(progress.some((t) => t.subjectId === a.image.id && t.progress.bytesDone > 0)).toBe(true);
    expect(progress.some((t) => t.subjectId === b.image.id)).toBe(true);
    // the guests are still running
    for (const guest of guests) expect(virsh('domstate', '--domain', guest.name).trim()).toBe('running');
  });

  it('My Images shows both with the sizes really stored', async () => {
    const mine = await ii.images.listImages(customer);
    expect(mine.items.map((i) => i.name).sort()).toEqual(['db-1 golden', 'web-1 golden']);
    const localPath = `${base}/images-a/${first.fileKey}`;
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', localPath], { encoding: 'utf8' })) as {
      'actual-size': number;
      'virtual-size': number;
      format: string;
    };
    expect(info.format).toBe('qcow2');
    expect(info['virtual-size']).toBe(64 * 1024 * 1024);
    const { statSync } = await import('node:fs');
    expect(first.sizeBytes).toBe(statSync(localPath).size);
    const { createHash } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    expect(createHash('sha256').update(readFileSync(localPath)).digest('hex')).toBe(first.sha256);
    expect(first.sizeBytes).toBeGreaterThan(0);
    expect(second.sizeBytes).toBeGreaterThan(0);
    expect(second.sha256).toMatch(/^[0-9a-f]{64}$/);
    const keys = await allObjectKeys(adminClient(env), bucket);
    expect(keys).toEqual([`customer-images/${second.fileKey}`]);
    expect(first.consistency).toMatch(/crash-consistent|filesystem-frozen/);
  });

  it('a third capture hits the cap', async () => {
    await expect(ii.images.createImage(customer, { instanceId: 'vm-1', name: 'one too many' })).rejects.toMatchObject({
      code: 'IMAGE_LIMIT_REACHED',
      message: 'Maximum image limit reached',
    });
  });

  it('deploys the local image onto the other hypervisor, boots it, and it survives the image deletion', async () => {
    const target = `${base}/deployed/vm-3.qcow2`;
    mkdirSync(`${base}/deployed`, { recursive: true });
    const deployed = new Promise<InstanceImagesEvents['image.deployed']>((resolve) => ii.events.on('image.deployed', resolve));
    // The deploy answers at once with its queued task; the disk exists once the task completes.
    const { task } = await ii.catalog.deployImage(customer, {
      imageId: first.id,
      instanceId: 'vm-3',
      targetPath: target,
      sizeBytes: 128 * 1024 * 1024,
    });
    expect(task).toMatchObject({ type: 'deploy', status: 'queued' });
    expect((await ii.images.waitForTask(customer, task.id)).status).toBe('completed');
    const { result } = await deployed;
    expect(result).toEqual({ path: target, format: 'qcow2', virtualSizeBytes: 128 * 1024 * 1024 });
    const domain = instances.get('vm-3')!.domainName;
    const xmlPath = `${base}/deployed/domain.xml`;
    writeFileSync(
      xmlPath,
      `<domain type='qemu'><name>${domain}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${target}'/><target dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>`,
    );
    virsh('define', '--file', xmlPath);
    deployedGuest = domain;
    virsh('start', '--domain', domain);
    expect(virsh('domstate', '--domain', domain).trim()).toBe('running');

    clock.now = new Date(T0.getTime() + 5 * HOUR);
    await ii.images.deleteImage(customer, first.id);
    await waitFor('first image deleted', async () => ((await ii.repositories.images.get(first.id))?.status === 'deleted' ? true : null));
    expect(existsSync(`${base}/images-a/${first.fileKey}`)).toBe(false);
    virsh('destroy', '--domain', domain);
    virsh('start', '--domain', domain);
    expect(virsh('domstate', '--domain', domain).trim()).toBe('running');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', target], { encoding: 'utf8' })) as Record<
      string,
      unknown
    >;
    expect(info['backing-filename']).toBeUndefined();
  });

  it('the usage report shows both images with the hours they were billed', async () => {
    // the report is made after the month ended, so the open interval is billed to the period end
    clock.now = new Date('2026-12-02T00:00:00.000Z');
    const report = await ii.settings.usageReport(customer, { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    const byId = new Map(report.images.lines.map((l) => [l.imageId, l]));
    expect(byId.get(first.id)?.billedHours).toBe('5');
    // still open at the end of the period: 2026-11-03T10:00 .. 2026-12-01T00:00 = 662 h
    expect(byId.get(second.id)?.billedHours).toBe('662');
    expect(byId.get(first.id)?.rate).toBe('0.05');
    expect(byId.get(second.id)?.sizeBytes).toBe(second.sizeBytes);
    // amount = size / 2^30 GiB × 0.05 per GB-month × hours / 730, checked as an exact fraction
    for (const [image, hours] of [
      [first, 5n],
      [second, 662n],
    ] as const) {
      const line = byId.get(image.id)!;
      const [num, den] = line.exactAmount.includes('/')
        ? (line.exactAmount.split('/') as [string, string])
        : [line.exactAmount.replace('.', ''), `1${'0'.repeat(line.exactAmount.split('.')[1]?.length ?? 0)}`];
      const sizeBytes = BigInt(image.sizeBytes ?? 0);
      expect(BigInt(num) * (2n ** 30n * 100n * 730n)).toBe(BigInt(den) * (sizeBytes * 5n * hours));
      expect(line.amount).toMatch(/^\d+\.\d{2}$/);
    }
    expect(report.images.total).toMatch(/^\d+\.\d{2}$/);
  });

  it('the image browser finds a planted orphan and a stale image; reconcile removes the orphan', async () => {
    mkdirSync(`${base}/images-a/images`, { recursive: true });
    writeFileSync(`${base}/images-a/images/planted-orphan.qcow2`, 'not an image');
    const localFiles = await ii.storages.browse(admin, localStorageId, { hypervisorId: 'hv-a' });
    expect(localFiles.items.find((f) => f.key === 'images/planted-orphan.qcow2')?.kind).toBe('orphan');
    instances.delete('vm-2');
    const remoteFiles = await ii.storages.browse(admin, s3StorageId);
    expect(remoteFiles.items.find((f) => f.imageId === second.id)?.kind).toBe('stale');
    const findings = await ii.storages.reconcile(admin, localStorageId, { hypervisorId: 'hv-a', deleteOrphans: true, dryRun: false });
    expect(findings.find((f) => f.key === 'images/planted-orphan.qcow2')?.action).toBe('deleted-file');
    expect(existsSync(`${base}/images-a/images/planted-orphan.qcow2`)).toBe(false);
  });

  it('host lifecycle hooks: a deleted instance keeps its image, a suspended account captures nothing, closing deletes every file and stops billing', async () => {
    // vm-2 is gone from the host directory (the case above): its image stays, marked
    const instanceGoneAt = new Date('2026-12-03T00:00:00.000Z');
    clock.now = instanceGoneAt;
    const { images: marked } = await ii.accounts.instanceDeleted(admin, 'vm-2');
    expect(marked.map((i) => [i.id, i.status, i.sourceInstanceDeletedAt])).toEqual([[second.id, 'available', instanceGoneAt]]);
    const secondKey = `customer-images/${second.fileKey}`;
    expect(await allObjectKeys(adminClient(env), bucket)).toContain(secondKey);

    await ii.accounts.suspendAccount(admin, 'acct-e2e');
    const refused = await ii.images.createImage(customer, { instanceId: 'vm-1', name: 'while suspended' }).then(
      () => null,
      (error: { code?: string }) => error.code,
    );
    expect(refused).toBe('ACCOUNT_SUSPENDED');
    expect((await ii.images.listTasks(admin, { type: 'capture', status: 'queued' })).items).toEqual([]);

    const closedAt = new Date('2026-12-04T00:00:00.000Z');
    clock.now = closedAt;
    const { state, task } = await ii.accounts.closeAccount(admin, 'acct-e2e');
    expect(state).toMatchObject({ status: 'closed', since: closedAt });
    expect((await ii.images.waitForTask(admin, task!.id)).status).toBe('completed');
    await ii.idle();
    expect((await ii.repositories.images.get(second.id))?.status).toBe('deleted');
    expect(await allObjectKeys(adminClient(env), bucket)).not.toContain(secondKey);
    const intervals = (await ii.repositories.usage.list({ imageId: second.id })).items;
    expect(intervals.every((i) => i.to !== null)).toBe(true);
    expect(Math.max(...intervals.map((i) => i.to!.getTime()))).toBe(closedAt.getTime());
  });
});
