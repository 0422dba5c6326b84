/**
 * The child of crash.test.ts, on a shared SQLite file (argv[2]). `transition` (argv[3]): changes an
 * image's status through the one transition function, reports, and waits to be killed before any
 * delivery. `deliver`: delivers the outbox to a handler that reports and never finishes.
 */
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { createEmitter } from '../../../src/events';
import { startOutboxDelivery } from '../../../src/outbox-delivery';
import type { ServiceContext } from '../../../src/services/context';
import { tryTransitionImage } from '../../../src/services/image-state';
import { makeImage } from '../../../src/testing';

const [filename, mode] = process.argv.slice(2) as [string, 'transition' | 'deliver'];
const repos = createSqliteRepositories({ filename });
const send = (message: unknown) => process.send?.(message);

if (mode === 'transition') {
  const image = makeImage({ status: 'creating' });
  await repos.images.insert(image);
  const ctx = { repos, events: createEmitter(), now: () => new Date() } as unknown as ServiceContext;
  const updated = await tryTransitionImage(ctx, image, 'available', { sizeBytes: 1024 }, 'system');
  send({ imageId: image.id, status: updated?.status });
} else {
  startOutboxDelivery(repos.outbox, {
    owner: 'doomed',
    pollIntervalMs: 10,
    leaseMs: 60_000,
    targets: [{ name: 'hangs', deliver: (event) => new Promise(() => send({ delivering: event.id })) }],
  });
}
setInterval(() => undefined, 1_000);
