/**
 * A small host panel embedding instance-images: SQLite repositories, a local image storage, the
 * libvirt driver on this machine (local executor), and the Express router, with a host directory of
 * a few demo instances. With `workers: N` the work runs in N forked worker processes over BullMQ
 * on Redis, and this process only enqueues (`workers.ts`). The "session" is a header: `x-account: <accountId>` for a customer,
 * `x-admin: yes` for an operator (a real panel resolves the actor from its own login session).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express from 'express';
import { createImagesRouter } from '../../adapters/express';
import {
  InstanceImagesError,
  type Actor,
  type HostHypervisor,
  type HostInstance,
  type ImportOptions,
  type InstanceImages,
} from '../../src';
import { bundleUi, panelShell } from './page';
import { createPanelSdk, DEFAULT_REDIS_URL, DEMO_HYPERVISOR, DEMO_LOCATION, panelHypervisors, type PanelImageCopies } from './sdk';
import { startWorkers, type PanelWorkers } from './workers';

export { DEMO_HYPERVISOR, DEMO_LOCATION } from './sdk';

/** The panel's own record of a VM (its "database"). */
export type DemoInstance = HostInstance;

/** Options of {@link startPanel}. */
export interface PanelOptions {
  /** Where the panel keeps its SQLite file, image storage and scratch files. */
  dataDir: string;
  /** The panel's instances (all on this machine's libvirt). */
  instances: DemoInstance[];
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /**
   * Worker processes to fork: with N ≥ 1 this process only enqueues and N workers run the work
   * (BullMQ on `redisUrl`, the SQLite file shared). @default 0 (everything in this process)
   */
  workers?: number;
  /** Redis for `workers`. @default env REDIS_URL, else redis://127.0.0.1:6390 */
  redisUrl?: string;
  /** URL imports' rules (e.g. `allowNetworks` for a test server on loopback). @default the SDK's (no private networks) */
  imports?: ImportOptions;
  /**
   * More hypervisors besides this machine, e.g. one in a second location (the operator then binds
   * a storage to it and enables images there). @default none
   */
  hypervisors?: HostHypervisor[];
  /** Who may copy images to other locations. @default the SDK's (operators only) */
  imageCopies?: PanelImageCopies;
}

/** A running panel. */
export interface Panel {
  url: string;
  sdk: InstanceImages;
  instances: Map<string, DemoInstance>;
  storageId: string;
  /** The worker processes' ids (empty without `workers`). */
  workerPids: number[];
  close(): Promise<void>;
}

/** What an account id of this panel looks like (a real panel checks its own session store). */
const ACCOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * The demo's session: who is calling. Good host code validates what the client sent before it
 * becomes an actor: a malformed account is the caller's error (400 VALIDATION_FAILED naming the
 * header), no session is 401 (`null`); a throw that is not an InstanceImagesError would be a 500.
 */
export function actorOf(req: express.Request): Actor | null {
  if (req.get('x-admin') === 'yes') return { kind: 'admin', userId: 'demo-operator' };
  // EventSource cannot send headers, so the demo page passes its account as ?account= too.
  const [source, account] = req.get('x-account') !== undefined ? ['x-account', req.get('x-account')] : ['account', req.query.account];
  if (account === undefined || account === '') return null;
  if (typeof account !== 'string' || !ACCOUNT_ID.test(account)) {
    const message = 'must be an account id: 1–64 letters, digits, ".", "_" or "-"';
    throw new InstanceImagesError('VALIDATION_FAILED', `The ${source} ${message}`, { fields: [{ path: source, message }] });
  }
  return { kind: 'customer', accountId: account };
}

/** The session of a host route, or `undefined` after answering 400 for a malformed one. */
function sessionOf(req: express.Request, res: express.Response): Actor | null | undefined {
  try {
    return actorOf(req);
  } catch (error) {
    res.status(400).json({ code: 'VALIDATION_FAILED', detail: error instanceof Error ? error.message : 'Bad request' });
    return undefined;
  }
}

/** Starts the example panel on 127.0.0.1. */
export async function startPanel(options: PanelOptions): Promise<Panel> {
  const imagesDir = join(options.dataDir, 'images');
  const disksDir = join(options.dataDir, 'disks');
  mkdirSync(imagesDir, { recursive: true });
  mkdirSync(disksDir, { recursive: true });
  const instances = new Map(options.instances.map((i) => [i.id, i]));
  const hypervisors = panelHypervisors(options.dataDir, options.hypervisors);
  const extra = {
    ...(options.hypervisors ? { hypervisors: options.hypervisors } : {}),
    ...(options.imageCopies ? { imageCopies: options.imageCopies } : {}),
  };
  const workerCount = options.workers ?? 0;
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
  const { sdk, pool } = createPanelSdk({
    dataDir: options.dataDir,
    getInstance: async (id) => instances.get(id) ?? null,
    role: workerCount > 0 ? { kind: 'web', redisUrl, workerId: 'panel-web' } : { kind: 'single' },
    label: 'panel',
    ...(options.imports ? { imports: options.imports } : {}),
    ...extra,
  });
  // Started after this process opened (and migrated) the SQLite file.
  const workers: PanelWorkers | null =
    workerCount > 0
      ? await startWorkers(workerCount, { dataDir: options.dataDir, redisUrl, ...extra }, (id) => instances.get(id) ?? null).catch(
          async (error: unknown) => {
            await sdk.close();
            await pool.close();
            throw error;
          },
        )
      : null;
  // Tasks a crash interrupted are recovered by the SDK's reaper, at start and while it runs.

  // Operator setup, idempotent across restarts: one local storage bound to this machine, the feature on.
  const admin: Actor = { kind: 'admin', userId: 'demo-operator' };
  const existing = (await sdk.storages.listStorages(admin)).find((s) => s.name === 'Local images');
  const storage =
    existing ?? (await sdk.storages.createStorage(admin, { name: 'Local images', driver: 'local', config: { path: imagesDir } }));
  await sdk.storages.bindHypervisor(admin, storage.id, DEMO_HYPERVISOR);
  await sdk.settings.setLocationSettings(admin, DEMO_LOCATION, { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 5 });

  const ui = await bundleUi();
  const app = express();
  app.get('/', (_req, res) => {
    res.type('html').send(panelShell());
  });
  app.get('/ui/app.js', (_req, res) => {
    res.type('text/javascript').send(ui);
  });
  app.get('/demo/instances', (req, res) => {
    const actor = sessionOf(req, res);
    if (actor === undefined) return;
    res.json(
      [...instances.values()].filter((i) => actor?.kind === 'admin' || (actor?.kind === 'customer' && i.accountId === actor.accountId)),
    );
  });
  // What the customer pages offer in the demo's location: importing and uploading images only where
  // the operator allows it (Locations and caps, "URL imports"); copying images to the panel's
  // locations where images are enabled, when the operator lets customers copy.
  app.get('/demo/features', async (req, res) => {
    const actor = sessionOf(req, res);
    if (actor === undefined) return;
    const settings = await sdk.settings.getLocationSettings(admin, DEMO_LOCATION);
    const copyLocations: string[] = [];
    if (options.imageCopies?.allowCustomers)
      for (const locationId of new Set(hypervisors.map((h) => h.locationId)))
        if ((await sdk.settings.getLocationSettings(admin, locationId)).imagesEnabled) copyLocations.push(locationId);
    res.json({ locationId: DEMO_LOCATION, urlImportEnabled: settings.imagesEnabled && settings.urlImportEnabled, copyLocations });
  });
  app.get('/demo/hypervisors', (req, res) => {
    const actor = sessionOf(req, res);
    if (actor === undefined) return;
    if (actor?.kind !== 'admin') {
      res.status(401).json({ code: 'UNAUTHENTICATED', detail: 'Operators only' });
      return;
    }
    res.json(hypervisors.map((h) => ({ id: h.id, name: h.name, locationId: h.locationId })));
  });
  // The host's create-instance flow: a new instance of the customer, its disk deployed from the
  // image picked on the OS picker (the SDK checks the image is the customer's to deploy). The demo
  // records the instance and its disk; a real panel would define and boot the VM afterwards.
  app.post('/demo/instances', express.json(), async (req, res) => {
    const actor = sessionOf(req, res);
    if (actor === undefined) return;
    if (actor?.kind !== 'customer') {
      res.status(401).json({ code: 'UNAUTHENTICATED', detail: 'Sign in as a customer to create an instance' });
      return;
    }
    const body = (req.body ?? {}) as { name?: unknown; imageId?: unknown };
    if (typeof body.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/.test(body.name) || typeof body.imageId !== 'string') {
      res.status(400).json({ code: 'VALIDATION_FAILED', detail: 'Give a hostname (letters, digits and dashes) and an image' });
      return;
    }
    const instance: DemoInstance = {
      id: `vm-${randomUUID().slice(0, 8)}`,
      name: body.name,
      accountId: actor.accountId,
      locationId: DEMO_LOCATION,
      hypervisorId: DEMO_HYPERVISOR,
      domainName: `ii-panel-${body.name}`,
    };
    instances.set(instance.id, instance);
    try {
      const { task } = await sdk.catalog.deployImage(actor, {
        imageId: body.imageId,
        instanceId: instance.id,
        targetPath: join(disksDir, `${instance.id}.qcow2`),
      });
      res.status(202).json({ instance, task });
    } catch (error) {
      instances.delete(instance.id);
      const coded = error instanceof InstanceImagesError ? error : null;
      res
        .status(coded?.code === 'NOT_FOUND' ? 404 : 400)
        .json({ code: coded?.code ?? 'DEPLOY_FAILED', detail: coded?.message ?? 'The deploy could not start' });
    }
  });
  // `account` is the demo session's own query parameter (EventSource cannot send headers).
  app.use('/api', createImagesRouter({ service: sdk, resolveActor: actorOf, hostQueryParameters: ['account'] }));
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(options.port ?? 0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sdk,
    instances,
    storageId: storage.id,
    workerPids: workers?.pids ?? [],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await workers?.close();
      await sdk.close();
      await pool.close();
    },
  };
}
