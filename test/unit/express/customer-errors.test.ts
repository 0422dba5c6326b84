/**
 * One place decides what a customer sees of an error (`publicError`): a driver's message (virsh's
 * stderr, a hypervisor path, a host) never reaches a customer on any route, whatever its code;
 * admins see it all. The fakes fail like the libvirt driver does (`virsh dumpxml failed (exit 1):
 * error: failed to get domain '…'`, `details.isoPath`).
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, InstanceImagesError, type ErrorCode } from '../../../src/errors';
import { CUSTOMER_VISIBLE_CODES, markInfrastructureError, publicError, withInfrastructureErrors } from '../../../src/util/public-error';
import { PROBLEM_STATUS } from '../../../adapters/http/problem';
import { ADMIN, useExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  const harness = useExpressHarness(server);

  const LEAKS = ['virsh', 'dom-web-1', '/hv-1/', '/isos', '10.9.9.9', '/srv/secret', 'exit 1', 'exitCode', 'isoPath'];
  const leaked = (text: string) => LEAKS.filter((needle) => text.includes(needle));

  describe('what a customer sees of an error', () => {
    it("a missing domain: POST /images and the ISO routes answer 404 without virsh's words; admins see them", async () => {
      const t = await harness();
      const iso = await t.ii.catalog.uploadIso(
        ADMIN,
        { name: 'Installer', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'installer.iso' },
        Readable.from([Buffer.from('ISO9660')]),
      );
      t.world.domains.delete('dom-web-1');
      const calls = [
        ['POST', '/images', { instanceId: 'web-1', name: 'x' }],
        ['POST', '/instances/web-1/iso', { isoId: iso.id }],
        ['DELETE', '/instances/web-1/iso', undefined],
      ] as const;
      for (const [method, path, json] of calls) {
        const customer = await t.call(method, path, json ? { json } : {});
        expect({ path, status: customer.status, body: customer.json }).toEqual({
          path,
          status: 404,
          body: { type: 'urn:instance-images:problem:not-found', title: 'Not found', status: 404, code: 'NOT_FOUND', detail: 'Not found' },
        });
        expect(leaked(customer.text)).toEqual([]);
      }
      const admin = await t.call('POST', '/instances/web-1/iso', { actor: ADMIN, json: { isoId: iso.id } });
      expect([admin.status, admin.json.detail]).toEqual([404, "virsh dumpxml failed (exit 1): error: failed to get domain 'dom-web-1'"]);
      expect((await t.call('GET', '/images')).json.items).toEqual([]);
    });

    it("an ISO whose file is gone: no hypervisor path in the customer's answer", async () => {
      const t = await harness();
      const iso = await t.ii.catalog.uploadIso(
        ADMIN,
        { name: 'Installer', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'installer.iso' },
        Readable.from([Buffer.from('ISO9660')]),
      );
      t.world.goneFiles.add('/hv-1/isos/installer.iso');
      const customer = await t.call('POST', '/instances/web-1/iso', { json: { isoId: iso.id } });
      expect([customer.status, customer.json.code, customer.json.details]).toEqual([404, 'NOT_FOUND', undefined]);
      expect(leaked(customer.text)).toEqual([]);
      const admin = await t.call('POST', '/instances/web-1/iso', { actor: ADMIN, json: { isoId: iso.id } });
      expect(admin.json.details).toEqual({ isoPath: '/hv-1/isos/installer.iso' });
    });

    it('whatever code a driver fails with, customers get only the code and its fixed message on every hypervisor route', async () => {
      const t = await harness();
      const iso = await t.ii.catalog.uploadIso(
        ADMIN,
        { name: 'Installer', storageId: t.isoStoreId, hypervisorId: 'hv-1', fileKey: 'installer.iso' },
        Readable.from([Buffer.from('ISO9660')]),
      );
      for (const code of ERROR_CODES) {
        t.world.hypervisorFailure = new InstanceImagesError(code, `ssh root@10.9.9.9: qemu-img: /srv/secret/disk.qcow2: exit 1`, {
          fields: [{ path: 'root', message: '/srv/secret' }],
          details: { path: '/srv/secret', host: '10.9.9.9', exitCode: 1 },
        });
        for (const [method, path, json] of [
          ['POST', '/images', { instanceId: 'web-1', name: 'x' }],
          ['POST', '/instances/web-1/iso', { isoId: iso.id }],
          ['DELETE', '/instances/web-1/iso', undefined],
        ] as const) {
          const res = await t.call(method, path, json ? { json } : {});
          expect({ code, path, status: res.status, got: res.json.code, leaked: leaked(res.text) }).toEqual({
            code,
            path,
            status: PROBLEM_STATUS[code].status,
            got: code,
            leaked: [],
          });
        }
      }
      // A capture that fails in the background: the image's reason and the task speak the customer's language.
      t.world.hypervisorFailure = null;
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'late' } });
      t.world.hypervisorFailure = new InstanceImagesError(
        'NOT_FOUND',
        "virsh dumpxml failed (exit 1): error: failed to get domain 'dom-web-1'",
      );
      await t.ii.idle();
      for (const path of [`/images/${created.json.image.id}`, `/tasks/${created.json.task.id}`, '/tasks', '/images']) {
        expect({ path, leaked: leaked((await t.call('GET', path)).text) }).toEqual({ path, leaked: [] });
      }
    });

    it('publicError: the one rule', () => {
      const core = new InstanceImagesError('IMAGE_LIMIT_REACHED', 'Maximum image limit reached', {
        details: { limit: 5, storageRoot: '/srv', hypervisorId: 'hv-1' },
      });
      expect(publicError(core, 'customer')).toEqual({
        code: 'IMAGE_LIMIT_REACHED',
        message: 'Maximum image limit reached',
        fields: [],
        details: { limit: 5 },
      });
      expect(publicError(core, 'admin').details).toEqual({ limit: 5, storageRoot: '/srv', hypervisorId: 'hv-1' });
      const driver = markInfrastructureError(
        new InstanceImagesError('VALIDATION_FAILED', 'The file /srv/x is a link', { fields: [{ path: 'root', message: '/srv' }] }),
      );
      expect(publicError(driver, 'customer')).toEqual({
        code: 'VALIDATION_FAILED',
        message: 'The input is not valid',
        fields: [],
        details: {},
      });
      expect(publicError(driver, 'admin').message).toBe('The file /srv/x is a link');
      for (const code of ERROR_CODES) {
        const view = publicError(new InstanceImagesError(code, 'from the core: /srv/secret'), 'customer');
        expect(view.message === 'from the core: /srv/secret').toBe(CUSTOMER_VISIBLE_CODES.has(code));
        // The HTTP table says the same thing as the core's rule.
        expect({ code, expose: PROBLEM_STATUS[code].exposeToCustomers }).toEqual({
          code,
          expose: CUSTOMER_VISIBLE_CODES.has(code as ErrorCode),
        });
      }
      expect(publicError(new Error('postgres://u:p@db'), 'admin')).toEqual({
        code: 'INTERNAL',
        message: 'An unexpected error occurred; try again later or contact support',
        fields: [],
        details: {},
      });
      // A copy of the class from another bundle counts by its name and code.
      const foreign = Object.assign(new Error('virsh failed'), { name: 'InstanceImagesError', code: 'NOT_FOUND', fields: [], details: {} });
      expect(publicError(markInfrastructureError(foreign), 'customer').message).toBe('Not found');
    });

    it('withInfrastructureErrors marks what a driver throws or rejects with, and passes everything else through', async () => {
      const raw = {
        name: 'd',
        sync: () => {
          throw new InstanceImagesError('NOT_FOUND', 'sync /srv');
        },
        async: async () => {
          throw new InstanceImagesError('NOT_FOUND', 'async /srv');
        },
        ok: async (x: number) => x + 1,
      };
      const wrapped = withInfrastructureErrors(raw);
      expect(wrapped.name).toBe('d');
      expect(await wrapped.ok(1)).toBe(2);
      for (const run of [() => wrapped.sync(), () => wrapped.async()]) {
        let caught: unknown;
        try {
          await run();
        } catch (error) {
          caught = error;
        }
        expect(publicError(caught, 'customer').message).toBe('Not found');
      }
    });
  });
});
