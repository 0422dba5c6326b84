/**
 * A separate process for the cross-process SQLite tests: opens the file (running the migrations,
 * possibly at the same moment as its siblings), prints "ready", waits for "go" on stdin, races,
 * then prints one JSON line with what it won.
 *
 * Usage: node --import tsx race-worker.ts FILE cap|transition WORKER_ID
 */
import { createInterface } from 'node:readline';
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { makeImage } from '../../../src/testing';

const [filename, mode, workerId] = process.argv.slice(2);
if (!filename || !mode || !workerId) throw new Error('usage: race-worker FILE cap|transition WORKER_ID');

const repositories = createSqliteRepositories({ filename, busyTimeoutMs: 60_000 });
const pending =
  mode === 'transition' ? (await repositories.images.list({ statuses: ['creating'] }, { limit: 1000 })).items.map((image) => image.id) : [];

const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const won: string[] = [];
if (mode === 'cap') {
  for (let i = 0; i < 20; i++) {
    const image = makeImage({ accountId: 'race', name: `worker-${workerId}` });
    if (await repositories.images.insertIfUnderLimit(image, { accountId: 'race', max: 10 })) won.push(image.id);
  }
} else {
  for (const id of pending) {
    if (await repositories.images.transition(id, ['creating'], 'available', { description: `worker-${workerId}` }, new Date()))
      won.push(id);
  }
}
await repositories.close();
process.stdout.write(`${JSON.stringify({ won })}\n`);
