/**
 * Validation failures with field details, hostile inputs (oversized, wrong content type, malformed
 * JSON, path traversal, control characters, shell metacharacters) and the error → status mapping
 * over real HTTP.
 */
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InstanceImagesError } from '../../../src';
import { ADMIN, ALICE, useExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  const harness = useExpressHarness(server);

  const paths = (json: { fields?: { path: string }[] }) => (json.fields ?? []).map((f) => f.path).sort();

  describe('HTTP API: validation', () => {
    it('rejects bad bodies with 400 VALIDATION_FAILED naming every field', async () => {
      const t = await harness();
      const res = await t.call('POST', '/images', { json: { instanceId: '', name: 42, format: 'vmdk' } });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.json).toMatchObject({
        type: 'urn:instance-images:problem:validation-failed',
        title: 'Validation failed',
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(paths(res.json)).toEqual(['format', 'instanceId', 'name']);
      expect(res.json.detail).toContain('instanceId');
      const empty = await t.call('POST', '/images', { headers: { 'content-length': '0' } });
      expect([empty.status, paths(empty.json)]).toEqual([400, ['instanceId', 'name']]);
      const limit = await t.call('PUT', '/admin/accounts/acct-alice/limit', { actor: ADMIN, json: { imageLimit: -1 } });
      expect([limit.status, paths(limit.json)]).toEqual([400, ['imageLimit']]);
      const price = await t.call('PUT', '/admin/locations/loc-1/settings', {
        actor: ADMIN,
        json: { pricePerGbMonth: 0.05, currency: 'usd' },
      });
      expect([price.status, paths(price.json)]).toEqual([400, ['currency', 'pricePerGbMonth']]);
      const array = await t.call('POST', '/images', { json: [{ instanceId: 'web-1', name: 'x' }] });
      expect(array.status).toBe(400);
      expect((await t.call('GET', '/images')).json.items).toEqual([]);
    });

    it('coerces query strings, then validates them with the core schemas', async () => {
      const t = await harness();
      const bad = await t.call('GET', '/images?limit=abc&sort=size&status=deleted');
      expect([bad.status, paths(bad.json)]).toEqual([400, ['limit', 'sort', 'status']]);
      expect(paths((await t.call('GET', '/images?limit=5000')).json)).toEqual(['limit']);
      expect(paths((await t.call('GET', '/images?limit=1&limit=2')).json)).toEqual(['limit']);
      expect(paths((await t.call('GET', '/images?cursor=not-a-cursor')).json)).toEqual(['cursor']);
      expect(paths((await t.call('GET', '/usage')).json)).toEqual(['from', 'to']);
      expect(paths((await t.call('GET', '/usage?from=yesterday&to=2026-01-01')).json)).toEqual(['from']);
      expect(paths((await t.call('DELETE', '/admin/isos/x?deleteFile=perhaps', { actor: ADMIN })).json)).toEqual(['deleteFile']);
      expect((await t.call('GET', '/images?limit=3')).status).toBe(200);
      // Unknown query keys are refused, naming them; a customer's route has no accountId filter at all.
      await t.ii.images.createImage({ kind: 'customer', accountId: 'acct-bob' }, { instanceId: 'bob-1', name: 'bob' });
      await t.ii.idle();
      const unknown = await t.call('GET', '/images?accountId=acct-bob&foo=bar');
      expect([unknown.status, unknown.json.code, paths(unknown.json)]).toEqual([400, 'VALIDATION_FAILED', ['accountId', 'foo']]);
      expect(unknown.text).not.toContain('bob-1');
    });

    it('rejects path ids with control characters', async () => {
      const t = await harness();
      const res = await t.call('GET', '/images/abc%00def');
      expect([res.status, res.json.code]).toEqual([400, 'VALIDATION_FAILED']);
      const newline = await t.call('GET', '/tasks/a%0Ab');
      expect(newline.status).toBe(400);
    });
  });

  describe('HTTP API: hostile inputs', () => {
    it('oversized JSON → 413, wrong content type → 415, malformed JSON → 400, nothing created', async () => {
      const t = await harness();
      const big = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'big', description: 'x'.repeat(70 * 1024) } });
      expect([big.status, big.json.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect(big.json.title).toBe('Payload too large');
      expect(big.headers.get('cache-control')).toBe('no-store');
      const text = await t.call('POST', '/images', {
        body: 'instanceId=web-1&name=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect([text.status, text.json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      const none = await t.call('POST', '/images', {
        body: '{"instanceId":"web-1","name":"x"}',
        headers: { 'content-type': 'text/plain' },
      });
      expect(none.status).toBe(415);
      const malformed = await t.call('POST', '/images', {
        body: '{"instanceId": "web-1", "name": ',
        headers: { 'content-type': 'application/json' },
      });
      expect([malformed.status, malformed.json.code]).toEqual([400, 'MALFORMED_JSON']);
      expect(malformed.json.detail).not.toMatch(/position|token|Unexpected/i);
      const primitive = await t.call('POST', '/images', { body: '"just a string"', headers: { 'content-type': 'application/json' } });
      expect([primitive.status, primitive.json.code]).toEqual([400, 'MALFORMED_JSON']);
      const latin1 = await t.call('POST', '/images', { body: '{}', headers: { 'content-type': 'application/json; charset=latin1' } });
      expect([latin1.status, latin1.json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      // Upload route: JSON is not a file.
      const json = await t.call('PUT', `/admin/isos/upload?name=x&storageId=${t.isoStoreId}&fileKey=x.iso`, {
        actor: ADMIN,
        json: { a: 1 },
      });
      expect([json.status, json.json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      const gzip = await t.call('PUT', `/admin/isos/upload?name=x&storageId=${t.isoStoreId}&fileKey=x.iso`, {
        actor: ADMIN,
        body: Buffer.from('bytes'),
        headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
      });
      expect([gzip.status, gzip.json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
      expect((await t.call('GET', '/images')).json.items).toEqual([]);
      expect((await t.ii.catalog.listIsos(ADMIN)).items).toEqual([]);
    });

    it('a smaller maxJsonBytes is enforced', async () => {
      const t = await harness({ maxJsonBytes: 1024 });
      const res = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'x', description: 'y'.repeat(1100) } });
      expect(res.status).toBe(413);
    });

    it('rejects path traversal in storage keys with 400 naming fileKey, before touching any storage', async () => {
      const t = await harness();
      t.world.files.set('/hv-1/isos/../../etc/passwd', { bytes: Buffer.from('root:x:0:0'), modifiedAt: new Date() });
      for (const fileKey of ['../../etc/passwd', '/etc/passwd', 'a/../../b', 'a\\..\\b', 'ok/\u0000.iso']) {
        const register = await t.call('POST', '/admin/isos', {
          actor: ADMIN,
          json: { name: 'x', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey },
        });
        expect({ fileKey, status: register.status, fields: paths(register.json) }).toEqual({ fileKey, status: 400, fields: ['fileKey'] });
        const upload = await t.call(
          'PUT',
          `/admin/isos/upload?name=x&storageId=${t.isoStoreId}&hypervisorId=hv-1&fileKey=${encodeURIComponent(fileKey)}`,
          { actor: ADMIN, body: Buffer.from('data'), headers: { 'content-type': 'application/octet-stream' } },
        );
        expect({ fileKey, status: upload.status, fields: paths(upload.json) }).toEqual({ fileKey, status: 400, fields: ['fileKey'] });
        const os = await t.call('POST', '/admin/os-images', {
          actor: ADMIN,
          json: { name: 'x', osType: 'linux', storageId: t.templatesId, fileKey },
        });
        expect({ fileKey, status: os.status, fields: paths(os.json) }).toEqual({ fileKey, status: 400, fields: ['fileKey'] });
      }
      const browse = await t.call('GET', `/admin/storages/${t.storageId}/browse?prefix=${encodeURIComponent('../../etc')}`, {
        actor: ADMIN,
      });
      expect([browse.status, paths(browse.json)]).toEqual([400, ['prefix']]);
      expect((await t.ii.catalog.listIsos(ADMIN)).items).toEqual([]);
      expect([...t.world.files.keys()].filter((k) => k.includes('passwd'))).toEqual(['/hv-1/isos/../../etc/passwd']);
    });

    it('takes shell metacharacters in names as plain data', async () => {
      const t = await harness();
      const marker = `/tmp/PWNED-${randomUUID()}`;
      const name = `x; touch ${marker} $(id) \`id\` | cat /etc/passwd && echo '"`;
      const res = await t.call('POST', '/images', { json: { instanceId: 'web-1', name, description: `$(touch ${marker})` } });
      expect(res.status).toBe(202);
      expect(res.json.image.name).toBe(name);
      await t.ii.idle();
      const stored = await t.call('GET', `/images/${res.json.image.id}`);
      expect(stored.json).toMatchObject({ name, description: `$(touch ${marker})`, status: 'available' });
      expect(stored.json.fileKey).toMatch(/^images\/acct-alice\/[A-Za-z0-9._-]+\.qcow2$/);
      const group = await t.call('POST', '/admin/media-groups', { actor: ADMIN, json: { name: `$(reboot); rm -rf /` } });
      expect([group.status, group.json.name]).toEqual([201, '$(reboot); rm -rf /']);
      expect(existsSync(marker)).toBe(false);
    });
  });

  describe('HTTP API: error mapping over HTTP', () => {
    it("maps the service's codes to their statuses", async () => {
      const t = await harness();
      await t.call('PUT', '/admin/accounts/acct-alice/limit', { actor: ADMIN, json: { imageLimit: 1 } });
      const first = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'one' } });
      expect(first.status).toBe(202);
      await t.ii.idle();
      const limited = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'two' } });
      expect([limited.status, limited.json.code, limited.json.detail, limited.json.details]).toEqual([
        409,
        'IMAGE_LIMIT_REACHED',
        'Maximum image limit reached',
        { limit: 1 },
      ]);
      await t.call('DELETE', '/admin/accounts/acct-alice/limit', { actor: ADMIN });

      const cancel = await t.call('POST', `/images/${first.json.image.id}/cancel`);
      expect([cancel.status, cancel.json.code]).toEqual([409, 'INVALID_STATE']);
      const inUse = await t.call('DELETE', `/admin/storages/${t.storageId}`, { actor: ADMIN });
      expect([inUse.status, inUse.json.code]).toEqual([409, 'IN_USE']);

      t.world.storageFree = 10;
      const full = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'full' } });
      expect([full.status, full.json.code]).toEqual([507, 'STORAGE_FULL']);
      expect(full.json.details).toMatchObject({ free: 10 });
      t.world.storageFree = null;
      t.world.addInstance('web-2', 'acct-alice', { hypervisorId: 'hv-2' });
      const noStorage = await t.call('POST', '/images', { json: { instanceId: 'web-2', name: 'x' } });
      expect([noStorage.status, noStorage.json.code]).toEqual([507, 'NO_IMAGE_STORAGE']);

      const os = await t.call('POST', '/admin/os-images', {
        actor: ADMIN,
        json: { name: 'Debian', osType: 'linux', storageId: t.templatesId, fileKey: 'os/debian-12.qcow2' },
      });
      t.world.files.set('tpl:os/debian-12.qcow2', { bytes: Buffer.from('tampered'), modifiedAt: new Date() });
      const deploy = await t.call('POST', '/admin/deployments', {
        actor: ADMIN,
        json: { imageId: os.json.id, instanceId: 'web-2', targetPath: '/disks/n.qcow2' },
      });
      // the deploy is accepted at once; the checksum fails its task
      expect(deploy.status).toBe(202);
      await t.ii.idle();
      const task = await t.call('GET', `/tasks/${deploy.json.task.id}`, { actor: ADMIN });
      expect([task.json.status, task.json.errorCode]).toEqual(['failed', 'CHECKSUM_MISMATCH']);

      await t.call('PUT', '/admin/locations/loc-1/settings', { actor: ADMIN, json: { imagesEnabled: false } });
      const disabled = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'x' } });
      expect([disabled.status, disabled.json.code, disabled.json.detail]).toEqual([
        403,
        'FEATURE_DISABLED',
        'Image feature is not enabled',
      ]);
    });

    it('hides upstream failure details from customers but shows them to admins', async () => {
      const leaky = new InstanceImagesError('STORAGE_UNAVAILABLE', 'ssh root@10.0.0.7: /srv/images/acct/x.qcow2: Input/output error');
      const t = await harness();
      t.ii.images.getImage = async () => {
        throw leaky;
      };
      const customer = await t.call('GET', '/images/x');
      expect([customer.status, customer.json.code, customer.json.detail]).toEqual([
        503,
        'STORAGE_UNAVAILABLE',
        'The image storage is not reachable',
      ]);
      expect(customer.text).not.toContain('10.0.0.7');
      const admin = await t.call('GET', '/images/x', { actor: ADMIN });
      expect([admin.status, admin.json.detail]).toEqual([503, leaky.message]);
      expect(t.logged.map((l) => l.context?.code)).toEqual(['STORAGE_UNAVAILABLE', 'STORAGE_UNAVAILABLE']);
    });

    it('answers unknown errors with a generic 500 and never leaks their text', async () => {
      const t = await harness();
      t.ii.images.listImages = async () => {
        throw new Error('connection to postgres://admin:s3cret@db/internal failed');
      };
      const res = await t.call('GET', '/images');
      expect(res.status).toBe(500);
      expect(res.json).toEqual({
        type: 'urn:instance-images:problem:internal',
        title: 'Internal error',
        status: 500,
        code: 'INTERNAL',
        detail: 'An unexpected error occurred; try again later or contact support',
      });
      expect(res.text).not.toContain('s3cret');
      const admin = await t.call('GET', '/images', { actor: ADMIN });
      expect(admin.text).not.toContain('s3cret');
      expect(t.logged).toHaveLength(2);
    });

    it("a throwing or malformed resolveActor is a 500, not the caller's fault", async () => {
      const t = await harness({
        actorFrom: (req) => {
          if (req.header('x-mode') === 'throw') throw new Error('session store password=hunter2 unreachable');
          if (req.header('x-mode') === 'bad') return { kind: 'customer', accountId: '' };
          if (req.header('x-mode') === 'async') return Promise.resolve(ALICE);
          return null;
        },
      });
      const thrown = await t.call('GET', '/images', { actor: null, headers: { 'x-mode': 'throw' } });
      expect([thrown.status, thrown.json.code]).toEqual([500, 'INTERNAL']);
      expect(thrown.text).not.toContain('hunter2');
      const bad = await t.call('GET', '/images', { actor: null, headers: { 'x-mode': 'bad' } });
      expect([bad.status, bad.json.code]).toEqual([500, 'INTERNAL']);
      const ok = await t.call('GET', '/images', { actor: null, headers: { 'x-mode': 'async' } });
      expect(ok.status).toBe(200);
    });
  });
});
