/**
 * What a hostile sweep of every route found (issue 13, "Bad input"): customer input that reached a
 * 500, unknown query parameters and body fields that were silently ignored, ill-formed Unicode that
 * a database stores as something else, names that came back altered, and a declared oversized
 * body that got no answer. Each case is answered with a 4xx and a stable code.
 */
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { pageSize } from '../../../src/util/cursor';
import { ADMIN, useExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  const harness = useExpressHarness(server);

  const paths = (json: { fields?: { path: string }[] }) => (json.fields ?? []).map((f) => f.path).sort();

  describe('hostile sweep: no 500 from customer input', () => {
    it('query keys that exist on every JS object are unknown parameters, not a crash', async () => {
      const t = await harness();
      for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
        for (const route of ['/images', '/tasks', '/isos', '/usage', '/os-picker']) {
          const res = await t.call('GET', `${route}?${key}=x`);
          expect({ key, route, status: res.status, code: res.json.code, fields: paths(res.json) }).toEqual({
            key,
            route,
            status: 400,
            code: 'VALIDATION_FAILED',
            fields: [key],
          });
        }
      }
      expect(t.logged).toEqual([]);
    });

    it('malformed percent-escapes in a path id are 400 VALIDATION_FAILED on every route shape', async () => {
      const t = await harness();
      for (const bad of ['%zz', '%FF', '%', '%C0%AE', '%E0%80%AF', 'a%2', '%ED%A0%80']) {
        for (const [method, path, actor] of [
          ['GET', `/images/${bad}`, undefined],
          ['DELETE', `/images/${bad}`, undefined],
          ['GET', `/tasks/${bad}/events`, undefined],
          ['POST', `/instances/${bad}/iso`, undefined],
          ['DELETE', `/admin/storages/${bad}/bindings/hv-1`, ADMIN],
        ] as const) {
          const res = await t.call(method, path, actor ? { actor } : {});
          expect({ bad, path, status: res.status, code: res.json?.code, fields: paths(res.json ?? {}) }).toEqual({
            bad,
            path,
            status: 400,
            code: 'VALIDATION_FAILED',
            fields: ['path'],
          });
        }
      }
      expect(t.logged).toEqual([]);
    });

    it('Content-Encoding: gzip on a body that is not compressed is a 400 with a code', async () => {
      const t = await harness();
      const plain = await t.call('POST', '/images', {
        body: '{"instanceId":"web-1","name":"x"}',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      });
      expect([plain.status, plain.json.code]).toEqual([400, 'MALFORMED_JSON']);
      expect(plain.json.detail).toMatch(/Content-Encoding/);
      const deflate = await t.call('POST', '/images', {
        body: 'not deflated',
        headers: { 'content-type': 'application/json', 'content-encoding': 'deflate' },
      });
      expect([deflate.status, deflate.json.code]).toEqual([400, 'MALFORMED_JSON']);
      // A real gzip body still works.
      const real = await t.call('POST', '/images', {
        body: gzipSync('{"instanceId":"web-1","name":"zipped"}'),
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      });
      expect([real.status, real.json.image?.name]).toEqual([202, 'zipped']);
      expect(t.logged).toEqual([]);
    });

    it('answers 413 at once from a declared Content-Length over the limit, without waiting for the body', async () => {
      const t = await harness();
      const url = new URL(`${t.baseUrl}/images`);
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': String(10 * 1024 * 1024),
              'x-test-actor': 'customer:acct-alice',
            },
          },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        // Only the headers are sent: the body never comes. Without the fix no answer arrives.
        req.flushHeaders();
      });
      expect(answer.status).toBe(413);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limitBytes: 64 * 1024 } });
    });
  });

  describe('hostile sweep: nothing unknown is silently ignored', () => {
    it('refuses unknown query parameters naming them (the admin images filter too)', async () => {
      const t = await harness();
      const admin = await t.call('GET', '/admin/images?includeHidden=true&status=available', { actor: ADMIN });
      expect([admin.status, admin.json.code, paths(admin.json)]).toEqual([400, 'VALIDATION_FAILED', ['includeHidden']]);
      expect(admin.json.detail).toContain('includeHidden');
      // Routes without any query parameter refuse them too.
      const image = await t.call('GET', '/images/x?verbose=1');
      expect([image.status, paths(image.json)]).toEqual([400, ['verbose']]);
      expect((await t.call('GET', '/admin/images?status=available', { actor: ADMIN })).status).toBe(200);
    });

    it('skips only the query parameters the host declares as its own (read by its resolveActor)', async () => {
      const t = await harness({
        hostQueryParameters: ['token'],
        actorFrom: (req) => (req.query('token') === 'alice' ? { kind: 'customer', accountId: 'acct-alice' } : null),
      });
      expect((await t.call('GET', '/tasks?token=alice', { actor: null })).status).toBe(200);
      expect((await t.call('GET', '/images?token=alice&limit=2', { actor: null })).status).toBe(200);
      const other = await t.call('GET', '/images?token=alice&session=x', { actor: null });
      expect([other.status, paths(other.json)]).toEqual([400, ['session']]);
    });

    it('refuses unknown router options, naming them', async () => {
      const { createImagesRouter } = await import('../../../adapters/express');
      const { createImagesHandler } = await import('../../../adapters/http');
      const t = await harness();
      const create = server === 'express' ? createImagesRouter : createImagesHandler;
      expect(() => create({ service: t.ii, resolveActor: () => null, maxJsonByte: 10 } as never)).toThrow(
        expect.objectContaining({ code: 'VALIDATION_FAILED', fields: [{ path: 'maxJsonByte', message: 'is not a known field' }] }),
      );
    });

    it('refuses unknown body fields on every JSON route, naming them', async () => {
      const t = await harness();
      const os = await t.ii.catalog.createOsImage(ADMIN, {
        name: 'Debian',
        osType: 'linux',
        storageId: t.templatesId,
        fileKey: 'os/debian-12.qcow2',
      });
      const group = await t.ii.catalog.createMediaGroup(ADMIN, { name: 'Linux' });
      const cases: [string, string, Record<string, unknown>, boolean][] = [
        ['POST', '/images', { instanceId: 'web-1', name: 'x' }, false],
        ['POST', '/instances/web-1/iso', { isoId: 'i' }, false],
        ['POST', '/admin/deployments', { imageId: os.id, instanceId: 'web-1', targetPath: '/d/x.qcow2' }, true],
        ['POST', '/admin/storages', { name: 's', driver: 'fake-s3', config: { root: 'r' } }, true],
        ['PATCH', `/admin/storages/${t.storageId}`, { name: 's2' }, true],
        ['POST', `/admin/storages/${t.storageId}/bindings`, { hypervisorId: 'hv-2' }, true],
        ['POST', `/admin/storages/${t.storageId}/reconcile`, {}, true],
        ['POST', '/admin/os-images', { name: 'x', osType: 'linux', storageId: t.templatesId, fileKey: 'os/debian-12.qcow2' }, true],
        ['PATCH', `/admin/os-images/${os.id}`, { name: 'y' }, true],
        ['POST', '/admin/media-groups', { name: 'g' }, true],
        ['PATCH', `/admin/media-groups/${group.id}`, { name: 'g2' }, true],
        ['POST', '/admin/isos', { name: 'x', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'x.iso' }, true],
        ['PATCH', '/admin/isos/some-iso', { name: 'x' }, true],
        ['PUT', '/admin/locations/loc-1/settings', { imagesEnabled: true }, true],
        ['PUT', '/admin/accounts/acct-alice/limit', { imageLimit: 3 }, true],
      ];
      for (const [method, path, body, admin] of cases) {
        const res = await t.call(method, path, { json: { ...body, sneaky: true, 'nested.key': 1 }, ...(admin ? { actor: ADMIN } : {}) });
        expect({ path, status: res.status, code: res.json.code, fields: paths(res.json) }).toEqual({
          path,
          status: 400,
          code: 'VALIDATION_FAILED',
          fields: ['nested.key', 'sneaky'],
        });
      }
      expect((await t.call('GET', '/images')).json.items).toEqual([]);
    });

    it('the SDK refuses unknown fields when called directly too', async () => {
      const t = await harness();
      await expect(
        t.ii.images.createImage({ kind: 'customer', accountId: 'acct-alice' }, {
          instanceId: 'web-1',
          name: 'x',
          descripton: 'typo',
        } as never),
      ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', fields: [{ path: 'descripton', message: 'is not a known field' }] });
      await expect(t.ii.images.listImages(ADMIN, { includeHidden: true } as never)).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        fields: [{ path: 'includeHidden' }],
      });
    });
  });

  describe('hostile sweep: what is stored is what was sent', () => {
    it('refuses lone UTF-16 surrogates in every string, naming the field', async () => {
      const t = await harness();
      for (const [body, field] of [
        ['{"instanceId":"web-1","name":"a\\ud800b"}', 'name'],
        ['{"instanceId":"web-1","name":"ok","description":"x\\udc00"}', 'description'],
        ['{"instanceId":"web\\ud83d","name":"ok"}', 'instanceId'],
        ['{"instanceId":"web-1","name":"\\udc00\\ud800"}', 'name'],
      ] as const) {
        const res = await t.call('POST', '/images', { body, headers: { 'content-type': 'application/json' } });
        expect({ body, status: res.status, code: res.json.code, fields: paths(res.json) }).toEqual({
          body,
          status: 400,
          code: 'VALIDATION_FAILED',
          fields: [field],
        });
        expect(res.json.detail).toContain('well-formed Unicode');
      }
      // A well-formed pair (an emoji) is fine.
      const emoji = await t.call('POST', '/images', {
        body: '{"instanceId":"web-1","name":"ok \\ud83d\\ude00"}',
        headers: { 'content-type': 'application/json' },
      });
      expect([emoji.status, emoji.json.image.name]).toEqual([202, 'ok 😀']);
      const storage = await t.call('POST', '/admin/storages', {
        actor: ADMIN,
        body: '{"name":"s","driver":"fake-s3","config":{"root":"r","secret":"\\ud800"}}',
        headers: { 'content-type': 'application/json' },
      });
      expect([storage.status, paths(storage.json)]).toEqual([400, ['config.secret']]);
      expect((await t.call('GET', '/images')).json.items.map((i: { name: string }) => i.name)).toEqual(['ok 😀']);
    });

    it('refuses names with leading or trailing whitespace (never trims them); descriptions are kept exactly', async () => {
      const t = await harness();
      for (const name of [' padded ', 'padded ', ' padded', '\u00a0padded', 'padded\u2003']) {
        const res = await t.call('POST', '/images', { json: { instanceId: 'web-1', name } });
        expect({ name, status: res.status, fields: paths(res.json) }).toEqual({ name, status: 400, fields: ['name'] });
        expect(res.json.detail).toContain('must not start or end with whitespace');
        const group = await t.call('POST', '/admin/media-groups', { actor: ADMIN, json: { name } });
        expect([group.status, paths(group.json)]).toEqual([400, ['name']]);
      }
      const ok = await t.call('POST', '/images', {
        json: { instanceId: 'web-1', name: 'inner  spaces kept', description: '  indented\n\tand trailing  ' },
      });
      expect(ok.status).toBe(202);
      const stored = await t.call('GET', `/images/${ok.json.image.id}`);
      expect([stored.json.name, stored.json.description]).toEqual(['inner  spaces kept', '  indented\n\tand trailing  ']);
    });
  });
});
describe('page size', () => {
  it('says what it does: out of range is refused naming limit and the range, never clamped', () => {
    expect(pageSize(undefined)).toBe(50);
    expect(pageSize(1000)).toBe(1000);
    for (const bad of [0, 1001, 5000, 1.5, -1]) {
      expect(() => pageSize(bad)).toThrow(
        expect.objectContaining({
          code: 'VALIDATION_FAILED',
          fields: [{ path: 'limit', message: 'must be an integer from 1 to 1000 (the page size)' }],
        }),
      );
    }
  });
});
