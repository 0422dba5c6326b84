/**
 * A host panel wiring instance-images onto its OWN database:
 *
 *   node --import tsx examples/host-own-database/main.ts [panel.sqlite]
 *
 * It needs no hypervisor: the operator enables a region, creates an OS group, adds a tiny OS image
 * from a template storage (a temporary directory on this machine, reached with the local
 * executor), the customer lists the OS picker, the operator retires the OS image, and the script
 * prints the panel's tables: the SDK's records in the panel's naming, and the panel's own
 * notifications written from the SDK's events. Without an argument the database is in memory.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExecutorPool } from '../../drivers/exec';
import { builtinStorageDrivers } from '../../drivers/storage';
import { createInstanceImages, type Actor, type HostDirectory, type HostHypervisor, type HostInstance } from '../../src';
import { forwardNotifications } from './notifications';
import { createHostRepositories } from './repositories';
import { openPanelDatabase } from './schema';

const operator: Actor = { kind: 'admin', userId: 'op-ann' };
const customer: Actor = { kind: 'customer', accountId: 'cust-42' };

/** The panel's view of its nodes and servers; a real panel reads its own tables here. */
function inMemoryHostDirectory(): HostDirectory {
  const nodes = new Map<string, HostHypervisor>([
    ['node-1', { id: 'node-1', name: 'node-1 (this machine)', locationId: 'fra-1', connection: { type: 'local' } }],
  ]);
  const servers = new Map<string, HostInstance>([
    [
      'srv-101',
      { id: 'srv-101', name: 'web-1', accountId: 'cust-42', locationId: 'fra-1', hypervisorId: 'node-1', domainName: 'panel-srv-101' },
    ],
  ]);
  return {
    getInstance: async (id) => servers.get(id) ?? null,
    getHypervisor: async (id) => nodes.get(id) ?? null,
    listHypervisors: async () => [...nodes.values()],
  };
}

async function main(): Promise<void> {
  const db = openPanelDatabase(process.argv[2] ?? ':memory:');
  const templates = mkdtempSync(join(tmpdir(), 'panel-templates-'));
  const executors = createExecutorPool();
  // The wiring: the SDK's records go to the panel's tables, its events to the panel's notifications.
  const images = createInstanceImages({
    repositories: createHostRepositories(db),
    hostDirectory: inMemoryHostDirectory(),
    executors: executors.executorFor,
    storageDrivers: builtinStorageDrivers,
  });
  const stopNotifications = forwardNotifications(images.events, db);
  try {
    // Operator: enable images in region fra-1 and set the price and default cap.
    await images.settings.setLocationSettings(operator, 'fra-1', {
      imagesEnabled: true,
      pricePerGbMonth: '0.05',
      currency: 'EUR',
      defaultImageLimit: 5,
    });
    const linux = await images.catalog.createMediaGroup(operator, { name: 'Linux', order: 1 });
    await images.catalog.createMediaGroup(operator, { name: 'Windows', order: 2 });

    // Operator: a template storage on node-1 holding one (tiny, pretend) OS image file.
    writeFileSync(join(templates, 'debian-12.qcow2'), 'pretend qcow2 of Debian 12\n'.repeat(64));
    const storage = await images.storages.createStorage(operator, {
      name: 'templates',
      driver: 'local',
      config: { path: templates },
      purpose: 'templates',
    });
    await images.storages.bindHypervisor(operator, storage.id, 'node-1');
    const debian = await images.catalog.createOsImage(operator, {
      name: 'Debian 12',
      osType: 'linux',
      cloudInit: true,
      storageId: storage.id,
      fileKey: 'debian-12.qcow2',
      mediaGroupId: linux.id,
    });

    // Customer: the OS picker of the create-server page.
    const picker = await images.catalog.listDeployableImages(customer);
    console.log('OS picker for cust-42:');
    for (const { group, images: members } of picker.groups)
      console.log(`  ${group.name}: ${members.map((i) => i.name).join(', ') || '(empty)'}`);
    console.log(`  My Images: ${picker.myImages.map((i) => i.name).join(', ') || '(none yet)'}`);

    // Operator: retire the OS image (the panel's operators get a notification).
    await images.catalog.deleteOsImage(operator, debian.id);

    console.log('\npanel_settings:');
    console.table(db.prepare('SELECT name, value FROM panel_settings ORDER BY name').all());
    console.log('panel_os_groups:');
    console.table(db.prepare('SELECT title, is_visible, sort_order FROM panel_os_groups ORDER BY sort_order').all());
    console.log('panel_vm_images:');
    console.table(db.prepare('SELECT title, kind, state, file_bytes, os_group_id IS NOT NULL AS grouped FROM panel_vm_images').all());
    console.log('notifications:');
    console.table(db.prepare("SELECT coalesce(customer_id, '(operators)') AS reader, topic, message FROM notifications ORDER BY id").all());
  } finally {
    stopNotifications();
    await images.close();
    await executors.close();
    db.close();
    rmSync(templates, { recursive: true, force: true });
  }
}

await main();
