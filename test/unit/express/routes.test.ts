/**
 * Happy paths of every route, over real HTTP. The last test checks that every route Express really
 * registered answered 2xx at least once in this file.
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../support/fakes';
import { ADMIN, liveRoutes, readSse, startExpressHarness, type ExpressHarness, describeEachServer } from '../../support/express-harness';
import { serveBytes } from '../../support/image-server';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
describeEachServer((server) => {
  const succeeded = new Set<string>();
  let routes: string[] = [];
  let h: ExpressHarness | null = null;

  async function harness(): Promise<ExpressHarness> {
    h = await startExpressHarness({ server });
    routes = liveRoutes(h.ii);
    return h;
  }

  afterEach(async () => {
    if (!h) return;
    for (const hit of h.hits) if (hit.status >= 200 && hit.status < 300) succeeded.add(hit.route);
    await h.close();
    h = null;
  });

  describe("HTTP API: every route's happy path", () => {
    it('my images: create (202), list with cursor paging, get, tasks, events of a finished task, delete', async () => {
      const t = await harness();
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'web server', description: 'nightly' } });
      expect(created.status).toBe(202);
      expect(created.json.image).toMatchObject({ name: 'web server', description: 'nightly', status: 'creating', accountId: 'acct-alice' });
      expect(created.json.task).toMatchObject({ type: 'capture', status: 'queued' });
      expect(created.json.image.createdAt).toMatch(ISO_DATE);
      expect(created.headers.get('location')).toBe(`/api/images/${created.json.image.id}`);
      await t.ii.idle();
      const second = await t.call('POST', '/images', { json: { instanceId: 'db-1', name: 'db' } });
      expect(second.status).toBe(202);
      await t.ii.idle();

      const first = await t.call('GET', '/images?limit=1&sort=name&direction=asc');
      expect(first.status).toBe(200);
      expect(first.json.items.map((i: { name: string }) => i.name)).toEqual(['db']);
      expect(first.json.nextCursor).toEqual(expect.any(String));
      const next = await t.call('GET', `/images?limit=1&sort=name&direction=asc&cursor=${encodeURIComponent(first.json.nextCursor)}`);
      expect(next.json.items.map((i: { name: string }) => i.name)).toEqual(['web server']);
      expect(next.json.nextCursor).toBeNull();
      expect((await t.call('GET', '/images?status=available')).json.items).toHaveLength(2);

      const image = await t.call('GET', `/images/${created.json.image.id}`);
      expect(image.status).toBe(200);
      expect(image.json).toMatchObject({
        status: 'available',
        sizeBytes: expect.any(Number),
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      expect(image.json.availableAt).toMatch(ISO_DATE);

      const tasks = await t.call('GET', '/tasks?type=capture&status=completed');
      expect(tasks.status).toBe(200);
      expect(tasks.json.items).toHaveLength(2);
      const task = await t.call('GET', `/tasks/${created.json.task.id}`);
      expect(task.json).toMatchObject({ id: created.json.task.id, status: 'completed', progress: { step: 'completed' } });

      const stream = await fetch(`${t.baseUrl}/tasks/${created.json.task.id}/events`, {
        headers: { 'x-test-actor': 'customer:acct-alice' },
      });
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const events = await readSse(stream);
      expect(events.map((e) => e.event)).toEqual(['task', 'task.finished']);
      expect(JSON.parse(events[1]?.data ?? '{}')).toMatchObject({ status: 'completed' });

      const deleted = await t.call('DELETE', `/images/${second.json.image.id}`);
      expect(deleted.status).toBe(202);
      expect(deleted.json.image.status).toBe('deleting');
      expect(deleted.json.task).toMatchObject({ type: 'delete' });
      await t.ii.idle();
      expect((await t.call('GET', `/images/${second.json.image.id}`)).status).toBe(404);
    });

    it('protect (200) refuses the delete (409 IMAGE_PROTECTED), PATCH metadata (200), the OS picker filters by plan', async () => {
      const t = await harness();
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'guarded' } });
      await t.ii.idle();
      const imageId = created.json.image.id as string;
      const protectedRes = await t.call('PUT', `/images/${imageId}/protection`, { json: { protected: true } });
      expect(protectedRes.status).toBe(200);
      expect(protectedRes.json.protected).toBe(true);
      const refused = await t.call('DELETE', `/images/${imageId}`);
      expect(refused.status).toBe(409);
      expect(refused.json).toMatchObject({ code: 'IMAGE_PROTECTED' });
      const patched = await t.call('PATCH', `/images/${imageId}`, { json: { firmware: 'uefi', minDiskBytes: 2 ** 31 } });
      expect(patched.status).toBe(200);
      expect(patched.json).toMatchObject({ firmware: 'uefi', minDiskBytes: 2 ** 31 });
      const fits = await t.call('GET', `/os-picker?diskBytes=${2 ** 31}&firmware=uefi`);
      expect(fits.json.myImages.map((i: { id: string }) => i.id)).toContain(imageId);
      const hidden = await t.call('GET', '/os-picker?firmware=bios');
      expect(hidden.json.myImages.map((i: { id: string }) => i.id)).not.toContain(imageId);
      expect((await t.call('PUT', `/images/${imageId}/protection`, { json: { protected: false } })).json.protected).toBe(false);
      expect((await t.call('DELETE', `/images/${imageId}`)).status).toBe(202);
    });

    it('cancel a running capture (200), then retry it (202)', async () => {
      const t = await harness();
      let release: () => void = () => undefined;
      t.world.captureGate = new Promise<void>((resolve) => (release = resolve));
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'slow' } });
      const cancelled = await t.call('POST', `/images/${created.json.image.id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.json).toMatchObject({ status: 'error', statusReason: { code: 'CANCELLED' } });
      release();
      t.world.captureGate = null;
      await t.ii.idle();
      const retried = await t.call('POST', `/images/${created.json.image.id}/retry`);
      expect(retried.status).toBe(202);
      expect(retried.json.image.status).toBe('creating');
      expect(retried.json.task.id).not.toBe(created.json.task.id);
      await t.ii.idle();
      expect((await t.call('GET', `/images/${created.json.image.id}`)).json.status).toBe('available');
    });

    it('OS picker, deploy, ISOs list/mount/unmount, usage report', async () => {
      const t = await harness();
      const group = await t.call('POST', '/admin/media-groups', { actor: ADMIN, json: { name: 'Linux', order: 1 } });
      expect(group.status).toBe(201);
      const os = await t.call('POST', '/admin/os-images', {
        actor: ADMIN,
        json: { name: 'Debian 12', osType: 'linux', storageId: t.templatesId, fileKey: 'os/debian-12.qcow2', mediaGroupId: group.json.id },
      });
      expect(os.status).toBe(201);
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'mine' } });
      await t.ii.idle();

      const picker = await t.call('GET', '/os-picker');
      expect(picker.status).toBe(200);
      expect(
        picker.json.groups.map((g: { group: { name: string }; images: { name: string }[] }) => [g.group.name, g.images.map((i) => i.name)]),
      ).toEqual([['Linux', ['Debian 12']]]);
      expect(picker.json.myImages.map((i: { id: string }) => i.id)).toEqual([created.json.image.id]);

      t.world.addInstance('new-1', 'acct-alice', { hypervisorId: 'hv-2' });
      const deploy = await t.call('POST', '/admin/deployments', {
        actor: ADMIN,
        json: { imageId: created.json.image.id, instanceId: 'new-1', targetPath: '/var/lib/libvirt/images/new-1.qcow2' },
      });
      // 202 at once with the queued task, like a capture; the host follows the task
      expect(deploy.status).toBe(202);
      expect(deploy.json.task).toMatchObject({ type: 'deploy', status: 'queued' });
      expect(deploy.headers.get('location')).toBe(`/api/tasks/${deploy.json.task.id}`);
      await t.ii.idle();
      const task = await t.call('GET', `/tasks/${deploy.json.task.id}`, { actor: ADMIN });
      expect(task.json).toMatchObject({ type: 'deploy', status: 'completed', progress: { percent: 100 } });
      expect(
        t.world.files
          .get('hv-2:/var/lib/libvirt/images/new-1.qcow2')
          ?.bytes.equals(t.world.domains.get('dom-web-1')?.disk ?? Buffer.alloc(0)),
      ).toBe(true);

      const iso = await t.ii.catalog.uploadIso(
        ADMIN,
        { name: 'Installer', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'installer.iso' },
        Readable.from([Buffer.from('ISO9660')]),
      );
      const isos = await t.call('GET', '/isos?limit=10');
      expect(isos.status).toBe(200);
      expect(isos.json.items.map((i: { id: string }) => i.id)).toEqual([iso.id]);
      const mounted = await t.call('POST', '/instances/web-1/iso', { json: { isoId: iso.id } });
      expect(mounted.status).toBe(204);
      expect(t.world.mounted.get('dom-web-1')).toBe('/hv-1/isos/installer.iso');
      const unmounted = await t.call('DELETE', '/instances/web-1/iso');
      expect(unmounted.status).toBe(204);
      expect(t.world.mounted.has('dom-web-1')).toBe(false);

      const from = new Date(Date.now() - 3_600_000).toISOString();
      const to = new Date(Date.now() + 3_600_000).toISOString();
      const usage = await t.call('GET', `/usage?from=${from}&to=${to}`);
      expect(usage.status).toBe(200);
      expect(usage.json).toMatchObject({ accountId: 'acct-alice', currency: 'USD', period: { from } });
      // a period reaching into the future is billed up to now
      expect(Date.parse(usage.json.period.to)).toBeLessThanOrEqual(Date.now());
      expect(usage.json.images.lines.map((l: { imageName: string }) => l.imageName)).toEqual(['mine']);
      expect(usage.json.images.total).toEqual(expect.stringMatching(/^\d+(\.\d+)?$/));
    });

    it('admin: storages CRUD, bindings, health, browse, reconcile', async () => {
      const t = await harness();
      const created = await t.call('POST', '/admin/storages', {
        actor: ADMIN,
        json: { name: 'second s3', driver: 'fake-s3', config: { root: 'other', secret: 'hunter2-secret' } },
      });
      expect(created.status).toBe(201);
      expect(created.json.config).toEqual({ root: 'other', secret: '********' });
      expect(created.text).not.toContain('hunter2-secret');
      const id = created.json.id as string;
      expect(created.headers.get('location')).toBe(`/api/admin/storages/${id}`);
      const list = await t.call('GET', '/admin/storages?purpose=custom-images', { actor: ADMIN });
      expect(list.status).toBe(200);
      expect(list.json.items.map((s: { name: string }) => s.name).sort()).toEqual(['s3', 'second s3']);
      expect((await t.call('GET', `/admin/storages/${id}`, { actor: ADMIN })).json).toMatchObject({ id, hypervisorIds: [] });
      const patched = await t.call('PATCH', `/admin/storages/${id}`, {
        actor: ADMIN,
        json: { name: 'renamed', config: { root: 'other', secret: '********' } },
      });
      expect(patched.status).toBe(200);
      expect(patched.json.name).toBe('renamed');
      expect((await t.ii.repositories.storages.get(id))?.config).toMatchObject({ secret: 'hunter2-secret' });
      const bound = await t.call('POST', `/admin/storages/${id}/bindings`, { actor: ADMIN, json: { hypervisorId: 'hv-2' } });
      expect(bound.status).toBe(201);
      expect(bound.json).toMatchObject({ storageId: id, hypervisorId: 'hv-2' });
      const health = await t.call('GET', `/admin/storages/${id}/health?hypervisorId=hv-2`, { actor: ADMIN });
      expect(health.status).toBe(200);
      expect(health.json).toEqual({ ok: true, message: 'fake ok', freeBytes: null });

      t.world.files.set('other:orphan.qcow2', { bytes: Buffer.from('orphan'), modifiedAt: new Date() });
      const browsed = await t.call('GET', `/admin/storages/${id}/browse?limit=10&prefix=orphan`, { actor: ADMIN });
      expect(browsed.status).toBe(200);
      expect(browsed.json).toMatchObject({ items: [{ key: 'orphan.qcow2', kind: 'orphan', size: 6 }], nextCursor: null });
      expect(browsed.json.items[0].modifiedAt).toMatch(ISO_DATE);
      const dry = await t.call('POST', `/admin/storages/${id}/reconcile`, { actor: ADMIN, json: { deleteOrphans: true } });
      expect(dry.status).toBe(200);
      expect(dry.json.findings).toEqual([expect.objectContaining({ kind: 'orphan', action: 'deleted-file', dryRun: true })]);
      expect(t.world.files.has('other:orphan.qcow2')).toBe(true);
      const applied = await t.call('POST', `/admin/storages/${id}/reconcile`, {
        actor: ADMIN,
        json: { deleteOrphans: true, dryRun: false },
      });
      expect(applied.json.findings).toEqual([expect.objectContaining({ kind: 'orphan', dryRun: false })]);
      expect(t.world.files.has('other:orphan.qcow2')).toBe(false);

      expect((await t.call('DELETE', `/admin/storages/${id}/bindings/hv-2`, { actor: ADMIN })).status).toBe(204);
      expect((await t.call('DELETE', `/admin/storages/${id}`, { actor: ADMIN })).status).toBe(204);
      expect((await t.call('GET', `/admin/storages/${id}`, { actor: ADMIN })).status).toBe(404);
    });

    it('admin: a chunked storage: created with its layout, chunk statistics in health and browse, GC and verify as tasks', async () => {
      const t = await harness();
      const created = await t.call('POST', '/admin/storages', {
        actor: ADMIN,
        json: { name: 'chunked', driver: 'fake-s3', config: { root: 'chunked' }, layout: 'chunks', chunks: { chunkSizeBytes: 65536 } },
      });
      expect(created.status).toBe(201);
      expect(created.json).toMatchObject({ layout: 'chunks', chunks: { scope: 'storage', codec: 'none', chunkSizeBytes: 65536 } });
      const id = created.json.id as string;
      const onLocal = await t.call('POST', '/admin/storages', {
        actor: ADMIN,
        json: { name: 'local chunks', driver: 'fake-local', config: { root: '/x' }, layout: 'chunks' },
      });
      expect(onLocal.status).toBe(400);
      expect(onLocal.json.code).toBe('VALIDATION_FAILED');
      const empty = { manifests: 0, chunks: 0, logicalBytes: 0, uniqueBytes: 0, dedupRatio: expect.any(String), unreadableManifests: 0 };
      expect((await t.call('GET', `/admin/storages/${id}/health`, { actor: ADMIN })).json.chunks).toEqual(empty);
      expect((await t.call('GET', `/admin/storages/${id}/browse`, { actor: ADMIN })).json).toMatchObject({ items: [], chunks: empty });
      const gc = await t.call('POST', `/admin/storages/${id}/chunk-gc`, { actor: ADMIN, json: { dryRun: true } });
      expect(gc.status).toBe(202);
      expect(gc.json).toMatchObject({ type: 'chunk-gc', subjectKind: 'storage', subjectId: id });
      const verify = await t.call('POST', `/admin/storages/${id}/chunk-verify`, { actor: ADMIN });
      expect(verify.status).toBe(202);
      expect(verify.json).toMatchObject({ type: 'chunk-verify', subjectId: id });
      await t.ii.idle();
      expect((await t.ii.repositories.tasks.get(gc.json.id as string))?.status).toBe('completed');
      const onFiles = await t.call('POST', `/admin/storages/${t.storageId}/chunk-gc`, { actor: ADMIN, json: {} });
      expect(onFiles.status).toBe(409);
    });

    it('admin: OS images, media groups, ISOs (register, upload, edit, delete)', async () => {
      const t = await harness();
      const group = await t.call('POST', '/admin/media-groups', { actor: ADMIN, json: { name: 'Windows' } });
      expect(group.status).toBe(201);
      expect((await t.call('GET', '/admin/media-groups', { actor: ADMIN })).json.items.map((g: { name: string }) => g.name)).toEqual([
        'Windows',
      ]);
      const renamed = await t.call('PATCH', `/admin/media-groups/${group.json.id}`, { actor: ADMIN, json: { customerVisible: false } });
      expect(renamed.status).toBe(200);
      expect(renamed.json).toMatchObject({ name: 'Windows', customerVisible: false });

      const os = await t.call('POST', '/admin/os-images', {
        actor: ADMIN,
        json: { name: 'Debian 12', osType: 'linux', cloudInit: true, storageId: t.templatesId, fileKey: 'os/debian-12.qcow2' },
      });
      expect(os.status).toBe(201);
      expect(os.json).toMatchObject({ kind: 'stock', status: 'available', sha256: sha256(Buffer.from('debian 12 qcow2 bytes')) });
      const listed = await t.call('GET', '/admin/os-images?limit=5', { actor: ADMIN });
      expect(listed.status).toBe(200);
      expect(listed.json.items.map((i: { name: string }) => i.name)).toEqual(['Debian 12']);
      const edited = await t.call('PATCH', `/admin/os-images/${os.json.id}`, {
        actor: ADMIN,
        json: { name: 'Debian 12 (bookworm)', mediaGroupId: group.json.id },
      });
      expect(edited.status).toBe(200);
      expect(edited.json).toMatchObject({ name: 'Debian 12 (bookworm)', mediaGroupId: group.json.id });
      const removed = await t.call('DELETE', `/admin/os-images/${os.json.id}`, { actor: ADMIN });
      expect(removed.status).toBe(200);
      expect(removed.json.image.status).toBe('deleted');
      expect((await t.call('DELETE', `/admin/media-groups/${group.json.id}`, { actor: ADMIN })).status).toBe(204);

      t.world.files.set('/hv-1/isos/rescue.iso', { bytes: Buffer.from('rescue'), modifiedAt: new Date() });
      const registered = await t.call('POST', '/admin/isos', {
        actor: ADMIN,
        json: { name: 'Rescue', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'rescue.iso' },
      });
      expect(registered.status).toBe(201);
      expect(registered.json).toMatchObject({ status: 'available', sizeBytes: 6, sha256: sha256(Buffer.from('rescue')) });
      const bytes = Buffer.alloc(10_000, 7);
      const uploaded = await t.call(
        'PUT',
        `/admin/isos/upload?name=${encodeURIComponent('Windows Server')}&storageId=${t.isoStoreId}&hypervisorId=hv-1&fileKey=win/server.iso&customerVisible=false`,
        { actor: ADMIN, body: bytes, headers: { 'content-type': 'application/octet-stream' } },
      );
      expect(uploaded.status).toBe(201);
      expect(uploaded.json).toMatchObject({
        name: 'Windows Server',
        status: 'available',
        sizeBytes: 10_000,
        sha256: sha256(bytes),
        customerVisible: false,
        fileKey: 'win/server.iso',
      });
      expect(t.world.files.get('/hv-1/isos/win/server.iso')?.bytes.equals(bytes)).toBe(true);
      const all = await t.call('GET', '/admin/isos', { actor: ADMIN });
      expect(all.json.items).toHaveLength(2);
      const patched = await t.call('PATCH', `/admin/isos/${uploaded.json.id}`, {
        actor: ADMIN,
        json: { customerVisible: true, description: 'Evaluation' },
      });
      expect(patched.json).toMatchObject({ customerVisible: true, description: 'Evaluation' });
      expect((await t.call('DELETE', `/admin/isos/${uploaded.json.id}?deleteFile=true&hypervisorId=hv-1`, { actor: ADMIN })).status).toBe(
        204,
      );
      expect(t.world.files.has('/hv-1/isos/win/server.iso')).toBe(false);
      expect((await t.call('GET', '/admin/isos', { actor: ADMIN })).json.items).toHaveLength(1);
    });

    it('admin: settings, account limits, all tasks and images, delete, refresh size, usage, recover', async () => {
      const t = await harness();
      const locations = await t.call('GET', '/admin/locations', { actor: ADMIN });
      expect(locations.json.items.map((l: { locationId: string }) => l.locationId)).toEqual(['loc-1']);
      expect((await t.call('GET', '/admin/locations/loc-9/settings', { actor: ADMIN })).json).toMatchObject({
        locationId: 'loc-9',
        imagesEnabled: false,
        pricePerGbMonth: '0',
      });
      const put = await t.call('PUT', '/admin/locations/loc-1/settings', {
        actor: ADMIN,
        json: { pricePerGbMonth: '0.10', defaultImageLimit: 3 },
      });
      expect(put.status).toBe(200);
      expect(put.json).toMatchObject({ locationId: 'loc-1', imagesEnabled: true, pricePerGbMonth: '0.10', defaultImageLimit: 3 });
      expect(put.json.updatedAt).toMatch(ISO_DATE);
      expect((await t.call('GET', '/admin/accounts/acct-alice/limit', { actor: ADMIN })).json).toEqual({ limit: null });
      const limit = await t.call('PUT', '/admin/accounts/acct-alice/limit', { actor: ADMIN, json: { imageLimit: 7 } });
      expect(limit.status).toBe(200);
      expect(limit.json.limit).toMatchObject({ accountId: 'acct-alice', imageLimit: 7 });
      expect((await t.call('GET', '/admin/accounts/acct-alice/limit', { actor: ADMIN })).json.limit.imageLimit).toBe(7);
      expect((await t.call('DELETE', '/admin/accounts/acct-alice/limit', { actor: ADMIN })).status).toBe(204);
      expect((await t.call('GET', '/admin/accounts/acct-alice/limit', { actor: ADMIN })).json).toEqual({ limit: null });

      const mine = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'alice image' } });
      const bobs = await t.call('POST', '/images', {
        actor: { kind: 'customer', accountId: 'acct-bob' },
        json: { instanceId: 'bob-1', name: 'bob image' },
      });
      await t.ii.idle();
      const tasks = await t.call('GET', '/admin/tasks?accountId=acct-bob', { actor: ADMIN });
      expect(tasks.status).toBe(200);
      expect(tasks.json.items.map((x: { id: string }) => x.id)).toEqual([bobs.json.task.id]);
      const images = await t.call('GET', '/admin/images', { actor: ADMIN });
      expect(images.json.items.map((i: { name: string }) => i.name).sort()).toEqual(['alice image', 'bob image']);
      expect((await t.call('GET', '/admin/images?accountId=acct-alice', { actor: ADMIN })).json.items).toHaveLength(1);

      const key = (await t.ii.repositories.images.get(mine.json.image.id))?.fileKey as string;
      const file = t.world.files.get(`bucket:${key}`);
      if (!file) throw new Error('the capture stored no file');
      t.world.files.set(`bucket:${key}`, { bytes: Buffer.concat([file.bytes, Buffer.from('grown')]), modifiedAt: new Date() });
      const refreshed = await t.call('POST', `/admin/images/${mine.json.image.id}/refresh-size`, { actor: ADMIN });
      expect(refreshed.status).toBe(200);
      expect(refreshed.json.image.sizeBytes).toBe(file.bytes.length + 5);
      expect(refreshed.json.task).toMatchObject({ type: 'refresh-size', status: 'completed' });

      const from = new Date(Date.now() - 3_600_000).toISOString();
      const to = new Date(Date.now() + 3_600_000).toISOString();
      const all = await t.call('GET', `/admin/usage?from=${from}&to=${to}`, { actor: ADMIN });
      expect(all.status).toBe(200);
      expect(all.json.accountId).toBeNull();
      expect(all.json.images.accounts.map((a: { accountId: string }) => a.accountId)).toEqual(['acct-alice', 'acct-bob']);
      const one = await t.call('GET', `/admin/usage?from=${from}&to=${to}&accountId=acct-bob`, { actor: ADMIN });
      expect(one.json.images.lines.map((l: { imageName: string }) => l.imageName)).toEqual(['bob image']);

      const deleted = await t.call('DELETE', `/admin/images/${bobs.json.image.id}`, { actor: ADMIN });
      expect(deleted.status).toBe(202);
      expect(deleted.json.image.status).toBe('deleting');
      await t.ii.idle();
      const recovered = await t.call('POST', '/admin/recover', { actor: ADMIN });
      expect(recovered.status).toBe(200);
      expect(recovered.json).toEqual({ interruptedTasks: [], failedImages: [], removedFiles: [], hypervisorActions: [] });
    });

    it('admin: the host lifecycle hooks (suspend, unsuspend, close, instance deleted)', async () => {
      const t = await harness();
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'mine' } });
      await t.ii.idle();
      const suspended = await t.call('PUT', '/admin/accounts/acct-alice/suspension', { actor: ADMIN });
      expect([suspended.status, suspended.json.status]).toEqual([200, 'suspended']);
      const refused = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'more' } });
      expect([refused.status, refused.json.code]).toEqual([403, 'ACCOUNT_SUSPENDED']);
      expect((await t.call('DELETE', '/admin/accounts/acct-alice/suspension', { actor: ADMIN })).status).toBe(204);
      const gone = await t.call('POST', '/admin/instances/web-1/deleted', { actor: ADMIN });
      expect(gone.status).toBe(200);
      expect(
        gone.json.images.map((i: { id: string; sourceInstanceDeletedAt: string | null }) => [i.id, typeof i.sourceInstanceDeletedAt]),
      ).toEqual([[created.json.image.id, 'string']]);
      const closed = await t.call('POST', '/admin/accounts/acct-alice/close', { actor: ADMIN });
      expect([closed.status, closed.json.state.status, closed.json.task.type]).toEqual([202, 'closed', 'close-account']);
      await t.ii.images.waitForTask(ADMIN, closed.json.task.id);
      await t.ii.idle();
      expect((await t.ii.repositories.images.get(created.json.image.id))?.status).toBe('deleted');
      expect((await t.call('PUT', '/admin/accounts/acct-alice/suspension', { actor: ADMIN })).json.code).toBe('INVALID_STATE');
    });

    it('images that move: import from a URL (202), cancel an import, a download link and the signed download with a Range', async () => {
      const t = await harness();
      const image = Buffer.alloc(256 * 1024, 7);
      const source = await serveBytes(image);
      try {
        const imported = await t.call('POST', '/images/import', {
          json: { url: source.url, name: 'from url', locationId: 'loc-1', sha256: sha256(image) },
        });
        expect(imported.status).toBe(202);
        expect(imported.json.task).toMatchObject({ type: 'import', status: 'queued' });
        await t.ii.idle();
        const got = await t.call('GET', `/images/${imported.json.image.id}`);
        expect(got.json).toMatchObject({ status: 'available', format: 'raw', sizeBytes: image.length, sha256: sha256(image) });

        const cancelled = await t.call('POST', `/imports/${imported.json.task.id}/cancel`);
        expect([cancelled.status, cancelled.json.status]).toEqual([200, 'completed']);

        const link = await t.call('POST', `/images/${imported.json.image.id}/download-link`, { json: { expiresInSeconds: 600 } });
        expect(link.status).toBe(201);
        expect(link.json).toMatchObject({ kind: 'signed', sizeBytes: image.length, filename: 'from-url.raw' });
        const part = await t.call('GET', link.json.url.replace(/^\/api/, ''), { actor: null, headers: { range: 'bytes=10-19' } });
        expect(part.status).toBe(206);
        expect(part.headers.get('content-range')).toBe(`bytes 10-19/${image.length}`);
        expect(part.headers.get('x-checksum-sha256')).toBe(sha256(image));
        expect(part.text).toBe(image.subarray(10, 20).toString());

        const os = await t.call('POST', '/admin/os-images/import', {
          actor: ADMIN,
          json: { url: source.url, name: 'Imported OS', osType: 'linux', storageId: t.templatesId },
        });
        expect(os.status).toBe(202);
        await t.ii.idle();
        expect((await t.ii.repositories.images.get(os.json.imageId))?.status).toBe('available');
      } finally {
        await source.close();
      }
    });

    it('serves its OpenAPI document', async () => {
      const t = await harness();
      const doc = await t.call('GET', '/openapi.json', { actor: null });
      expect(doc.status).toBe(200);
      expect(doc.json.openapi).toBe('3.1.0');
      expect(doc.json.servers).toEqual([{ url: '/api' }]);
      expect(doc.json.paths['/health'].get.responses['503']).toBeDefined();
    });

    it('answers GET /health', async () => {
      const t = await harness();
      const health = await t.call('GET', '/health', { actor: null });
      expect(health.status).toBe(200);
      expect(health.json.ok).toBe(true);
    });

    it('sharing, transfers and copies: share, list, accept, reject, revoke; offer, list, get, accept, reject, cancel; copy (202)', async () => {
      const t = await harness();
      const BOB_ACTOR = { kind: 'customer', accountId: 'acct-bob' } as const;
      const made = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'shared' } });
      const other = await t.call('POST', '/images', { json: { instanceId: 'db-1', name: 'given' } });
      await t.ii.idle();
      const imageId = made.json.image.id as string;

      const share = await t.call('POST', `/images/${imageId}/shares`, { json: { accountId: 'acct-bob' } });
      expect([share.status, share.json.status]).toEqual([201, 'pending']);
      expect((await t.call('GET', `/images/${imageId}/shares`)).json.items.map((s: { id: string }) => s.id)).toEqual([share.json.id]);
      const invitations = await t.call('GET', '/shared-images?status=pending', { actor: BOB_ACTOR });
      expect(invitations.json.items.map((i: { image: { id: string } }) => i.image.id)).toEqual([imageId]);
      const accepted = await t.call('POST', `/shares/${share.json.id}/accept`, { actor: BOB_ACTOR });
      expect([accepted.status, accepted.json.status]).toEqual([200, 'accepted']);
      expect((await t.call('GET', '/shared-images', { actor: BOB_ACTOR })).json.items).toHaveLength(1);
      const picker = await t.call('GET', '/os-picker', { actor: BOB_ACTOR });
      expect(picker.json.sharedWithMe.map((i: { id: string }) => i.id)).toEqual([imageId]);
      const revoked = await t.call('DELETE', `/shares/${share.json.id}`);
      expect([revoked.status, revoked.json.status]).toEqual([200, 'revoked']);
      const again = await t.call('POST', `/images/${imageId}/shares`, { json: { accountId: 'acct-bob' } });
      const rejected = await t.call('POST', `/shares/${again.json.id}/reject`, { actor: BOB_ACTOR });
      expect([rejected.status, rejected.json.status]).toEqual([200, 'rejected']);

      const offer = await t.call('POST', `/images/${imageId}/transfers`, { json: { accountId: 'acct-bob', expiresInSeconds: 3600 } });
      expect([offer.status, offer.json.status]).toEqual([201, 'pending']);
      const declined = await t.call('POST', `/transfers/${offer.json.id}/reject`, { actor: BOB_ACTOR });
      expect(declined.json.status).toBe('rejected');
      const withdrawn = await t.call('POST', `/images/${imageId}/transfers`, { json: { accountId: 'acct-bob' } });
      expect((await t.call('POST', `/transfers/${withdrawn.json.id}/cancel`)).json.status).toBe('cancelled');
      const give = await t.call('POST', `/images/${other.json.image.id}/transfers`, { json: { accountId: 'acct-bob' } });
      expect((await t.call('GET', '/transfers?direction=incoming', { actor: BOB_ACTOR })).json.items).toHaveLength(3);
      expect((await t.call('GET', `/transfers/${give.json.id}`, { actor: BOB_ACTOR })).json.status).toBe('pending');
      const taken = await t.call('POST', `/transfers/${give.json.id}/accept`, { actor: BOB_ACTOR });
      expect([taken.status, taken.json.transfer.status, taken.json.image.accountId]).toEqual([200, 'accepted', 'acct-bob']);

      const target = await t.ii.storages.createStorage(ADMIN, { name: 'second', driver: 'fake-s3', config: { root: 'second' } });
      await t.ii.storages.bindHypervisor(ADMIN, target.id, 'hv-1');
      const copy = await t.call('POST', `/images/${imageId}/copies`, {
        actor: ADMIN,
        json: { storageId: target.id, name: 'shared (copy)' },
      });
      expect([copy.status, copy.json.image.status, copy.json.task.type]).toEqual([202, 'creating', 'copy']);
      await t.ii.idle();
      expect((await t.call('GET', `/images/${copy.json.image.id}`)).json).toMatchObject({ status: 'available', storageId: target.id });
    });

    it('uploads over tus: capabilities, create, a piece, the state, the last piece (an import starts), terminate', async () => {
      const t = await harness();
      const tus = { 'Tus-Resumable': '1.0.0' };
      const options = await t.call('OPTIONS', '/uploads', { actor: null });
      expect([options.status, options.headers.get('tus-version')]).toEqual([204, '1.0.0']);
      const bytes = Buffer.alloc(70_000, 7);
      const meta = `name ${Buffer.from('uploaded').toString('base64')},locationId ${Buffer.from('loc-1').toString('base64')}`;
      const created = await t.call('POST', '/uploads', {
        headers: { ...tus, 'Upload-Length': String(bytes.length), 'Upload-Metadata': meta },
      });
      expect(created.status).toBe(201);
      const location = created.headers.get('location') ?? '';
      expect(location).toMatch(/^\/api\/uploads\/upl_/);
      const path = location.slice('/api'.length);
      const piece = (offset: number, body: Buffer) =>
        t.call('PATCH', path, {
          headers: { ...tus, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
          body,
        });
      expect((await piece(0, bytes.subarray(0, 30_000))).headers.get('upload-offset')).toBe('30000');
      const head = await t.call('HEAD', path, { headers: tus });
      expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length')]).toEqual([200, '30000', '70000']);
      const last = await piece(30_000, bytes.subarray(30_000));
      expect(last.status).toBe(204);
      await t.ii.idle();
      const info = await t.call('GET', path);
      expect(info.json).toMatchObject({ offsetBytes: 70_000, imageId: last.headers.get('upload-image-id') });
      expect((await t.call('GET', `/images/${info.json.imageId}`)).json).toMatchObject({ status: 'available', sha256: sha256(bytes) });
      const other = await t.call('POST', '/uploads', { headers: { ...tus, 'Upload-Defer-Length': '1', 'Upload-Metadata': meta } });
      expect((await t.call('DELETE', (other.headers.get('location') ?? '').slice('/api'.length), { headers: tus })).status).toBe(204);
    });

    it('every registered route answered 2xx in the tests above', () => {
      expect(routes.length).toBeGreaterThan(40);
      expect(routes.filter((route) => !succeeded.has(route))).toEqual([]);
    });
  });
});
