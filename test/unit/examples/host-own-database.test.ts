import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createInstanceImages, type Actor, type Repositories } from '../../../src';
import { testRepositories } from '../../../src/testing';
import { forwardNotifications } from '../../../examples/host-own-database/notifications';
import { createHostRepositories } from '../../../examples/host-own-database/repositories';
import { openPanelDatabase } from '../../../examples/host-own-database/schema';
import { FakeWorld } from '../../support/fakes';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const databases = new WeakMap<Repositories, Database.Database>();

testRepositories(
  { describe, it },
  {
    name: 'host own database',
    create: () => {
      const db = openPanelDatabase(':memory:');
      const repos = createHostRepositories(db);
      databases.set(repos, db);
      return repos;
    },
    destroy: async (repos) => {
      databases.get(repos)?.close();
    },
  },
);

/** Runs `node --import tsx <args>` from the repository root; resolves with its exit code and output. */
function runTsx(
  args: string[],
  onStdout?: (line: string, stdin: NodeJS.WritableStream) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (onStdout) for (const line of chunk.split('\n').filter(Boolean)) onStdout(line, child.stdin);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('host own database: atomicity across processes', () => {
  it('processes racing capped inserts on one database file leave exactly the cap, without errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'host-own-db-race-'));
    try {
      const file = join(dir, 'panel.sqlite');
      openPanelDatabase(file).close();
      const children = 3;
      let ready = 0;
      const stdins: NodeJS.WritableStream[] = [];
      // Every child opens the database first; all start racing at the same moment.
      const onLine = (line: string, stdin: NodeJS.WritableStream) => {
        if (line !== 'ready') return;
        stdins.push(stdin);
        if (++ready === children) for (const s of stdins) s.end('go\n');
      };
      const results = await Promise.all(
        Array.from({ length: children }, () => runTsx(['test/unit/examples/host-own-database.race-child.ts', file, '300', '500'], onLine)),
      );
      for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
      const inserted = results.map((r) => (JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { inserted: number }).inserted);
      expect(inserted.reduce((a, b) => a + b, 0)).toBe(500);
      const db = openPanelDatabase(file);
      expect(await createHostRepositories(db).images.countActive('race')).toBe(500);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('host own database: notifications from the typed events', () => {
  const admin: Actor = { kind: 'admin', userId: 'op' };
  const alice: Actor = { kind: 'customer', accountId: 'acct-alice' };

  async function panel() {
    const db = openPanelDatabase(':memory:');
    const world = new FakeWorld();
    world.addHypervisor('hv-1');
    world.addInstance('web-1', 'acct-alice');
    const clock = { now: new Date('2026-11-03T10:15:00.000Z') };
    const ii = createInstanceImages({
      repositories: createHostRepositories(db),
      hostDirectory: world.hostDirectory(),
      executors: world.executors(),
      hypervisorDriver: world.hypervisorFactory(),
      storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
      tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
      clock: () => new Date(clock.now.getTime()),
    });
    const errors: unknown[] = [];
    const stop = forwardNotifications(ii.events, db, { clock: () => clock.now, onError: (error) => errors.push(error) });
    await ii.settings.setLocationSettings(admin, 'loc-1', {
      imagesEnabled: true,
      pricePerGbMonth: '0.05',
      currency: 'EUR',
      defaultImageLimit: 5,
    });
    const storage = await ii.storages.createStorage(admin, {
      name: 's3',
      driver: 'fake-s3',
      config: { root: 'bucket', secret: 'top-secret-key' },
    });
    await ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
    const notifications = () =>
      db.prepare('SELECT customer_id, topic, message FROM notifications ORDER BY topic, id').all() as {
        customer_id: string | null;
        topic: string;
        message: string;
      }[];
    return { db, world, ii, errors, stop, notifications };
  }

  it("a capture, a failed capture and a delete write the customer's notifications into the panel's table", async () => {
    const { db, world, ii, errors, stop, notifications } = await panel();
    const { image } = await ii.images.createImage(alice, { instanceId: 'web-1', name: 'web-1 golden' });
    await ii.idle();
    const stored = db.prepare('SELECT title, state, customer_id, server_id, file_bytes FROM panel_vm_images WHERE id = ?').get(image.id);
    expect(stored).toEqual({
      title: 'web-1 golden',
      state: 'available',
      customer_id: 'acct-alice',
      server_id: 'web-1',
      file_bytes: world.domains.get('dom-web-1')!.disk.length,
    });
    expect(notifications()).toEqual([
      {
        customer_id: 'acct-alice',
        topic: 'billing.started',
        message: 'Storage for image web-1 golden is now billed: 0.00 GiB at 0.05 EUR per GB-month.',
      },
      {
        customer_id: 'acct-alice',
        topic: 'image.ready',
        message: 'Your image web-1 golden is ready (captured from vm-web-1). You can now create servers from it.',
      },
    ]);

    world.failNextCapture = 'CAPTURE_FAILED';
    const { image: failed } = await ii.images.createImage(alice, { instanceId: 'web-1', name: 'nightly' });
    await ii.idle();
    expect((await ii.images.getImage(alice, failed.id)).status).toBe('error');
    await ii.images.deleteImage(alice, image.id);
    await ii.idle();
    const rows = notifications();
    expect(rows.map((r) => r.topic)).toEqual(['billing.started', 'image.deleted', 'image.failed', 'image.ready']);
    expect(rows.every((r) => r.customer_id === 'acct-alice')).toBe(true);
    expect(rows.find((r) => r.topic === 'image.deleted')?.message).toBe('Your image web-1 golden was deleted; billing for it has stopped.');
    expect(rows.find((r) => r.topic === 'image.failed')?.message).toMatch(/^Your image nightly could not be created: \S/);
    expect(rows.some((r) => r.message.includes('top-secret-key'))).toBe(false);

    // The same event occurrence twice notifies once.
    ii.events.emit('image.available', { image: await ii.images.getImage(alice, failed.id) });
    ii.events.emit('image.available', { image: await ii.images.getImage(alice, failed.id) });
    expect(notifications().filter((r) => r.message.startsWith('Your image nightly is ready'))).toHaveLength(1);
    expect(errors).toEqual([]);

    // After unsubscribing nothing more is written.
    stop();
    ii.events.emit('image.deleted', { image: await ii.images.getImage(alice, failed.id) });
    expect(notifications()).toHaveLength(5);
    await ii.close();
    db.close();
  });

  it('a failing write goes to onError and never throws into the SDK', async () => {
    const { db, ii, errors } = await panel();
    db.exec('DROP TABLE notifications');
    const { image } = await ii.images.createImage(alice, { instanceId: 'web-1', name: 'web-1 golden' });
    await ii.idle();
    expect((await ii.images.getImage(alice, image.id)).status).toBe('available');
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(String(errors[0])).toMatch(/no such table: notifications/);
    await ii.close();
    db.close();
  });
});

describe('host own database: main.ts', () => {
  it("runs to completion and prints the OS picker and the operators' notification", async () => {
    const result = await runTsx(['examples/host-own-database/main.ts']);
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(result.stdout).toContain('Linux: Debian 12');
    expect(result.stdout).toContain('The OS image Debian 12 was removed from the catalog.');
  }, 60_000);
});
