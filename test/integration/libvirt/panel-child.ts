/**
 * A panel process of the restart tests: opens the panel (configuring it when `--configure`),
 * starts a capture of the guest and, once the backup job runs on the domain, prints
 * `job-started <imageId>` and waits to be killed (SIGKILL by the test).
 * Usage: panel-child.ts DATABASE IMAGES SCRATCH DOMAIN WORKER_ID [--configure]
 */
import { configurePanel, openPanel, panelCustomer } from './panel-sdk';

const [database, images, scratch, domainName, workerId, configure] = process.argv.slice(2);
if (!database || !images || !scratch || !domainName || !workerId)
  throw new Error('usage: panel-child.ts DATABASE IMAGES SCRATCH DOMAIN WORKER_ID [--configure]');
const paths = { database, images, scratch, domainName };
let imageId = '';
const ii = openPanel(
  paths,
  { workerId, heartbeatIntervalMs: 200 },
  {
    async afterJobStart() {
      process.stdout.write(`job-started ${imageId}\n`);
      // The capture stays mid-way until the process is killed (the timer keeps the process alive).
      await new Promise(() => setInterval(() => undefined, 60_000));
    },
  },
);
if (configure === '--configure') await configurePanel(ii, paths);
const { image } = await ii.images.createImage(panelCustomer, { instanceId: 'vm-1', name: `mid-capture ${workerId}` });
imageId = image.id;
