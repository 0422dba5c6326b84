/**
 * The auth boundary, driven from the routes Express really registered so that no route is
 * forgotten: unauthenticated → 401 everywhere (except the OpenAPI document); every /admin route
 * with a customer actor → 403; every customer route taking an id, called with another account's
 * id → 404 exactly like a missing one, and nothing changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  ALICE,
  BOB,
  liveRoutes,
  startExpressHarness,
  type CallOptions,
  type ExpressHarness,
  describeEachServer,
} from '../../support/express-harness';

interface Sample {
  path: string;
  options?: CallOptions;
}

describeEachServer((server) => {
  let h: ExpressHarness;
  let routes: string[];
  const ids = {
    aliceImage: '',
    bobImage: '',
    bobFailed: '',
    bobTask: '',
    iso: '',
    hiddenIso: '',
    group: '',
    os: '',
    bobShare: '',
    bobTransfer: '',
    bobImport: '',
    bobUpload: '',
  };
  const TUS = { 'Tus-Resumable': '1.0.0' };
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const period = `from=${encodeURIComponent('2026-01-01T00:00:00Z')}&to=${encodeURIComponent('2026-02-01T00:00:00Z')}`;

  beforeAll(async () => {
    h = await startExpressHarness({ server });
    routes = liveRoutes(h.ii);
    const alice = await h.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'alice' });
    const bob = await h.ii.images.createImage(BOB, { instanceId: 'bob-1', name: 'bob' });
    await h.ii.idle();
    h.world.failNextCapture = 'CAPTURE_FAILED';
    const failed = await h.ii.images.createImage(BOB, { instanceId: 'bob-1', name: 'bob failed' });
    await h.ii.idle();
    h.world.files.set('/hv-1/isos/a.iso', { bytes: Buffer.from('iso'), modifiedAt: new Date() });
    const iso = await h.ii.catalog.registerIso(ADMIN, { name: 'visible', storageId: h.isoStoreId, hypervisorId: 'hv-1', fileKey: 'a.iso' });
    const hidden = await h.ii.catalog.registerIso(ADMIN, {
      name: 'hidden',
      storageId: h.isoStoreId,
      hypervisorId: 'hv-1',
      fileKey: 'a.iso',
      customerVisible: false,
    });
    const group = await h.ii.catalog.createMediaGroup(ADMIN, { name: 'Linux' });
    // An import of Bob's that fails at once (nothing listens on port 9): a task id of another account.
    const bobImport = await h.ii.imports.importImage(BOB, { url: 'http://127.0.0.1:9/x.img', name: 'bob import', locationId: 'loc-1' });
    await h.ii.idle();
    const os = await h.ii.catalog.createOsImage(ADMIN, {
      name: 'Debian',
      osType: 'linux',
      storageId: h.templatesId,
      fileKey: 'os/debian-12.qcow2',
    });
    // Bob shares and offers his image to carol: alice is a party of neither.
    const bobShare = await h.ii.sharing.shareImage(BOB, bob.image.id, { accountId: 'acct-carol' });
    const bobTransfer = await h.ii.transfers.offerTransfer(BOB, bob.image.id, { accountId: 'acct-carol' });
    Object.assign(ids, {
      bobShare: bobShare.id,
      bobTransfer: bobTransfer.id,
      aliceImage: alice.image.id,
      bobImage: bob.image.id,
      bobFailed: failed.image.id,
      bobTask: bob.task.id,
      bobImport: bobImport.task.id,
      bobUpload: (
        await h.ii.uploads.createUpload(BOB, { target: { kind: 'image', name: 'bob upload', locationId: 'loc-1' }, lengthBytes: 10 })
      ).id,
      iso: iso.id,
      hiddenIso: hidden.id,
      group: group.id,
      os: os.id,
    });
  });

  afterAll(async () => {
    await h.close();
  });

  /** A well-formed request for every route (what an admin would send). */
  function sample(route: string): Sample | undefined {
    const table: Record<string, Sample> = {
      'GET /openapi.json': { path: '/openapi.json' },
      'GET /health': { path: '/health' },
      'GET /images': { path: '/images' },
      'POST /images': { path: '/images', options: { json: { instanceId: 'web-1', name: 'x' } } },
      'GET /images/:imageId': { path: `/images/${ids.aliceImage}` },
      'POST /images/:imageId/retry': { path: `/images/${ids.aliceImage}/retry` },
      'POST /images/:imageId/cancel': { path: `/images/${ids.aliceImage}/cancel` },
      'DELETE /images/:imageId': { path: `/images/${ids.aliceImage}` },
      'PATCH /images/:imageId': { path: `/images/${ids.aliceImage}`, options: { json: { firmware: 'uefi' } } },
      'PUT /images/:imageId/protection': { path: `/images/${ids.aliceImage}/protection`, options: { json: { protected: true } } },
      'GET /tasks': { path: '/tasks' },
      'GET /tasks/:taskId': { path: `/tasks/${ids.bobTask}` },
      'GET /tasks/:taskId/events': { path: `/tasks/${ids.bobTask}/events` },
      'GET /os-picker': { path: '/os-picker' },
      'GET /isos': { path: '/isos' },
      'POST /instances/:instanceId/iso': { path: '/instances/web-1/iso', options: { json: { isoId: ids.iso } } },
      'DELETE /instances/:instanceId/iso': { path: '/instances/web-1/iso' },
      'GET /usage': { path: `/usage?${period}` },
      'GET /admin/storages': { path: '/admin/storages' },
      'POST /admin/storages': { path: '/admin/storages', options: { json: { name: 'n', driver: 'fake-s3', config: { root: 'r' } } } },
      'GET /admin/storages/:storageId': { path: `/admin/storages/${h.storageId}` },
      'PATCH /admin/storages/:storageId': { path: `/admin/storages/${h.storageId}`, options: { json: { name: 'renamed' } } },
      'DELETE /admin/storages/:storageId': { path: `/admin/storages/${h.storageId}` },
      'POST /admin/storages/:storageId/bindings': {
        path: `/admin/storages/${h.storageId}/bindings`,
        options: { json: { hypervisorId: 'hv-2' } },
      },
      'DELETE /admin/storages/:storageId/bindings/:hypervisorId': { path: `/admin/storages/${h.storageId}/bindings/hv-1` },
      'GET /admin/storages/:storageId/health': { path: `/admin/storages/${h.storageId}/health` },
      'GET /admin/storages/:storageId/browse': { path: `/admin/storages/${h.storageId}/browse` },
      'POST /admin/storages/:storageId/reconcile': {
        path: `/admin/storages/${h.storageId}/reconcile`,
        options: { json: { deleteOrphans: true, dryRun: false } },
      },
      'POST /admin/storages/:storageId/chunk-gc': { path: `/admin/storages/${h.storageId}/chunk-gc`, options: { json: {} } },
      'POST /admin/storages/:storageId/chunk-verify': { path: `/admin/storages/${h.storageId}/chunk-verify` },
      'GET /admin/os-images': { path: '/admin/os-images' },
      'POST /admin/os-images': {
        path: '/admin/os-images',
        options: { json: { name: 'n', osType: 'linux', storageId: h.templatesId, fileKey: 'os/debian-12.qcow2' } },
      },
      'PATCH /admin/os-images/:imageId': { path: `/admin/os-images/${ids.os}`, options: { json: { name: 'renamed' } } },
      'DELETE /admin/os-images/:imageId': { path: `/admin/os-images/${ids.os}` },
      'GET /admin/media-groups': { path: '/admin/media-groups' },
      'POST /admin/media-groups': { path: '/admin/media-groups', options: { json: { name: 'g' } } },
      'PATCH /admin/media-groups/:groupId': { path: `/admin/media-groups/${ids.group}`, options: { json: { name: 'renamed' } } },
      'DELETE /admin/media-groups/:groupId': { path: `/admin/media-groups/${ids.group}` },
      'GET /admin/isos': { path: '/admin/isos' },
      'POST /admin/isos': {
        path: '/admin/isos',
        options: { json: { name: 'n', storageId: h.isoStoreId, hypervisorId: 'hv-1', fileKey: 'a.iso' } },
      },
      'PUT /admin/isos/upload': {
        path: `/admin/isos/upload?name=n&storageId=${h.isoStoreId}&hypervisorId=hv-1&fileKey=up.iso`,
        options: { body: Buffer.from('iso bytes'), headers: { 'content-type': 'application/octet-stream' } },
      },
      'PATCH /admin/isos/:isoId': { path: `/admin/isos/${ids.iso}`, options: { json: { customerVisible: false } } },
      'DELETE /admin/isos/:isoId': { path: `/admin/isos/${ids.iso}?deleteFile=true` },
      'GET /admin/locations': { path: '/admin/locations' },
      'GET /admin/locations/:locationId/settings': { path: '/admin/locations/loc-1/settings' },
      'PUT /admin/locations/:locationId/settings': { path: '/admin/locations/loc-1/settings', options: { json: { imagesEnabled: false } } },
      'GET /admin/accounts/:accountId/limit': { path: '/admin/accounts/acct-alice/limit' },
      'PUT /admin/accounts/:accountId/limit': { path: '/admin/accounts/acct-alice/limit', options: { json: { imageLimit: 100 } } },
      'DELETE /admin/accounts/:accountId/limit': { path: '/admin/accounts/acct-alice/limit' },
      'GET /admin/tasks': { path: '/admin/tasks' },
      'GET /admin/images': { path: '/admin/images' },
      'DELETE /admin/images/:imageId': { path: `/admin/images/${ids.bobImage}` },
      'POST /admin/images/:imageId/refresh-size': { path: `/admin/images/${ids.aliceImage}/refresh-size` },
      'GET /admin/usage': { path: `/admin/usage?${period}` },
      'POST /admin/deployments': {
        path: '/admin/deployments',
        options: { json: { imageId: ids.aliceImage, instanceId: 'web-1', targetPath: '/disks/x.qcow2' } },
      },
      'POST /admin/recover': { path: '/admin/recover' },
      'PUT /admin/accounts/:accountId/suspension': { path: '/admin/accounts/acct-alice/suspension' },
      'DELETE /admin/accounts/:accountId/suspension': { path: '/admin/accounts/acct-alice/suspension' },
      'POST /admin/accounts/:accountId/close': { path: '/admin/accounts/acct-nobody/close' },
      'POST /admin/instances/:instanceId/deleted': { path: '/admin/instances/gone-1/deleted' },
      'POST /images/:imageId/shares': { path: `/images/${ids.aliceImage}/shares`, options: { json: { accountId: 'acct-bob' } } },
      'GET /images/:imageId/shares': { path: `/images/${ids.aliceImage}/shares` },
      'GET /shared-images': { path: '/shared-images' },
      'POST /shares/:shareId/accept': { path: `/shares/${ids.bobShare}/accept` },
      'POST /shares/:shareId/reject': { path: `/shares/${ids.bobShare}/reject` },
      'DELETE /shares/:shareId': { path: `/shares/${ids.bobShare}` },
      'POST /images/:imageId/transfers': { path: `/images/${ids.aliceImage}/transfers`, options: { json: { accountId: 'acct-bob' } } },
      'GET /transfers': { path: '/transfers' },
      'GET /transfers/:transferId': { path: `/transfers/${ids.bobTransfer}` },
      'POST /transfers/:transferId/accept': { path: `/transfers/${ids.bobTransfer}/accept` },
      'POST /transfers/:transferId/reject': { path: `/transfers/${ids.bobTransfer}/reject` },
      'POST /transfers/:transferId/cancel': { path: `/transfers/${ids.bobTransfer}/cancel` },
      'POST /images/:imageId/copies': { path: `/images/${ids.aliceImage}/copies`, options: { json: { storageId: h.storageId } } },
      'POST /images/import': {
        path: '/images/import',
        options: { json: { url: 'http://127.0.0.1:9/x.img', name: 'x', locationId: 'loc-1', accountId: 'acct-alice' } },
      },
      'POST /imports/:taskId/cancel': { path: `/imports/${ids.bobTask}/cancel` },
      'OPTIONS /uploads': { path: '/uploads' },
      'POST /uploads': {
        path: '/uploads',
        options: {
          headers: {
            ...TUS,
            'Upload-Length': '10',
            'Upload-Metadata': `name ${b64('x')},locationId ${b64('loc-1')},accountId ${b64('acct-alice')}`,
          },
        },
      },
      'GET /uploads/:uploadId': { path: `/uploads/${ids.bobUpload}` },
      'PATCH /uploads/:uploadId': {
        path: `/uploads/${ids.bobUpload}`,
        options: { headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'abc' },
      },
      'DELETE /uploads/:uploadId': { path: `/uploads/${ids.bobUpload}`, options: { headers: TUS } },
      'POST /images/:imageId/download-link': { path: `/images/${ids.aliceImage}/download-link` },
      'GET /downloads/images/:imageId': { path: `/downloads/images/${ids.aliceImage}?account=acct-alice&expires=1&signature=forged` },
      'POST /admin/os-images/import': {
        path: '/admin/os-images/import',
        options: { json: { url: 'http://127.0.0.1:9/x.img', name: 'n', osType: 'linux', storageId: h.templatesId } },
      },
    };
    return table[route];
  }

  const methodOf = (route: string) => route.split(' ')[0] as string;

  describe('HTTP API: the auth boundary', () => {
    it('has a sample request for every registered route', () => {
      expect(routes.filter((route) => !sample(route))).toEqual([]);
    });

    it('answers 401 problem+json to an unauthenticated caller on every route but the OpenAPI document', async () => {
      // The signed download carries its own credential: without a valid link it answers 403 (below).
      // OPTIONS /uploads is tus's capability discovery, which needs no actor.
      const publicRoutes = ['GET /openapi.json', 'GET /health', 'GET /downloads/images/:imageId', 'OPTIONS /uploads'];
      for (const route of routes.filter((r) => !publicRoutes.includes(r))) {
        const s = sample(route) as Sample;
        const res = await h.call(methodOf(route), s.path, { ...s.options, actor: null });
        expect({ route, status: res.status, code: res.json?.code, type: res.headers.get('content-type') }).toEqual({
          route,
          status: 401,
          code: 'UNAUTHENTICATED',
          type: expect.stringMatching(/^application\/problem\+json/),
        });
      }
    });

    it('answers 403 FORBIDDEN to a customer on every /admin route, and changes nothing', async () => {
      const admin = routes.filter((route) => route.split(' ')[1]?.startsWith('/admin'));
      expect(admin.length).toBeGreaterThanOrEqual(30);
      const before = JSON.stringify({
        storages: await h.ii.repositories.storages.list({}),
        images: await h.ii.repositories.images.list({}, { limit: 100 }),
        isos: await h.ii.repositories.isos.list({}, { limit: 100 }),
        groups: await h.ii.repositories.mediaGroups.list({}),
        loc: await h.ii.repositories.settings.listLocations(),
        limit: await h.ii.repositories.settings.getAccountLimit('acct-alice'),
      });
      for (const route of admin) {
        const s = sample(route) as Sample;
        for (const customer of [ALICE, BOB]) {
          const res = await h.call(methodOf(route), s.path, { ...s.options, actor: customer });
          expect({ route, status: res.status, code: res.json?.code }).toEqual({ route, status: 403, code: 'FORBIDDEN' });
        }
      }
      const after = JSON.stringify({
        storages: await h.ii.repositories.storages.list({}),
        images: await h.ii.repositories.images.list({}, { limit: 100 }),
        isos: await h.ii.repositories.isos.list({}, { limit: 100 }),
        groups: await h.ii.repositories.mediaGroups.list({}),
        loc: await h.ii.repositories.settings.listLocations(),
        limit: await h.ii.repositories.settings.getAccountLimit('acct-alice'),
      });
      expect(after).toBe(before);
    });

    it("answers 404 to a customer naming another account's id on every customer route with an id, exactly like a missing id", async () => {
      // Alice calls with Bob's ids; the "missing" variant uses an id that exists nowhere.
      const foreign: Record<string, (id: 'foreign' | 'missing') => Sample> = {
        'GET /images/:imageId': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}` }),
        'POST /images/:imageId/retry': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobFailed : 'nope'}/retry` }),
        'POST /images/:imageId/cancel': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/cancel` }),
        'DELETE /images/:imageId': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}` }),
        'PATCH /images/:imageId': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}`, options: { json: { name: 'x' } } }),
        'PUT /images/:imageId/protection': (v) => ({
          path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/protection`,
          options: { json: { protected: true } },
        }),
        'GET /tasks/:taskId': (v) => ({ path: `/tasks/${v === 'foreign' ? ids.bobTask : 'nope'}` }),
        'GET /tasks/:taskId/events': (v) => ({ path: `/tasks/${v === 'foreign' ? ids.bobTask : 'nope'}/events` }),
        'POST /instances/:instanceId/iso': (v) => ({
          path: `/instances/${v === 'foreign' ? 'bob-1' : 'nope'}/iso`,
          options: { json: { isoId: ids.iso } },
        }),
        'DELETE /instances/:instanceId/iso': (v) => ({ path: `/instances/${v === 'foreign' ? 'bob-1' : 'nope'}/iso` }),
        'POST /images/:imageId/shares': (v) => ({
          path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/shares`,
          options: { json: { accountId: 'acct-alice-friend' } },
        }),
        'GET /images/:imageId/shares': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/shares` }),
        'POST /shares/:shareId/accept': (v) => ({ path: `/shares/${v === 'foreign' ? ids.bobShare : 'nope'}/accept` }),
        'POST /shares/:shareId/reject': (v) => ({ path: `/shares/${v === 'foreign' ? ids.bobShare : 'nope'}/reject` }),
        'DELETE /shares/:shareId': (v) => ({ path: `/shares/${v === 'foreign' ? ids.bobShare : 'nope'}` }),
        'POST /images/:imageId/transfers': (v) => ({
          path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/transfers`,
          options: { json: { accountId: 'acct-alice-friend' } },
        }),
        'POST /images/:imageId/copies': (v) => ({
          path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/copies`,
          options: { json: { storageId: h.storageId } },
        }),
        'GET /transfers/:transferId': (v) => ({ path: `/transfers/${v === 'foreign' ? ids.bobTransfer : 'nope'}` }),
        'POST /transfers/:transferId/accept': (v) => ({ path: `/transfers/${v === 'foreign' ? ids.bobTransfer : 'nope'}/accept` }),
        'POST /transfers/:transferId/reject': (v) => ({ path: `/transfers/${v === 'foreign' ? ids.bobTransfer : 'nope'}/reject` }),
        'POST /transfers/:transferId/cancel': (v) => ({ path: `/transfers/${v === 'foreign' ? ids.bobTransfer : 'nope'}/cancel` }),
        'POST /imports/:taskId/cancel': (v) => ({ path: `/imports/${v === 'foreign' ? ids.bobImport : 'nope'}/cancel` }),
        'POST /images/:imageId/download-link': (v) => ({ path: `/images/${v === 'foreign' ? ids.bobImage : 'nope'}/download-link` }),
        'GET /uploads/:uploadId': (v) => ({ path: `/uploads/${v === 'foreign' ? ids.bobUpload : 'nope'}` }),
        'PATCH /uploads/:uploadId': (v) => ({
          path: `/uploads/${v === 'foreign' ? ids.bobUpload : 'nope'}`,
          options: { headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'abc' },
        }),
        'DELETE /uploads/:uploadId': (v) => ({ path: `/uploads/${v === 'foreign' ? ids.bobUpload : 'nope'}`, options: { headers: TUS } }),
      };
      // The signed download is public (its link is the credential; see the signed-link tests).
      const customerRoutesWithIds = routes.filter(
        (route) => !route.split(' ')[1]?.startsWith('/admin') && route.includes(':') && !route.startsWith('GET /downloads/'),
      );
      expect(Object.keys(foreign).sort()).toEqual(customerRoutesWithIds.sort());
      for (const [route, build] of Object.entries(foreign)) {
        const f = build('foreign');
        const m = build('missing');
        const got = await h.call(methodOf(route), f.path, { ...f.options, actor: ALICE });
        const missing = await h.call(methodOf(route), m.path, { ...m.options, actor: ALICE });
        expect({ route, status: got.status, code: got.json?.code }).toEqual({ route, status: 404, code: 'NOT_FOUND' });
        expect({ route, status: missing.status }).toEqual({ route, status: 404 });
        // Same title and type; the detail differs only by the id named.
        expect({ route, title: got.json.title, type: got.json.type, kind: got.json.details?.kind }).toEqual({
          route,
          title: missing.json.title,
          type: missing.json.type,
          kind: missing.json.details?.kind,
        });
        expect(got.text).not.toContain('acct-bob');
      }
      // Bob's things are untouched and Bob's instance has nothing mounted.
      expect((await h.ii.images.getImage(BOB, ids.bobImage)).status).toBe('available');
      expect((await h.ii.images.getImage(BOB, ids.bobFailed)).status).toBe('error');
      expect((await h.ii.sharing.listImageShares(BOB, ids.bobImage)).items.map((s) => s.status)).toEqual(['pending']);
      expect((await h.ii.transfers.getTransfer(BOB, ids.bobTransfer)).status).toBe('pending');
      expect(h.world.mounted.has('dom-bob-1')).toBe(false);
    });

    it("answers 404 for another account's ids inside bodies (capture, deploy) and for hidden ISOs; an admin is told the account differs", async () => {
      const capture = await h.call('POST', '/images', { actor: ALICE, json: { instanceId: 'bob-1', name: 'steal' } });
      expect([capture.status, capture.json.code]).toEqual([404, 'NOT_FOUND']);
      // deploys are the host's (admin) call; even then a custom image never lands on another account's instance
      const deployAsCustomer = await h.call('POST', '/admin/deployments', {
        actor: ALICE,
        json: { imageId: ids.aliceImage, instanceId: 'web-1', targetPath: '/disks/a.qcow2' },
      });
      expect([deployAsCustomer.status, deployAsCustomer.json.code]).toEqual([403, 'FORBIDDEN']);
      const deployForeignImage = await h.call('POST', '/admin/deployments', {
        actor: ADMIN,
        json: { imageId: ids.bobImage, instanceId: 'web-1', targetPath: '/disks/a.qcow2' },
      });
      // an admin sees every image, so is told why: the image belongs to another account (never a 404)
      expect([deployForeignImage.status, deployForeignImage.json.code]).toEqual([409, 'ACCOUNT_MISMATCH']);
      expect(deployForeignImage.json.detail).toContain('belongs to account "acct-bob", not to account "acct-alice"');
      const deployOntoForeign = await h.call('POST', '/admin/deployments', {
        actor: ADMIN,
        json: { imageId: ids.aliceImage, instanceId: 'bob-1', targetPath: '/disks/a.qcow2' },
      });
      expect([deployOntoForeign.status, deployOntoForeign.json.code]).toEqual([409, 'ACCOUNT_MISMATCH']);
      const hidden = await h.call('POST', '/instances/web-1/iso', { actor: ALICE, json: { isoId: ids.hiddenIso } });
      expect([hidden.status, hidden.json.code]).toEqual([404, 'NOT_FOUND']);
      expect(h.world.files.has('hv-1:/disks/a.qcow2')).toBe(false);
      expect((await h.call('GET', '/images', { actor: ALICE })).json.items.map((i: { name: string }) => i.name)).toEqual(['alice']);
      expect(
        (await h.call('GET', '/tasks', { actor: ALICE })).json.items.every((t: { accountId: string }) => t.accountId === 'acct-alice'),
      ).toBe(true);
    });
  });
});
