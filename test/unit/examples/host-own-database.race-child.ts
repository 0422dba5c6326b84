/**
 * One of several processes racing capped inserts on the same panel database file (spawned by
 * host-own-database.test.ts). Usage: race-child.ts <file> <attempts> <max>. Prints `ready`, waits
 * for a line on stdin, races, then prints `{"inserted":n}`.
 */
import { createInterface } from 'node:readline';
import { makeImage } from '../../../src/testing';
import { createHostRepositories } from '../../../examples/host-own-database/repositories';
import { openPanelDatabase } from '../../../examples/host-own-database/schema';

const [file, attempts, max] = process.argv.slice(2);
const db = openPanelDatabase(file);
const repos = createHostRepositories(db);
const lines = createInterface({ input: process.stdin });
console.log('ready');
await new Promise((resolve) => lines.once('line', resolve));
lines.close();
let inserted = 0;
for (let i = 0; i < Number(attempts); i++) {
  if (await repos.images.insertIfUnderLimit(makeImage({ accountId: 'race' }), { accountId: 'race', max: Number(max) })) inserted++;
}
db.close();
console.log(JSON.stringify({ inserted }));
