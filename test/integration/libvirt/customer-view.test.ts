/**
 * On real libvirt, through the Express router and the web-standard handler (on node:http): what a customer sees when infrastructure fails
 * (a domain that is gone, an ISO file that is gone) holds no virsh output, domain names or
 * hypervisor paths; an admin sees the driver's own words. And an admin deploy to a directory that
 * does not exist is the caller's error (400 naming targetPath), not a 502 with `df`'s stderr.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImagesRouter } from '../../../adapters/express';
import { createImagesHandler, toNodeListener } from '../../../adapters/http';
import { createExecutorPool } from '../../../drivers/exec';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type Actor, type HostInstance, type InstanceImages } from '../../../src';
import { createTestGuest, makeIso, sh, uniqueSuffix, type TestGuest } from '../../support/guests';
import { freshScratchDir, libvirtSkipReason, localHypervisor } from './setup';

const skip = libvirtSkipReason();
const ADMIN: Actor = { kind: 'admin', userId: 'op' };

describe.skipIf(skip !== null)(
  `libvirt + router: what customers see of infrastructure failures${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let guest: TestGuest;
    let dir: string;
    let ii: InstanceImages;
    const servers: { kind: 'express' | 'handler'; http: Server; base: string }[] = [];
    const pool = createExecutorPool();
    const missingDomain = `ii-missing-${uniqueSuffix()}`;
    const instances = new Map<string, HostInstance>();

    const call = async (base: string, method: string, path: string, account: string | null, json?: unknown) => {
      const headers: Record<string, string> = account === null ? { 'x-admin': 'yes' } : { 'x-account': account };
      if (json !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${base}${path}`, { method, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) });
      const text = await res.text();
      return { status: res.status, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
    };

    beforeAll(async () => {
      guest = createTestGuest({ cdrom: true });
      dir = freshScratchDir('customer-view');
      const hypervisor = localHypervisor(`${dir}/scratch`);
      instances.set('gone-1', {
        id: 'gone-1',
        name: 'gone',
        accountId: 'acct-a',
        locationId: 'loc',
        hypervisorId: hypervisor.id,
        domainName: missingDomain,
      });
      instances.set('live-1', {
        id: 'live-1',
        name: 'live',
        accountId: 'acct-a',
        locationId: 'loc',
        hypervisorId: hypervisor.id,
        domainName: guest.name,
      });
      ii = createInstanceImages({
        hostDirectory: {
          getInstance: async (id) => instances.get(id) ?? null,
          getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null),
        },
        storageDrivers: builtinStorageDrivers,
        executors: pool.executorFor,
        hypervisorDriver: createLibvirtDriver,
      });
      await ii.settings.setLocationSettings(ADMIN, 'loc', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 5 });
      mkdirSync(`${dir}/images`, { recursive: true });
      mkdirSync(`${dir}/templates`, { recursive: true });
      const images = await ii.storages.createStorage(ADMIN, { name: 'images', driver: 'local', config: { path: `${dir}/images` } });
      await ii.storages.bindHypervisor(ADMIN, images.id, hypervisor.id);
      const templates = await ii.storages.createStorage(ADMIN, {
        name: 'templates',
        driver: 'local',
        purpose: 'templates',
        config: { path: `${dir}/templates` },
      });
      await ii.storages.bindHypervisor(ADMIN, templates.id, hypervisor.id);
      const actorOf = (header: (name: string) => string | null | undefined): Actor | null => {
        const account = header('x-account');
        return header('x-admin') === 'yes' ? ADMIN : account ? { kind: 'customer', accountId: account } : null;
      };
      const app = express();
      app.use('/api', createImagesRouter({ service: ii, resolveActor: (req) => actorOf((name) => req.get(name)) }));
      const handler = createImagesHandler({
        service: ii,
        basePath: '/api',
        resolveActor: (request) => actorOf((name) => request.headers.get(name)),
      });
      for (const [kind, listener] of [
        ['express', app],
        ['handler', toNodeListener(handler)],
      ] as const) {
        const http = createServer(listener);
        await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
        servers.push({ kind, http, base: `http://127.0.0.1:${(http.address() as AddressInfo).port}/api` });
      }
      makeIso(`${dir}/templates/installer.iso`);
      writeFileSync(`${dir}/templates/kept.iso`, 'not really an iso');
      expect(sh('qemu-img', 'create', '-q', '-f', 'qcow2', `${dir}/templates/os.qcow2`, '16M').code).toBe(0);
    }, 120_000);

    afterAll(async () => {
      for (const { http } of servers) {
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
      await ii?.idle();
      await ii?.close();
      await pool.close();
      guest?.remove();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const templatesId = async () => (await ii.storages.listStorages(ADMIN, { purpose: 'templates' }))[0]!.id;

    it('a missing domain: POST /images and both ISO routes answer 404 "Not found" to the customer, the virsh words to an admin', async () => {
      const iso = await ii.catalog.registerIso(ADMIN, {
        name: 'Installer',
        storageId: await templatesId(),
        hypervisorId: 'hv-local',
        fileKey: 'installer.iso',
      });
      for (const { kind, base } of servers)
        for (const [method, path, json] of [
          ['POST', '/images', { instanceId: 'gone-1', name: 'x' }],
          ['POST', '/instances/gone-1/iso', { isoId: iso.id }],
          ['DELETE', '/instances/gone-1/iso', undefined],
        ] as const) {
          const customer = await call(base, method, path, 'acct-a', json);
          expect({
            kind,
            path,
            status: customer.status,
            code: customer.json?.code,
            detail: customer.json?.detail,
            details: customer.json?.details,
          }).toEqual({ kind, path, status: 404, code: 'NOT_FOUND', detail: 'Not found', details: undefined });
          for (const needle of ['virsh', missingDomain, dir, 'exit']) expect(customer.text).not.toContain(needle);
        }
      for (const { base } of servers) {
        const admin = await call(base, 'POST', '/instances/gone-1/iso', null, { isoId: iso.id });
        expect([admin.status, admin.json?.code]).toEqual([404, 'NOT_FOUND']);
        expect(String(admin.json?.detail)).toMatch(/virsh .*failed \(exit 1\)/);
      }
    });

    it('an ISO whose file is gone: the customer gets no hypervisor path', async () => {
      const iso = await ii.catalog.registerIso(ADMIN, {
        name: 'Kept',
        storageId: await templatesId(),
        hypervisorId: 'hv-local',
        fileKey: 'kept.iso',
      });
      rmSync(`${dir}/templates/kept.iso`);
      for (const { base } of servers) {
        const customer = await call(base, 'POST', '/instances/live-1/iso', 'acct-a', { isoId: iso.id });
        expect([customer.status, customer.json?.code, customer.json?.details]).toEqual([404, 'NOT_FOUND', undefined]);
        expect(customer.text).not.toContain(dir);
        const admin = await call(base, 'POST', '/instances/live-1/iso', null, { isoId: iso.id });
        expect(admin.json?.details).toEqual({ isoPath: `${dir}/templates/kept.iso` });
      }
    });

    it('an admin deploy into a directory that does not exist is 400 naming targetPath, and nothing is created', async () => {
      const os = await ii.catalog.createOsImage(ADMIN, {
        name: 'Base',
        osType: 'linux',
        storageId: await templatesId(),
        hypervisorId: 'hv-local',
        fileKey: 'os.qcow2',
      });
      for (const { kind, base } of servers) {
        const target = `${dir}/no-such-dir-${uniqueSuffix()}/disk.qcow2`;
        const res = await call(base, 'POST', '/admin/deployments', null, { imageId: os.id, instanceId: 'live-1', targetPath: target });
        expect([res.status, res.json?.code, (res.json?.fields as { path: string }[] | undefined)?.map((f) => f.path)]).toEqual([
          400,
          'VALIDATION_FAILED',
          ['targetPath'],
        ]);
        expect(res.text).not.toContain('df');
        expect(sh('test', '-e', target).code).not.toBe(0);
        // The same request into a directory that exists works.
        const disk = `${dir}/disk-${kind}.qcow2`;
        const ok = await call(base, 'POST', '/admin/deployments', null, { imageId: os.id, instanceId: 'live-1', targetPath: disk });
        expect(ok.status).toBe(202);
        const taskId = (ok.json?.task as { id: string }).id;
        expect((await ii.images.waitForTask(ADMIN, taskId)).status).toBe('completed');
        expect(sh('test', '-f', disk).code).toBe(0);
      }
    });
  },
);
