/**
 * A real HTTP server (127.0.0.1, ephemeral port) running the images API on an SDK wired on
 * in-memory repositories and the in-process fakes of our ports, mounted at `/api` by one of
 * {@link SERVERS}: the Express router, the web-standard handler on `node:http`, or the handler in
 * Hono (on @hono/node-server). The actor comes from a test header: `x-test-actor: admin` or
 * `x-test-actor: customer:<accountId>`; no header means unauthenticated.
 */
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import express, { type Request } from 'express';
import { Hono } from 'hono';
import { z } from 'zod';
import { createImagesRouter, type ImagesRouterOptions, type ResolveActor } from '../../adapters/express';
import { createImagesDispatcher, createImagesHandler, HTTP_OPTIONS_SHAPE } from '../../adapters/http/handler';
import { toNodeListener } from '../../adapters/http/node';
import { matchable, matchRoute } from '../../adapters/http/routing';
import { createInstanceImages, type Actor, type InstanceImages, type StorageDriverFactory } from '../../src';
import { afterEach, describe } from 'vitest';
import { FakeWorld } from './fakes';

/** How the API is served: `express` (the router), `node` (the handler on node:http), `hono` (the handler mounted in Hono). */
export type ServerKind = 'express' | 'node' | 'hono';

/** Every way the suites serve the API. */
export const SERVERS: readonly ServerKind[] = ['express', 'node', 'hono'];

/** Runs `suite` once per server kind, in a describe block named after it. */
export function describeEachServer(suite: (server: ServerKind) => void): void {
  for (const server of SERVERS) describe(`over ${server}`, () => suite(server));
}

/** What a test's actor resolver sees of a request, whatever serves it. */
export interface ActorInput {
  header(name: string): string | null;
  query(name: string): string | null;
}

export const ADMIN: Actor = { kind: 'admin', userId: 'op' };
export const ALICE: Actor = { kind: 'customer', accountId: 'acct-alice' };
export const BOB: Actor = { kind: 'customer', accountId: 'acct-bob' };

/** The header value that makes the harness resolve `actor`. */
export function actorHeader(actor: Actor): string {
  return actor.kind === 'admin' ? 'admin' : `customer:${actor.accountId}`;
}

/** A storage driver that records when bytes of a put arrive (to prove uploads are streamed). */
export interface StreamProbe {
  /** Bytes received by puts so far. */
  received: number;
  /** Resolves when the first bytes of a put arrived at the driver. */
  firstBytes: Promise<void>;
}

export interface ExpressHarness {
  world: FakeWorld;
  ii: InstanceImages;
  baseUrl: string;
  /** The SDK's default stream storage (custom images), bound to hv-1. */
  storageId: string;
  /** A template storage (stream) bound to hv-1 holding `os/debian-12.qcow2`. */
  templatesId: string;
  /** A template storage (path) bound to hv-1 for ISOs. */
  isoStoreId: string;
  /** A template storage on the probe driver, bound to hv-1. */
  probeStoreId: string;
  probe: StreamProbe;
  /** How the API is served. */
  server: ServerKind;
  /** `METHOD /route/path` of every request the API answered, with its status. */
  hits: { route: string; status: number }[];
  /** Errors the router logged. */
  logged: { message: string; context?: Record<string, unknown> }[];
  call(method: string, path: string, options?: CallOptions): Promise<CallResult>;
  close(): Promise<void>;
}

export interface CallOptions {
  actor?: Actor | null;
  /** A JSON body (sent as application/json). */
  json?: unknown;
  /** A raw body with explicit headers. */
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
  json: any;
}

function probeFactory(world: FakeWorld, probe: StreamProbe, markFirst: () => void): StorageDriverFactory<{ root: string }> {
  const base = world.storageFactory('stream-probe', { shared: true, pathAccess: false });
  return {
    ...base,
    create(options, context) {
      const driver = base.create(options, context);
      return {
        ...driver,
        async put(key, body) {
          const chunks: Buffer[] = [];
          for await (const chunk of body) {
            chunks.push(Buffer.from(chunk as Buffer));
            probe.received += (chunk as Buffer).length;
            markFirst();
          }
          const bytes = Buffer.concat(chunks);
          world.files.set(`${options.root}:${key}`, { bytes, modifiedAt: new Date() });
          return { size: bytes.length };
        },
      };
    },
  };
}

/** Options of {@link startExpressHarness}. */
export type HarnessOptions = Partial<
  Pick<ImagesRouterOptions, 'maxIsoUploadBytes' | 'maxJsonBytes' | 'sseHeartbeatMs' | 'hostQueryParameters'>
> & {
  /** How the API is served. @default 'express' */
  server?: ServerKind;
  /** Who the caller is, from its headers and query (any server). @default the x-test-actor header */
  actorFrom?: (input: ActorInput) => Actor | null | Promise<Actor | null>;
  /** An Express resolver (the example panel's): only with `server: 'express'`. */
  resolveActor?: ResolveActor;
};

/** The default test resolver: the x-test-actor header. */
function testActor(input: ActorInput): Actor | null {
  const header = input.header('x-test-actor');
  if (!header) return null;
  if (header === 'admin') return ADMIN;
  const [kind, accountId] = header.split(':');
  return kind === 'customer' && accountId ? { kind: 'customer', accountId } : null;
}

const fromExpress = (req: Request): ActorInput => ({
  header: (name) => req.header(name) ?? null,
  query: (name) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : null),
});
const fromRequest = (request: globalThis.Request): ActorInput => ({
  header: (name) => request.headers.get(name),
  query: (name) => new URL(request.url).searchParams.get(name),
});

/** Every route the API serves (the route table and the handler's own routes), as `METHOD /path`. */
export function liveRoutes(ii: InstanceImages): string[] {
  const options = { service: ii, resolveActor: () => null };
  return [...createImagesDispatcher(options, z.strictObject(HTTP_OPTIONS_SHAPE).parse(options)).routes];
}

/** A Node request listener serving the API at /api the way `server` does. */
function apiListener(server: ServerKind, options: Omit<ImagesRouterOptions, 'resolveActor'>, harness: HarnessOptions): RequestListener {
  const actorFrom = harness.actorFrom ?? testActor;
  if (server === 'express') {
    const app = express();
    const resolveActor: ResolveActor = harness.resolveActor ?? ((req) => actorFrom(fromExpress(req)));
    app.use('/api', createImagesRouter({ ...options, resolveActor }));
    return app;
  }
  if (harness.resolveActor) throw new Error('an Express resolveActor needs server: express');
  const handler = createImagesHandler({ ...options, basePath: '/api', resolveActor: (request) => actorFrom(fromRequest(request)) });
  if (server === 'node') return toNodeListener(handler);
  const app = new Hono();
  app.get('/', (c) => c.text('the host'));
  app.all('/api/*', (c) => handler(c.req.raw));
  return getRequestListener(app.fetch, { overrideGlobalObjects: false }) as RequestListener;
}

export async function startExpressHarness(options: HarnessOptions = {}): Promise<ExpressHarness> {
  const serverKind = options.server ?? 'express';
  const world = new FakeWorld();
  world.addHypervisor('hv-1');
  world.addHypervisor('hv-2');
  let markFirst: () => void = () => undefined;
  const uploadDirectory = mkdtempSync(join(tmpdir(), 'ii-harness-uploads-'));
  const probe: StreamProbe = { received: 0, firstBytes: new Promise<void>((resolve) => (markFirst = resolve)) };
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [
      world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
      world.storageFactory('fake-local', { shared: false, pathAccess: true }),
      probeFactory(world, probe, () => markFirst()),
    ],
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    // URL imports from test servers on this machine; signed export links.
    imports: { allowNetworks: ['127.0.0.1/32'] },
    exports: { secret: 'express-harness-export-secret-0123456789' },
    // Resumable uploads, staged in a fresh directory (removed by close()).
    uploads: { directory: uploadDirectory, sweepIntervalMs: 0 },
  });
  await ii.settings.setLocationSettings(ADMIN, 'loc-1', {
    imagesEnabled: true,
    urlImportEnabled: true,
    pricePerGbMonth: '0.05',
    defaultImageLimit: 5,
  });
  const storage = await ii.storages.createStorage(ADMIN, {
    name: 's3',
    driver: 'fake-s3',
    config: { root: 'bucket', secret: 'top-secret-key' },
  });
  await ii.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
  const templates = await ii.storages.createStorage(ADMIN, {
    name: 'templates',
    driver: 'fake-s3',
    purpose: 'templates',
    config: { root: 'tpl' },
  });
  await ii.storages.bindHypervisor(ADMIN, templates.id, 'hv-1');
  world.files.set('tpl:os/debian-12.qcow2', { bytes: Buffer.from('debian 12 qcow2 bytes'), modifiedAt: new Date() });
  const isoStore = await ii.storages.createStorage(ADMIN, {
    name: 'iso-store',
    driver: 'fake-local',
    purpose: 'templates',
    config: { root: '/isos' },
  });
  await ii.storages.bindHypervisor(ADMIN, isoStore.id, 'hv-1');
  const probeStore = await ii.storages.createStorage(ADMIN, {
    name: 'probe',
    driver: 'stream-probe',
    purpose: 'templates',
    config: { root: 'probe' },
  });
  await ii.storages.bindHypervisor(ADMIN, probeStore.id, 'hv-1');
  world.addInstance('web-1', 'acct-alice');
  world.addInstance('db-1', 'acct-alice', { state: 'shutoff' });
  world.addInstance('bob-1', 'acct-bob');

  const hits: ExpressHarness['hits'] = [];
  const logged: ExpressHarness['logged'] = [];
  const listener = apiListener(
    serverKind,
    {
      service: ii,
      maxIsoUploadBytes: options.maxIsoUploadBytes ?? 64 * 1024,
      ...(options.maxJsonBytes ? { maxJsonBytes: options.maxJsonBytes } : {}),
      ...(options.hostQueryParameters ? { hostQueryParameters: options.hostQueryParameters } : {}),
      sseHeartbeatMs: options.sseHeartbeatMs ?? 60_000,
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: (message, context) => logged.push({ message, ...(context ? { context } : {}) }),
      },
    },
    options,
  );
  const served = liveRoutes(ii).map((route) => {
    const [method, path] = route.split(' ') as [string, string];
    return matchable(method, path);
  });
  const server: Server = createServer((req, res) => {
    res.on('finish', () => {
      // Express rewrites req.url below its mount point; originalUrl keeps what the client asked.
      const path = new URL((req as { originalUrl?: string }).originalUrl ?? req.url ?? '/', 'http://x').pathname;
      if (!path.startsWith('/api/')) return;
      let found: ReturnType<typeof matchRoute>;
      try {
        found = matchRoute(served, req.method ?? 'GET', path.slice('/api'.length));
      } catch {
        return;
      }
      if ('route' in found) hits.push({ route: `${found.route.method} ${found.route.path}`, status: res.statusCode });
    });
    listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}/api`;

  return {
    world,
    ii,
    server: serverKind,
    baseUrl,
    storageId: storage.id,
    templatesId: templates.id,
    isoStoreId: isoStore.id,
    probeStoreId: probeStore.id,
    probe,
    hits,
    logged,
    async call(method, path, callOptions = {}) {
      const headers: Record<string, string> = { ...(callOptions.headers ?? {}) };
      const actor = callOptions.actor === undefined ? ALICE : callOptions.actor;
      if (actor) headers['x-test-actor'] = actorHeader(actor);
      let body: string | Buffer | undefined = callOptions.body;
      if (callOptions.json !== undefined) {
        body = JSON.stringify(callOptions.json);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await response.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      return { status: response.status, headers: response.headers, text, json };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ii.idle();
      rmSync(uploadDirectory, { recursive: true, force: true });
      await ii.close();
    },
  };
}

/** Reads a Server-Sent Events response to its end (or until `until` says stop). */
export async function readSse(response: globalThis.Response, until?: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = { event: 'message', data: '', id: null };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'event') event.event = value;
        else if (field === 'data') event.data += value;
        else if (field === 'id') event.id = value;
      }
      if (event.data || event.event !== 'message') events.push(event);
    }
    if (until?.(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

/** One received Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/**
 * For a test file: returns a function that starts a harness; the one started last is closed after
 * each test.
 */
export function useExpressHarness(server: ServerKind = 'express'): (options?: HarnessOptions) => Promise<ExpressHarness> {
  let current: ExpressHarness | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
  });
  return async (options = {}) => (current = await startExpressHarness({ server, ...options }));
}
