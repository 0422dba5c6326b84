/**
 * Images that move, on real infrastructure: a guest captured into a local path storage on one
 * hypervisor is copied to a real Ceph radosgw bucket (checksum verified), shared with another
 * account, deployed by that account from the copy onto another hypervisor and booted; revoking the
 * share stops new deploys and leaves the running instance alone. Issue 16.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
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
} from '../../../src';
import { createTestGuest, sh, uniqueSuffix, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { libvirtSkipReason } from '../libvirt/setup';
import { adminClient, createBucket, deleteBucket, freshBucketName, loadS3TestEnv, type S3TestEnv } from '../storage-s3/s3-env';

const admin: Actor = { kind: 'admin', userId: 'operator' };
const owner: Actor = { kind: 'customer', accountId: 'acct-owner' };
const friend: Actor = { kind: 'customer', accountId: 'acct-friend' };

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function available(ii: InstanceImages, actor: Actor, imageId: string): Promise<Image> {
  return waitFor(`image ${imageId} available`, async () => {
    const image = await ii.images.getImage(actor, imageId);
    if (image.status === 'error') throw new Error(`image failed: ${JSON.stringify(image.statusReason)}`);
    return image.status === 'available' ? image : null;
  });
}

const libvirtMissing = libvirtSkipReason();
const ssh = await sshTarget();
const s3 = await loadS3TestEnv();
const missing = libvirtMissing ?? ('skip' in ssh ? ssh.skip : null) ?? s3.missing;

describe.skipIf(missing !== null)(`images that move on real infrastructure${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const suffix = uniqueSuffix();
  const base = `/var/tmp/instance-images-test/moves/${suffix}`;
  const bucket = freshBucketName('moves');
  const instances = new Map<string, HostInstance>();
  const hypervisors = new Map<string, HostHypervisor>();
  const guests: TestGuest[] = [];
  let deployed: string | null = null;
  let pool: ExecutorPool;
  let ii: InstanceImages;
  let env: S3TestEnv;

  beforeAll(async () => {
    if ('skip' in ssh || !s3.env) throw new Error('unreachable');
    env = s3.env;
    await createBucket(adminClient(env), bucket);
    mkdirSync(`${base}/images-a`, { recursive: true });
    mkdirSync(`${base}/deployed`, { recursive: true });
    for (const id of ['hv-a', 'hv-b']) {
      hypervisors.set(id, { id, name: id, locationId: 'loc-moves', connection: ssh.connection, scratchDir: `${base}/scratch-${id}` });
    }
    const guest = createTestGuest({ diskMiB: 64, writes: ['write -P 0x5a 0 2M', 'write -P 0x6b 30M 1M'] });
    guests.push(guest);
    instances.set('vm-owner', {
      id: 'vm-owner',
      name: 'web-1',
      accountId: 'acct-owner',
      locationId: 'loc-moves',
      hypervisorId: 'hv-a',
      domainName: guest.name,
    });
    instances.set('vm-friend', {
      id: 'vm-friend',
      name: 'friend-1',
      accountId: 'acct-friend',
      locationId: 'loc-moves',
      hypervisorId: 'hv-b',
      domainName: `ii-moves-deployed-${suffix}`,
    });
    pool = createExecutorPool();
    ii = createInstanceImages({
      hostDirectory: { getInstance: async (id) => instances.get(id) ?? null, getHypervisor: async (id) => hypervisors.get(id) ?? null },
      executors: pool.executorFor,
      hypervisorDriver: createLibvirtDriver,
      storageDrivers: builtinStorageDrivers,
      tasks: { progressIntervalMs: 0 },
    });
  });

  afterAll(async () => {
    await ii?.close();
    await pool?.close();
    for (const guest of guests) guest.remove();
    if (deployed) {
      sh('virsh', '-c', 'qemu:///system', 'destroy', '--domain', deployed);
      sh('virsh', '-c', 'qemu:///system', 'undefine', '--domain', deployed);
    }
    rmSync(base, { recursive: true, force: true });
    if (env) await deleteBucket(adminClient(env), bucket).catch(() => undefined);
  });

  it('copies a local image to radosgw (checksum verified), shares it, the recipient deploys and boots it, revoke leaves it running', async () => {
    const local = await ii.storages.createStorage(admin, { name: 'local on hv-a', driver: 'local', config: { path: `${base}/images-a` } });
    const remote = await ii.storages.createStorage(admin, {
      name: 'radosgw',
      driver: 's3',
      config: {
        endpoint: env.endpoint,
        region: env.region,
        bucket,
        prefix: 'copies',
        accessKeyId: env.accessKeyId,
        secretAccessKey: env.secretAccessKey,
        forcePathStyle: true,
      },
    });
    await ii.storages.bindHypervisor(admin, local.id, 'hv-a');
    await ii.storages.bindHypervisor(admin, remote.id, 'hv-b');
    await ii.settings.setLocationSettings(admin, 'loc-moves', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 5 });

    const captured = await ii.images.createImage(owner, { instanceId: 'vm-owner', name: 'golden' });
    expect(captured.image.storageId).toBe(local.id);
    const original = await available(ii, owner, captured.image.id);

    const { image: started, task } = await ii.copies.copyImage(admin, original.id, { storageId: remote.id, name: 'golden (radosgw)' });
    expect(started.hypervisorId).toBeNull();
    const copy = await available(ii, owner, started.id);
    expect(copy.sha256).toBe(original.sha256);
    expect(copy.sizeBytes).toBe(original.sizeBytes);
    const finished = await ii.images.getTask(owner, task.id);
    expect(finished).toMatchObject({ type: 'copy', status: 'completed', progress: { percent: 100, bytesDone: original.sizeBytes } });
    // the object in the bucket really holds the bytes of the original
    const object = await adminClient(env).send(new GetObjectCommand({ Bucket: bucket, Key: `copies/${copy.fileKey}` }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(original.sha256);
    // two images, two usage lines (the copy is billed on its own)
    const open = await ii.repositories.usage.list({ accountId: 'acct-owner', openOnly: true });
    expect(open.items.map((i) => i.imageId).sort()).toEqual([original.id, copy.id].sort());

    const share = await ii.sharing.shareImage(owner, copy.id, { accountId: 'acct-friend' });
    await ii.sharing.acceptShare(friend, share.id);
    expect((await ii.catalog.listDeployableImages(friend)).sharedWithMe.map((i) => i.id)).toEqual([copy.id]);
    const target = `${base}/deployed/vm-friend.qcow2`;
    const deployedEvent = new Promise<InstanceImagesEvents['image.deployed']>((resolve) => ii.events.on('image.deployed', resolve));
    const deploy = await ii.catalog.deployImage(friend, { imageId: copy.id, instanceId: 'vm-friend', targetPath: target });
    expect((await ii.images.waitForTask(friend, deploy.task.id)).status).toBe('completed');
    const { result } = await deployedEvent;
    expect(result.virtualSizeBytes).toBe(64 * 1024 * 1024);
    const domain = instances.get('vm-friend')!.domainName;
    const xmlPath = `${base}/deployed/domain.xml`;
    writeFileSync(
      xmlPath,
      `<domain type='qemu'><name>${domain}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${target}'/><target dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>`,
    );
    virsh('define', '--file', xmlPath);
    deployed = domain;
    virsh('start', '--domain', domain);
    expect(virsh('domstate', '--domain', domain).trim()).toBe('running');
    // the deployed disk holds the guest's data
    const read = sh('qemu-io', '-U', '-f', 'qcow2', '-r', '-c', 'read -P 0x6b 30M 1M', target);
    expect(read.code).toBe(0);
    expect(read.stdout + read.stderr).not.toMatch(/Pattern verification failed/);

    await ii.sharing.revokeShare(owner, share.id);
    await expect(
      ii.catalog.deployImage(friend, { imageId: copy.id, instanceId: 'vm-friend', targetPath: `${base}/deployed/vm-friend-2.qcow2` }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(virsh('domstate', '--domain', domain).trim()).toBe('running');
    virsh('destroy', '--domain', domain);
    virsh('start', '--domain', domain);
    expect(virsh('domstate', '--domain', domain).trim()).toBe('running');
    // the friend pays nothing
    expect((await ii.repositories.usage.list({ accountId: 'acct-friend' })).items).toEqual([]);
  });
});
