/**
 * A panel process of the import restart test: opens the panel (configuring it when `--configure`),
 * starts a stock OS image import from URL into the local template storage (fetched on the
 * hypervisor when `--fetch`), prints `started <imageId> <taskId>` and waits to be killed (SIGKILL
 * by the test) while the import downloads.
 * Usage: import-child.ts DATABASE IMAGES SCRATCH WORKER_ID URL [--fetch] [--configure]
 */
import { configureImportPanel, openImportPanel } from './import-panel';

const [database, images, scratch, workerId, url, ...flags] = process.argv.slice(2);
if (!database || !images || !scratch || !workerId || !url)
  throw new Error('usage: import-child.ts DATABASE IMAGES SCRATCH WORKER_ID URL [--fetch] [--configure]');
const paths = { database, images, scratch };
const ii = openImportPanel(paths, { workerId, heartbeatIntervalMs: 200 }, flags.includes('--fetch'));
if (flags.includes('--configure')) await configureImportPanel(ii, paths);
const storage = (await ii.storages.listStorages({ kind: 'admin' }, { purpose: 'templates' }))[0];
if (!storage) throw new Error('no template storage');
const started = await ii.imports.importOsImage(
  { kind: 'admin' },
  { url, name: `stock ${workerId}`, osType: 'linux', storageId: storage.id, hypervisorId: 'hv-local' },
);
process.stdout.write(`started ${started.imageId} ${started.task.id}\n`);
// The import runs until the process is killed (the timer keeps the process alive).
setInterval(() => undefined, 60_000);
