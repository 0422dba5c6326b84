import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { sha256 } from '../../support/fakes';
import type { InstanceImagesEvents } from '../../../src';
import { admin, alice, bob, codeOf, deployAndWait, setup, type Harness } from './setup';

async function withTemplates(h: Harness) {
  const templates = await h.ii.storages.createStorage(admin, {
    name: 'templates',
    driver: 'fake-s3',
    purpose: 'templates',
    config: { root: 'tpl' },
  });
  await h.ii.storages.bindHypervisor(admin, templates.id, 'hv-1');
  const isoStore = await h.ii.storages.createStorage(admin, {
    name: 'iso-store',
    driver: 'fake-local',
    purpose: 'templates',
    config: { root: '/isos' },
  });
  await h.ii.storages.bindHypervisor(admin, isoStore.id, 'hv-1');
  const debian = Buffer.from('debian 12 qcow2 bytes');
  h.world.files.set('tpl:os/debian-12.qcow2', { bytes: debian, modifiedAt: new Date() });
  return { templates, isoStore, debian };
}

describe('catalog: media groups, OS images, OS picker, deploy, ISOs', () => {
  it('the OS picker shows visible groups with their stock images plus My Images', async () => {
    const h = await setup();
    const { templates, debian } = await withTemplates(h);
    const linux = await h.ii.catalog.createMediaGroup(admin, { name: 'Linux', order: 1 });
    const hidden = await h.ii.catalog.createMediaGroup(admin, { name: 'Internal', customerVisible: false });
    expect(await codeOf(h.ii.catalog.createMediaGroup(alice, { name: 'x' }))).toBe('FORBIDDEN');
    const os = await h.ii.catalog.createOsImage(admin, {
      name: 'Debian 12',
      osType: 'linux',
      cloudInit: true,
      storageId: templates.id,
      fileKey: 'os/debian-12.qcow2',
      mediaGroupId: linux.id,
    });
    expect(os).toMatchObject({ kind: 'stock', status: 'available', sizeBytes: debian.length, sha256: sha256(debian), cloudInit: true });
    await h.ii.catalog.createOsImage(admin, {
      name: 'Secret',
      osType: 'linux',
      storageId: templates.id,
      fileKey: 'os/debian-12.qcow2',
      mediaGroupId: hidden.id,
    });
    expect(
      await codeOf(
        h.ii.catalog.createOsImage(admin, { name: 'Missing', osType: 'bsd', storageId: templates.id, fileKey: 'os/none.qcow2' }),
      ),
    ).toBe('VALIDATION_FAILED');
    expect(
      await codeOf(
        h.ii.catalog.createOsImage(admin, { name: 'Escape', osType: 'bsd', storageId: templates.id, fileKey: '../../etc/passwd' }),
      ),
    ).toBe('VALIDATION_FAILED');
    expect(
      await codeOf(h.ii.catalog.createOsImage(admin, { name: 'Wrong purpose', osType: 'bsd', storageId: h.storageId, fileKey: 'x' })),
    ).toBe('VALIDATION_FAILED');
    const { image: mine } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    const picker = await h.ii.catalog.listDeployableImages(alice);
    expect(picker.groups.map((g) => g.group.name)).toEqual(['Linux']);
    expect(picker.groups[0]?.images.map((i) => i.name)).toEqual(['Debian 12']);
    expect(picker.myImages.map((i) => i.id)).toEqual([mine.id]);
    expect((await h.ii.catalog.listDeployableImages(bob)).myImages).toEqual([]);
    expect((await h.ii.catalog.listDeployableImages(admin)).groups).toHaveLength(2);
    expect(await codeOf(h.ii.catalog.deleteMediaGroup(admin, linux.id))).toBe('IN_USE');
  });

  it('deploys own and stock images as standalone disks, verifying checksums; foreign or hidden ones are NOT_FOUND', async () => {
    const h = await setup();
    const { templates, debian } = await withTemplates(h);
    const hidden = await h.ii.catalog.createMediaGroup(admin, { name: 'Hidden', customerVisible: false });
    const os = await h.ii.catalog.createOsImage(admin, {
      name: 'Debian 12',
      osType: 'linux',
      storageId: templates.id,
      fileKey: 'os/debian-12.qcow2',
    });
    const secret = await h.ii.catalog.createOsImage(admin, {
      name: 'Secret',
      osType: 'linux',
      storageId: templates.id,
      fileKey: 'os/debian-12.qcow2',
      mediaGroupId: hidden.id,
    });
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice', { hypervisorId: 'hv-2' });
    const own = await deployAndWait(h.ii, alice, {
      imageId: image.id,
      instanceId: 'new-1',
      targetPath: '/var/lib/libvirt/images/new-1.qcow2',
    });
    expect(own.task.status).toBe('completed');
    expect(h.world.files.get('hv-2:/var/lib/libvirt/images/new-1.qcow2')?.bytes.equals(h.world.domains.get('dom-web-1')!.disk)).toBe(true);
    await deployAndWait(h.ii, alice, { imageId: os.id, instanceId: 'new-1', targetPath: '/disks/stock.qcow2' });
    expect(h.world.files.get('hv-2:/disks/stock.qcow2')?.bytes.equals(debian)).toBe(true);
    expect(await codeOf(deployAndWait(h.ii, alice, { imageId: secret.id, instanceId: 'new-1', targetPath: '/disks/x.qcow2' }))).toBe(
      'NOT_FOUND',
    );
    expect(await codeOf(deployAndWait(h.ii, bob, { imageId: image.id, instanceId: 'bob-1', targetPath: '/disks/x.qcow2' }))).toBe(
      'NOT_FOUND',
    );
    // even an admin (the host) never puts a custom image on another account's instance, and is told why
    expect(await codeOf(deployAndWait(h.ii, admin, { imageId: image.id, instanceId: 'bob-1', targetPath: '/disks/x.qcow2' }))).toBe(
      'ACCOUNT_MISMATCH',
    );
    expect(await codeOf(deployAndWait(h.ii, alice, { imageId: image.id, instanceId: 'new-1', targetPath: 'relative' }))).toBe(
      'VALIDATION_FAILED',
    );
    expect(
      await codeOf(deployAndWait(h.ii, alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/d.qcow2', sizeBytes: 1024 })),
    ).toBe('VALIDATION_FAILED');
    // a corrupted stored file is caught by the checksum
    h.world.files.set('tpl:os/debian-12.qcow2', { bytes: Buffer.from('tampered'), modifiedAt: new Date() });
    expect(await codeOf(deployAndWait(h.ii, alice, { imageId: os.id, instanceId: 'new-1', targetPath: '/disks/y.qcow2' }))).toBe(
      'CHECKSUM_MISMATCH',
    );
    const failed = h.events.find((e) => e.type === 'image.deploy-failed')?.payload as InstanceImagesEvents['image.deploy-failed'];
    expect(failed).toMatchObject({ image: { id: os.id }, instanceId: 'new-1', code: 'CHECKSUM_MISMATCH', task: { status: 'failed' } });
    // deleting the image leaves the deployed disk alone
    await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    expect(h.world.files.has('hv-2:/var/lib/libvirt/images/new-1.qcow2')).toBe(true);
  });

  it('a delete requested during a deploy stops billing at once and removes the file only after the deploy', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-2', 'acct-alice', { hypervisorId: 'hv-2' });
    let open!: () => void;
    h.world.deployGate = new Promise<void>((resolve) => (open = resolve));
    // the deploy answers at once with its task, before any byte is copied
    const deploying = await h.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-2', targetPath: '/disks/new-2.qcow2' });
    expect(deploying.task).toMatchObject({ type: 'deploy', status: 'queued', subjectId: image.id, accountId: 'acct-alice' });
    expect(h.world.files.has('hv-2:/disks/new-2.qcow2')).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect((await h.ii.images.deleteImage(alice, image.id)).image.status).toBe('deleting');
    expect((await h.ii.repositories.usage.list({ imageId: image.id, openOnly: true })).items).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(h.world.files.has(`bucket:${image.fileKey}`)).toBe(true);
    open();
    const finished = await h.ii.images.waitForTask(alice, deploying.task.id);
    expect(finished.status).toBe('completed');
    const deployed = h.events.find((e) => e.type === 'image.deployed')?.payload as InstanceImagesEvents['image.deployed'];
    expect(deployed).toMatchObject({ instanceId: 'new-2', task: { id: deploying.task.id }, result: { path: '/disks/new-2.qcow2' } });
    await h.ii.idle();
    expect(h.world.files.get('hv-2:/disks/new-2.qcow2')?.bytes.equals(h.world.domains.get('dom-web-1')!.disk)).toBe(true);
    expect(h.world.files.has(`bucket:${image.fileKey}`)).toBe(false);
    expect((await h.ii.repositories.images.get(image.id))?.status).toBe('deleted');
    // a deploy asked for after the delete request is refused
    expect(await codeOf(deployAndWait(h.ii, alice, { imageId: image.id, instanceId: 'new-2', targetPath: '/disks/late.qcow2' }))).toBe(
      'NOT_FOUND',
    );
  });

  it('ISOs: upload and register, customers see visible ones and mount them to own instances', async () => {
    const h = await setup();
    const { isoStore } = await withTemplates(h);
    const uploaded = await h.ii.catalog.uploadIso(
      admin,
      { name: 'Windows installer', storageId: isoStore.id, hypervisorId: 'hv-1', fileKey: 'win.iso' },
      Readable.from([Buffer.from('ISO9660 bytes')]),
    );
    expect(uploaded).toMatchObject({ status: 'available', sizeBytes: 13, sha256: sha256(Buffer.from('ISO9660 bytes')) });
    h.world.files.set('/hv-1/isos/rescue.iso', { bytes: Buffer.from('rescue'), modifiedAt: new Date() });
    const hiddenIso = await h.ii.catalog.registerIso(admin, {
      name: 'Rescue',
      storageId: isoStore.id,
      hypervisorId: 'hv-1',
      fileKey: 'rescue.iso',
      customerVisible: false,
    });
    expect((await h.ii.catalog.listIsos(alice)).items.map((i) => i.name)).toEqual(['Windows installer']);
    expect((await h.ii.catalog.listIsos(admin)).items).toHaveLength(2);
    expect(await codeOf(h.ii.catalog.mountIso(alice, { instanceId: 'web-1', isoId: hiddenIso.id }))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.catalog.mountIso(alice, { instanceId: 'bob-1', isoId: uploaded.id }))).toBe('NOT_FOUND');
    await h.ii.catalog.mountIso(alice, { instanceId: 'web-1', isoId: uploaded.id });
    expect(h.world.mounted.get('dom-web-1')).toBe('/hv-1/isos/win.iso');
    await h.ii.catalog.unmountIso(alice, { instanceId: 'web-1' });
    expect(h.world.mounted.has('dom-web-1')).toBe(false);
    expect(h.events.filter((e) => e.type === 'iso.mounted' || e.type === 'iso.unmounted')).toHaveLength(2);
    expect(await codeOf(h.ii.catalog.uploadIso(alice, { name: 'x', storageId: isoStore.id, fileKey: 'x.iso' }, Readable.from([])))).toBe(
      'FORBIDDEN',
    );
    await h.ii.catalog.deleteIso(admin, uploaded.id, { deleteFile: true, hypervisorId: 'hv-1' });
    expect(h.world.files.has('/hv-1/isos/win.iso')).toBe(false);
  });
});

describe('image storages: config, bindings, browser, reconcile', () => {
  it('validates config with the driver schema, masks secrets and keeps them on update', async () => {
    const h = await setup();
    const bad = await codeOf(h.ii.storages.createStorage(admin, { name: 'bad', driver: 'fake-s3', config: {} }));
    expect(bad).toBe('VALIDATION_FAILED');
    await expect(h.ii.storages.createStorage(admin, { name: 'bad', driver: 'fake-s3', config: {} })).rejects.toMatchObject({
      fields: [expect.objectContaining({ path: 'config.root' })],
    });
    expect(await codeOf(h.ii.storages.createStorage(admin, { name: 'bad', driver: 'nope', config: {} }))).toBe('VALIDATION_FAILED');
    const view = await h.ii.storages.getStorage(admin, h.storageId);
    expect(view.config.secret).toBe('********');
    expect(JSON.stringify(await h.ii.storages.listStorages(admin))).not.toContain('top-secret-key');
    await h.ii.storages.updateStorage(admin, h.storageId, { name: 'renamed', config: { ...view.config } });
    expect((await h.ii.repositories.storages.get(h.storageId))?.config.secret).toBe('top-secret-key');
    // a kept secret is never sent to a new destination
    expect(await codeOf(h.ii.storages.updateStorage(admin, h.storageId, { config: { ...view.config, root: 'elsewhere' } }))).toBe(
      'VALIDATION_FAILED',
    );
    expect((await h.ii.repositories.storages.get(h.storageId))?.config.root).toBe('bucket');
    await h.ii.storages.updateStorage(admin, h.storageId, { config: { root: 'elsewhere', secret: 'new-secret' } });
    expect((await h.ii.repositories.storages.get(h.storageId))?.config).toEqual({ root: 'elsewhere', secret: 'new-secret' });
    expect(await codeOf(h.ii.storages.listStorages(alice))).toBe('FORBIDDEN');
    expect((await h.ii.storages.checkHealth(admin, h.storageId)).ok).toBe(true);
  });

  it('a storage holding images can be neither deleted nor unbound from their hypervisor', async () => {
    const h = await setup({ storage: 'path' });
    await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    expect(await codeOf(h.ii.storages.deleteStorage(admin, h.storageId))).toBe('IN_USE');
    expect(await codeOf(h.ii.storages.unbindHypervisor(admin, h.storageId, 'hv-1'))).toBe('IN_USE');
    expect(await codeOf(h.ii.storages.bindHypervisor(admin, h.storageId, 'hv-unknown'))).toBe('NOT_FOUND');
    const empty = await h.ii.storages.createStorage(admin, { name: 'empty', driver: 'fake-local', config: { root: '/e' } });
    await h.ii.storages.bindHypervisor(admin, empty.id, 'hv-1');
    await h.ii.storages.unbindHypervisor(admin, empty.id, 'hv-1');
    await h.ii.storages.deleteStorage(admin, empty.id);
    expect(await codeOf(h.ii.storages.getStorage(admin, empty.id))).toBe('NOT_FOUND');
  });

  it('the browser classifies files; reconcile is a dry run unless asked and reports every action', async () => {
    const h = await setup();
    const { image: kept } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'kept' });
    const { image: lost } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'lost' });
    h.world.addInstance('temp', 'acct-alice');
    const { image: stale } = await h.ii.images.createImage(alice, { instanceId: 'temp', name: 'stale' });
    await h.ii.idle();
    h.world.instances.delete('temp');
    h.world.files.set('bucket:images/orphan.qcow2', { bytes: Buffer.from('orphan'), modifiedAt: new Date() });
    h.world.files.set('bucket:images/old-upload.part', { bytes: Buffer.from('part'), modifiedAt: new Date(0) });
    h.world.files.delete(`bucket:${lost.fileKey}`);
    const page = await h.ii.storages.browse(admin, h.storageId, { limit: 2 });
    expect(page.items).toHaveLength(2);
    expect(page.nextCursor).not.toBeNull();
    const all = [...page.items, ...(await h.ii.storages.browse(admin, h.storageId, { cursor: page.nextCursor })).items];
    const kinds = Object.fromEntries(all.map((f) => [f.key, f.kind]));
    expect(kinds[kept.fileKey]).toBe('ok');
    expect(kinds[stale.fileKey]).toBe('stale');
    expect(kinds['images/orphan.qcow2']).toBe('orphan');

    const dry = await h.ii.storages.reconcile(admin, h.storageId, { deleteOrphans: true, deleteLeftovers: true, markMissing: true });
    expect(dry.map((f) => f.kind).sort()).toEqual(['leftover', 'missing', 'orphan', 'stale']);
    expect(dry.every((f) => f.dryRun)).toBe(true);
    expect(h.world.files.has('bucket:images/orphan.qcow2')).toBe(true);
    const applied = await h.ii.storages.reconcile(admin, h.storageId, {
      deleteOrphans: true,
      deleteLeftovers: true,
      markMissing: true,
      dryRun: false,
    });
    expect(applied.find((f) => f.kind === 'orphan')?.action).toBe('deleted-file');
    expect(h.world.files.has('bucket:images/orphan.qcow2')).toBe(false);
    expect(h.world.files.has('bucket:images/old-upload.part')).toBe(false);
    const missing = await h.ii.repositories.images.get(lost.id);
    expect(missing?.status).toBe('error');
    expect(missing?.statusReason?.code).toBe('MISSING_FILE');
    expect((await h.ii.repositories.usage.list({ imageId: lost.id, openOnly: true })).items).toHaveLength(0);
    expect(h.events.filter((e) => e.type === 'reconcile.finding').length).toBe(dry.length + applied.length);
    expect(await codeOf(h.ii.storages.reconcile(alice, h.storageId))).toBe('FORBIDDEN');
  });
  it("a running capture's part file is its task's, neither an orphan nor a leftover, and is one once the task is gone", async () => {
    const h = await setup({ storage: 'path' });
    let release!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (release = resolve));
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'running' });
    await vi.waitFor(async () => expect((await h.ii.images.getTask(admin, task.id)).status).toBe('running'));
    const storage = await h.ii.repositories.storages.get(h.storageId);
    const part = `/hv-1${storage!.config.root as string}/${image.fileKey}.part`;
    h.world.files.set(part, { bytes: Buffer.from('half a disk'), modifiedAt: new Date(0) });
    const browsed = (await h.ii.storages.browse(admin, h.storageId)).items.find((f) => f.key === `${image.fileKey}.part`);
    expect(browsed).toMatchObject({ kind: 'ok', imageId: image.id, taskId: task.id });
    expect(browsed?.message).toMatch(/part file of the running capture task/);
    const everything = { deleteOrphans: true, deleteLeftovers: true, markMissing: true, dryRun: false };
    expect((await h.ii.storages.reconcile(admin, h.storageId, everything)).map((f) => f.key)).not.toContain(`${image.fileKey}.part`);
    expect(h.world.files.has(part)).toBe(true);
    release();
    h.world.captureGate = null;
    await h.ii.idle();
    // Its task ended: a part file left with that name is an orphan like any other.
    h.world.files.set(part, { bytes: Buffer.from('left over'), modifiedAt: new Date(0) });
    const after = await h.ii.storages.reconcile(admin, h.storageId, everything);
    expect(after.find((f) => f.key === `${image.fileKey}.part`)).toMatchObject({ kind: 'orphan', action: 'deleted-file' });
    expect(h.world.files.has(part)).toBe(false);
  });
});

describe('start-up recovery', () => {
  it('fails tasks whose heartbeat lapsed, puts their images in error and removes leftovers', async () => {
    const h = await setup();
    // A capture that a crashed process left behind: image creating, task running, old heartbeat.
    const { makeImage, makeTask } = await import('../../../src/testing');
    const image = makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null, fileKey: 'images/crashed.qcow2' });
    await h.ii.repositories.images.insert(image);
    await h.ii.repositories.tasks.insert(
      makeTask({ subjectId: image.id, status: 'running', heartbeatAt: new Date('2026-11-01T00:00:00Z'), accountId: 'acct-alice' }),
    );
    h.world.files.set('bucket:images/crashed.qcow2', { bytes: Buffer.from('half'), modifiedAt: new Date() });
    const report = await h.ii.recover();
    expect(report.interruptedTasks).toHaveLength(1);
    expect(report.failedImages).toEqual([image.id]);
    const after = await h.ii.repositories.images.get(image.id);
    expect(after?.status).toBe('error');
    expect(after?.statusReason?.code).toBe('INTERRUPTED');
    expect(h.world.files.has('bucket:images/crashed.qcow2')).toBe(false);
    // An image left in creating without any task (a crash between the two inserts) is recovered too.
    const orphanImage = makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null });
    await h.ii.repositories.images.insert(orphanImage);
    expect((await h.ii.recover()).failedImages).toEqual([orphanImage.id]);
    expect((await h.ii.repositories.images.get(orphanImage.id))?.statusReason?.code).toBe('INTERRUPTED');
    // A live capture of this process is never touched by recovery.
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const live = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'live' });
    expect((await h.ii.recover()).interruptedTasks).toEqual([]);
    open();
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, live.image.id)).status).toBe('available');
  });
});
