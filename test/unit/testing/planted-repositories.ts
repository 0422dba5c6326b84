/**
 * Broken repository adapters planted to prove that the conformance suite catches them. Each one
 * is our SQLite adapter with one method rewritten the way a host might get it wrong.
 * - `sync-cap`: the capped insert reads the count and then inserts, synchronously, without a
 *   transaction. Inside one process nothing can run in between; another process can.
 * - `deferred`: the capped insert and the image transition read and then write inside
 *   better-sqlite3's default (deferred) transaction: across processes the write meets
 *   `SQLITE_BUSY_SNAPSHOT` (another process wrote since the read), which no busy timeout waits out.
 *
 * Both hold the gap between their read and their write open for {@link READ_WRITE_GAP_MS} (a
 * synchronous sleep: still nothing else of the process runs in it). Without it the gap lasts a few
 * microseconds, and a loaded machine that runs the children one after the other may let a whole
 * run pass without another process landing in it: the proof that the case catches them would
 * then fail by chance.
 */
import type Database from 'better-sqlite3';
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { InstanceImagesError, type Image, type ImageRepository, type Repositories } from '../../../src';

/** The planted variants. */
export type PlantedVariant = 'sync-cap' | 'deferred';

/** How long the plants sleep between their read and their write. */
const READ_WRITE_GAP_MS = 5;

/** Blocks this thread for `ms` without running anything else of the process (no event loop turn). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const COUNT = `SELECT count(*) AS n FROM ii_images WHERE kind = 'custom' AND account_id = ? AND status <> 'deleted'`;

/** `repository` (a class instance) with some methods replaced. */
function override(repository: ImageRepository, methods: Partial<ImageRepository>): ImageRepository {
  return Object.assign(Object.create(repository) as ImageRepository, methods);
}

/** Our SQLite repositories on `filename` with the variant's broken methods. */
export function openPlantedRepositories(filename: string, variant: PlantedVariant): Repositories {
  const base = createSqliteRepositories({ filename });
  const db: Database.Database = base.database;
  const count = (accountId: string) => (db.prepare(COUNT).get(accountId) as { n: number }).n;
  // `base.images.insert` runs its INSERT synchronously when called (better-sqlite3 is synchronous):
  // nothing else in this process runs between the count and the insert.
  const insertNow = (image: Image) => base.images.insert(image);
  const refuseDuplicate = async (image: Image) => {
    if (await base.images.get(image.id)) throw new InstanceImagesError('CONFLICT', `Image ${image.id} already exists`);
  };
  if (variant === 'sync-cap') {
    return {
      ...base,
      images: override(base.images, {
        insertIfUnderLimit: async (image, limit) => {
          // The byte cap is not what this plant breaks: the real one holds it.
          if (limit.maxBytes != null) return base.images.insertIfUnderLimit(image, limit);
          await refuseDuplicate(image);
          if (count(limit.accountId) >= limit.max) return false;
          sleepSync(READ_WRITE_GAP_MS);
          await insertNow(image);
          return true;
        },
      }),
    };
  }
  return {
    ...base,
    images: override(base.images, {
      insertIfUnderLimit: async (image, limit) => {
        if (limit.maxBytes != null) return base.images.insertIfUnderLimit(image, limit);
        await refuseDuplicate(image);
        let inserted: Promise<void> | null = null;
        // db.transaction(fn)() is BEGIN DEFERRED: the read takes a snapshot, the write upgrades it.
        db.transaction(() => {
          if (count(limit.accountId) >= limit.max) return;
          sleepSync(READ_WRITE_GAP_MS);
          inserted = insertNow(image);
        })();
        if (inserted === null) return false;
        await inserted;
        return true;
      },
      transition: async (id, from, to, patch, now, _events, options = {}) => {
        let moved = false;
        db.transaction(() => {
          const row = db.prepare('SELECT status, protected FROM ii_images WHERE id = ?').get(id) as
            { status: Image['status']; protected: number | null } | undefined;
          if (!row || !from.includes(row.status) || (options.unlessProtected === true && row.protected === 1)) return;
          sleepSync(READ_WRITE_GAP_MS);
          db.prepare('UPDATE ii_images SET status = ? WHERE id = ?').run(to, id);
          void base.images.update(id, patch, now);
          moved = true;
        })();
        return moved ? base.images.get(id) : null;
      },
    }),
  };
}
