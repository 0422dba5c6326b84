/**
 * The repository ports implemented once over SQL, for any {@link SqlDialect} and
 * {@link SqlExecutor}. Semantics follow the memory repositories (the reference): copies,
 * `null` for missing records, CONFLICT on duplicate ids, keyset pages, the same orderings.
 * Each method is a single statement or a single transaction, so the atomic operations hold
 * across connections and processes.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';
import type { Page } from '../../src/model/common';
import { imageCapBytes, type Image, type ImagePatch, type ImageStatus } from '../../src/model/image';
import type { ImageStorage, StorageBinding } from '../../src/model/image-storage';
import type { AccountLimit, AccountState, LocationSettings } from '../../src/model/settings';
import type { Task, TaskPatch, TaskStatus } from '../../src/model/task';
import type { UsageInterval } from '../../src/model/usage-interval';
import type {
  ImageFilter,
  ImageLimit,
  ImageRepository,
  ImageSort,
  ImageTransitionStep,
  ImageTransitionOptions,
  ListPage,
  Repositories,
  SettingsRepository,
  StorageRepository,
  TaskFilter,
  TaskRepository,
  TaskTransitionStep,
  UsageFilter,
  UsageRepository,
} from '../../src/ports/repositories';
import type { SqlDialect, SqlExecutor, SqlRow, SqlStatement, SqlStep } from './dialect';
import { SqlTable } from './sql-table';
import {
  accountLimitsTable,
  accountStatesTable,
  bindingsTable,
  imagesTable,
  isosTable,
  locationSettingsTable,
  mediaGroupsTable,
  storagesTable,
  tasksTable,
  usageTable,
  imageSharesTable,
  imageTransfersTable,
  outboxTable,
} from './tables';
import { SqlImageShareRepository, SqlImageTransferRepository } from './image-moves';
import { outboxInsert, SqlOutboxRepository, writeWithEvents } from './outbox';
import { activeCustomImages, capBytesSql, usedBytesSql } from './image-caps';
import { equals, RECORD_IMMUTABLE, SqlIsoRepository, SqlMediaGroupRepository } from './catalog-repositories';
import type { OutboxEvent, OutboxEvents } from '../../src/ports/repositories-outbox';

// `status` of images and tasks changes only through `transition` (their `update` keeps it).
const IMAGE_IMMUTABLE = new Set(['id', 'kind', 'accountId', 'createdAt', 'status']);
const TASK_IMMUTABLE = new Set(['id', 'type', 'subjectKind', 'subjectId', 'accountId', 'createdAt', 'status']);

/** {@link ImageRepository} over SQL. */
export class SqlImageRepository implements ImageRepository {
  constructor(
    private readonly table: SqlTable<Image>,
    private readonly outbox: SqlTable<OutboxEvent>,
  ) {}

  async get(id: string): Promise<Image | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: ImageFilter = {}, page: ListPage = {}, sort: ImageSort = {}): Promise<Page<Image>> {
    const { table } = this;
    const params = table.params();
    const where: string[] = [];
    equals(where, params, 'kind', filter.kind);
    equals(where, params, table.col('accountId'), filter.accountId);
    equals(where, params, table.col('storageId'), filter.storageId);
    equals(where, params, table.col('sourceInstanceId'), filter.sourceInstanceId);
    equals(where, params, table.col('mediaGroupId'), filter.mediaGroupId);
    if (filter.statuses !== undefined) where.push(params.inList('status', filter.statuses));
    else if (filter.includeDeleted !== true) where.push(`status <> 'deleted'`);
    const by = sort.by ?? 'createdAt';
    const direction = sort.direction ?? (by === 'name' ? 'asc' : 'desc');
    return table.page(params, where, { field: by, direction }, page);
  }

  async countActive(accountId: string): Promise<number> {
    const params = this.table.params();
    const [row] = await this.table.executor.query(
      params.statement(`SELECT count(*) AS n FROM ${this.table.ref} WHERE ${activeCustomImages(this.table, params, accountId)}`),
    );
    return Number(row?.['n'] ?? 0);
  }

  async insert(image: Image): Promise<void> {
    await this.table.insert(image, image.id);
  }

  async insertIfUnderLimit(image: Image, limit: ImageLimit): Promise<boolean> {
    const { table } = this;
    const maxBytes = limit.maxBytes ?? null;
    if (!Number.isFinite(limit.max) && maxBytes === null) {
      await table.insert(image, image.id);
      return true;
    }
    const params = table.params();
    const { columns, placeholders } = table.values(image, params);
    const caps: string[] = [];
    if (Number.isFinite(limit.max))
      caps.push(
        `(SELECT count(*) FROM ${table.ref} WHERE ${activeCustomImages(table, params, limit.accountId)}) < ${params.add(limit.max, 'integer')}`,
      );
    if (maxBytes !== null) {
      // Each image counts what `imageCapBytes` counts.
      caps.push(
        `${usedBytesSql(table, params, limit.accountId)} + ${params.add(imageCapBytes(image), 'bigint')} <= ${params.add(maxBytes, 'bigint')}`,
      );
    }
    // A duplicate id is attempted even at the cap, so it fails with CONFLICT like the reference.
    const sql =
      `INSERT INTO ${table.ref} (${columns}) SELECT ${placeholders}` +
      ` WHERE (${caps.join(' AND ')})` +
      ` OR EXISTS (SELECT 1 FROM ${table.ref} WHERE id = ${params.add(image.id, 'text')}) RETURNING id`;
    const lock = table.dialect.imageLimitLock(limit.accountId);
    const statements = lock ? [lock, params.statement(sql)] : [params.statement(sql)];
    const results = await table.guard(table.executor.transaction(statements), image.id);
    return (results[results.length - 1] ?? []).length > 0;
  }

  async transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch: ImagePatch,
    now: Date,
    events?: OutboxEvents<Image>,
    options: ImageTransitionOptions = {},
  ): Promise<Image | null> {
    const notProtected = `${this.table.col('protected')} IS NULL OR NOT ${this.table.col('protected')}`;
    const write = this.table.patchStatement('id', id, patch, {
      immutable: IMAGE_IMMUTABLE,
      status: { from, to },
      now,
      ...(options.unlessProtected === true ? { condition: notProtected } : {}),
    });
    return writeWithEvents(this.table, this.outbox, write, events, () => now);
  }

  async update(id: string, patch: ImagePatch, now: Date): Promise<Image | null> {
    return this.table.patch('id', id, patch, { immutable: IMAGE_IMMUTABLE, now });
  }

  async reserveBytes(id: string, bytes: number, maxBytes: number | null, now: Date): Promise<Image | null> {
    const { table } = this;
    // The account of a creating image never changes (only available images are transferred).
    const known = await table.getBy('id', id);
    if (known === null || known.kind !== 'custom' || known.status !== 'creating' || known.accountId === null) return null;
    const params = table.params();
    let sql = `UPDATE ${table.ref} SET ${table.col('reservedBytes')} = ${params.add(bytes, 'bigint')}, updated_at = ${params.add(now, 'timestamp')}`;
    sql += ` WHERE id = ${params.add(id, 'text')} AND kind = 'custom' AND status = 'creating'`;
    if (maxBytes !== null) {
      sql += ` AND (SELECT coalesce(sum(${capBytesSql(table)}), 0) FROM ${table.ref} WHERE ${activeCustomImages(table, params, known.accountId)}`;
      sql += ` AND id <> ${params.add(id, 'text')}) + ${params.add(bytes, 'bigint')} <= ${params.add(maxBytes, 'bigint')}`;
    }
    const lock = maxBytes === null ? null : table.dialect.imageLimitLock(known.accountId);
    const write = params.statement(`${sql} RETURNING ${table.selectList}`);
    const results = await table.executor.transaction(lock ? [lock, write] : [write]);
    const [row] = results[results.length - 1] ?? [];
    return row === undefined ? null : table.decode(row);
  }
}

/** {@link StorageRepository} over SQL; bindings live in their own table. */
export class SqlStorageRepository implements StorageRepository {
  constructor(
    private readonly table: SqlTable<ImageStorage>,
    private readonly bindings: SqlTable<StorageBinding>,
  ) {}

  async get(id: string): Promise<ImageStorage | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: { purpose?: ImageStorage['purpose'] } = {}): Promise<ImageStorage[]> {
    const params = this.table.params();
    const where: string[] = [];
    equals(where, params, 'purpose', filter.purpose);
    return this.table.select(params, where, 'name ASC, id ASC');
  }

  async insert(storage: ImageStorage): Promise<void> {
    await this.table.insert(storage, storage.id);
  }

  async update(id: string, patch: Partial<Omit<ImageStorage, 'id' | 'createdAt'>>, now: Date): Promise<ImageStorage | null> {
    return this.table.patch('id', id, patch, { immutable: RECORD_IMMUTABLE, now });
  }

  async delete(id: string): Promise<boolean> {
    const { table, bindings } = this;
    // Bindings go first and in the same transaction, whether or not the database enforces the foreign key.
    const unbindParams = bindings.params();
    const unbind = unbindParams.statement(
      `DELETE FROM ${bindings.ref} WHERE ${bindings.col('storageId')} = ${unbindParams.add(id, 'text')}`,
    );
    const deleteParams = table.params();
    const remove = deleteParams.statement(`DELETE FROM ${table.ref} WHERE id = ${deleteParams.add(id, 'text')} RETURNING id`);
    const [, removed] = await table.executor.transaction([unbind, remove]);
    return (removed ?? []).length > 0;
  }

  async bind(storageId: string, hypervisorId: string, now: Date): Promise<StorageBinding> {
    const { bindings } = this;
    const params = bindings.params();
    const { columns, placeholders } = bindings.values({ storageId, hypervisorId, createdAt: now }, params);
    const createdAt = bindings.col('createdAt');
    // The no-op update makes RETURNING yield the existing binding, so re-binding keeps the first one.
    const sql =
      `INSERT INTO ${bindings.ref} (${columns}) VALUES (${placeholders})` +
      ` ON CONFLICT (${bindings.col('storageId')}, ${bindings.col('hypervisorId')}) DO UPDATE SET ${createdAt} = ${bindings.ref}.${createdAt} RETURNING ${bindings.selectList}`;
    const [binding] = await bindings.guard(bindings.rows(params.statement(sql)), `${storageId}/${hypervisorId}`, {
      kind: 'Image storage',
      id: storageId,
    });
    if (!binding)
      throw new InstanceImagesError('CONFLICT', 'The storage binding changed concurrently; try again', {
        details: { storageId, hypervisorId },
      });
    return binding;
  }

  async unbind(storageId: string, hypervisorId: string): Promise<boolean> {
    const { bindings } = this;
    const params = bindings.params();
    const sql = `DELETE FROM ${bindings.ref} WHERE ${bindings.col('storageId')} = ${params.add(storageId, 'text')} AND ${bindings.col('hypervisorId')} = ${params.add(hypervisorId, 'text')} RETURNING ${bindings.col('storageId')}`;
    return (await bindings.executor.query(params.statement(sql))).length > 0;
  }

  async listBindings(filter: { storageId?: string; hypervisorId?: string } = {}): Promise<StorageBinding[]> {
    const { bindings } = this;
    const params = bindings.params();
    const where: string[] = [];
    equals(where, params, bindings.col('storageId'), filter.storageId);
    equals(where, params, bindings.col('hypervisorId'), filter.hypervisorId);
    return bindings.select(params, where, `${bindings.col('storageId')} ASC, ${bindings.col('hypervisorId')} ASC`);
  }
}

/** Inserts `record` and, in the same transaction, the events `events` makes of it (stamped `now`). */
async function insertWithEvents<T extends object>(
  table: SqlTable<T>,
  outbox: SqlTable<OutboxEvent>,
  record: T,
  id: string,
  events: OutboxEvents<T> | undefined,
  now: Date,
): Promise<void> {
  if (!events) return table.insert(record, id);
  const params = table.params();
  const { columns, placeholders } = table.values(record, params);
  const write = params.statement(`INSERT INTO ${table.ref} (${columns}) VALUES (${placeholders}) RETURNING ${table.selectList}`);
  await table.guard(
    writeWithEvents(table, outbox, write, events, () => now),
    id,
  );
}

/** {@link TaskRepository} over SQL; `transitionWithImage` also writes the images table. */
export class SqlTaskRepository implements TaskRepository {
  constructor(
    private readonly table: SqlTable<Task>,
    private readonly outbox: SqlTable<OutboxEvent>,
    private readonly images: SqlTable<Image>,
  ) {}

  async get(id: string): Promise<Task | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: TaskFilter = {}, page: ListPage = {}): Promise<Page<Task>> {
    const params = this.table.params();
    const where: string[] = [];
    equals(where, params, this.table.col('accountId'), filter.accountId);
    if (filter.statuses !== undefined) where.push(params.inList('status', filter.statuses));
    equals(where, params, 'type', filter.type);
    equals(where, params, this.table.col('subjectId'), filter.subjectId);
    return this.table.page(params, where, { field: 'createdAt', direction: 'desc' }, page);
  }

  async insert(task: Task, events?: OutboxEvents<Task>): Promise<void> {
    await insertWithEvents(this.table, this.outbox, task, task.id, events, task.createdAt);
  }

  async update(id: string, patch: TaskPatch, now: Date): Promise<Task | null> {
    return this.table.patch('id', id, patch, { immutable: TASK_IMMUTABLE, now });
  }

  async transition(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: TaskPatch,
    now: Date,
    events?: OutboxEvents<Task>,
  ): Promise<Task | null> {
    const write = this.table.patchStatement('id', id, patch, { immutable: TASK_IMMUTABLE, status: { from, to }, now });
    return writeWithEvents(this.table, this.outbox, write, events, () => now);
  }

  /**
   * One transaction: the task's compare-and-set, its events, then (only when the task changed) the
   * image's compare-and-set and its events. Each step is made from the rows of the ones before.
   */
  async transitionWithImage(
    task: TaskTransitionStep,
    image: ImageTransitionStep,
    now: Date,
  ): Promise<{ task: Task; image: Image | null } | null> {
    const { table, images, outbox } = this;
    const first = (rows: readonly SqlRow[] | undefined): SqlRow | undefined => rows?.[0];
    const ended = (previous: readonly SqlRow[][]): Task | null => {
      const row = first(previous[0]);
      return row ? table.decode(row) : null;
    };
    const moved = (previous: readonly SqlRow[][]): Image | null => {
      const row = first(previous[2]);
      return row ? images.decode(row) : null;
    };
    const statements: (SqlStatement | SqlStep)[] = [
      table.patchStatement('id', task.id, task.patch, { immutable: TASK_IMMUTABLE, status: { from: task.from, to: task.to }, now }),
      (previous) => {
        const done = ended(previous);
        return done && task.events ? outboxInsert(outbox, task.events(done), now) : null;
      },
      (previous) =>
        ended(previous)
          ? images.patchStatement('id', image.id, image.patch, {
              immutable: IMAGE_IMMUTABLE,
              status: { from: image.from, to: image.to },
              now,
            })
          : null,
      (previous) => {
        const done = moved(previous);
        return done && image.events ? outboxInsert(outbox, image.events(done), now) : null;
      },
    ];
    const results = await table.executor.transaction(statements);
    const done = ended(results);
    return done ? { task: done, image: moved(results) } : null;
  }

  async listStale(before: Date): Promise<Task[]> {
    const params = this.table.params();
    const heartbeat = this.table.col('heartbeatAt');
    const where = [`status = 'running'`, `(${heartbeat} IS NULL OR ${heartbeat} < ${params.add(before, 'timestamp')})`];
    return this.table.select(params, where, `${this.table.col('createdAt')} ASC, id ASC`);
  }
}

/** {@link UsageRepository} over SQL. */
export class SqlUsageRepository implements UsageRepository {
  constructor(
    private readonly table: SqlTable<UsageInterval>,
    private readonly outbox: SqlTable<OutboxEvent>,
  ) {}

  async get(id: string): Promise<UsageInterval | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: UsageFilter = {}, page: ListPage = {}): Promise<Page<UsageInterval>> {
    const { table } = this;
    const params = table.params();
    const where: string[] = [];
    equals(where, params, table.col('accountId'), filter.accountId);
    equals(where, params, table.col('imageId'), filter.imageId);
    equals(where, params, table.col('locationId'), filter.locationId);
    if (filter.openOnly) where.push(`${table.col('to')} IS NULL`);
    if (filter.overlapping) {
      where.push(`${table.col('from')} < ${params.add(filter.overlapping.to, 'timestamp')}`);
      where.push(`(${table.col('to')} IS NULL OR ${table.col('to')} > ${params.add(filter.overlapping.from, 'timestamp')})`);
    }
    return table.page(params, where, { field: 'from', direction: 'asc' }, page);
  }

  async insert(interval: UsageInterval, events?: OutboxEvents<UsageInterval>): Promise<void> {
    const { table } = this;
    if (!events) return table.insert(interval, interval.id);
    const params = table.params();
    const { columns, placeholders } = table.values(interval, params);
    const write = params.statement(`INSERT INTO ${table.ref} (${columns}) VALUES (${placeholders}) RETURNING ${table.selectList}`);
    await table.guard(
      writeWithEvents(table, this.outbox, write, events, (inserted) => inserted.from),
      interval.id,
    );
  }

  async close(id: string, to: Date, events?: OutboxEvents<UsageInterval>): Promise<UsageInterval | null> {
    const { table } = this;
    const params = table.params();
    const sql = `UPDATE ${table.ref} SET ${table.col('to')} = ${params.add(to, 'timestamp')} WHERE id = ${params.add(id, 'text')} AND ${table.col('to')} IS NULL RETURNING ${table.selectList}`;
    return writeWithEvents(table, this.outbox, params.statement(sql), events, () => to);
  }
}

/** {@link SettingsRepository} over SQL. */
export class SqlSettingsRepository implements SettingsRepository {
  constructor(
    private readonly locations: SqlTable<LocationSettings>,
    private readonly limits: SqlTable<AccountLimit>,
    private readonly states: SqlTable<AccountState>,
    private readonly outbox: SqlTable<OutboxEvent>,
  ) {}

  async getLocation(locationId: string): Promise<LocationSettings | null> {
    return this.locations.getBy('locationId', locationId);
  }

  async putLocation(settings: LocationSettings): Promise<void> {
    await this.locations.executor.query(upsert(this.locations, settings, 'locationId'));
  }

  async listLocations(): Promise<LocationSettings[]> {
    return this.locations.select(this.locations.params(), [], `${this.locations.col('locationId')} ASC`);
  }

  async getAccountLimit(accountId: string): Promise<AccountLimit | null> {
    return this.limits.getBy('accountId', accountId);
  }

  async putAccountLimit(accountId: string, limit: AccountLimit | null): Promise<void> {
    if (limit === null) await this.limits.deleteBy('accountId', accountId);
    else await this.limits.executor.query(upsert(this.limits, { ...limit, accountId }, 'accountId'));
  }

  async getAccountState(accountId: string): Promise<AccountState | null> {
    return this.states.getBy('accountId', accountId);
  }

  async putAccountState(
    accountId: string,
    state: AccountState | null,
    events?: OutboxEvents<AccountState | null>,
    now?: Date,
  ): Promise<void> {
    const { states } = this;
    const stored = state === null ? null : { ...state, accountId };
    if (!events) {
      if (stored === null) await states.deleteBy('accountId', accountId);
      else await states.executor.query(upsert(states, stored, 'accountId'));
      return;
    }
    const params = states.params();
    const write =
      stored === null
        ? params.statement(`DELETE FROM ${states.ref} WHERE ${states.col('accountId')} = ${params.add(accountId, 'text')}`)
        : upsert(states, stored, 'accountId');
    // The events are built from the state written (null: removed), even when there was nothing to remove.
    const record = outboxInsert(this.outbox, events(stored), now ?? state?.updatedAt ?? new Date());
    await states.executor.transaction(record ? [write, record] : [write]);
  }
}

/** An INSERT that replaces every column of the existing row with the same key. */
function upsert<T extends object>(table: SqlTable<T>, record: T, keyField: keyof T & string) {
  const params = table.params();
  const { columns, placeholders } = table.values(record, params);
  const key = table.col(keyField);
  const updates = columns
    .split(', ')
    .filter((column) => column !== key)
    .map((column) => `${column} = excluded.${column}`);
  return params.statement(
    `INSERT INTO ${table.ref} (${columns}) VALUES (${placeholders}) ON CONFLICT (${key}) DO UPDATE SET ${updates.join(', ')}`,
  );
}

/**
 * Builds every repository over one dialect and executor. The tables must exist (the adapters run
 * their migrations first).
 */
export function createSqlRepositories(dialect: SqlDialect, executor: SqlExecutor): Repositories {
  const images = new SqlTable(imagesTable, dialect, executor, 'Image');
  const outbox = new SqlTable(outboxTable, dialect, executor, 'Outbox event');
  return {
    images: new SqlImageRepository(images, outbox),
    storages: new SqlStorageRepository(
      new SqlTable(storagesTable, dialect, executor, 'Image storage'),
      new SqlTable(bindingsTable, dialect, executor, 'Storage binding'),
    ),
    mediaGroups: new SqlMediaGroupRepository(new SqlTable(mediaGroupsTable, dialect, executor, 'Media group')),
    isos: new SqlIsoRepository(new SqlTable(isosTable, dialect, executor, 'ISO')),
    tasks: new SqlTaskRepository(new SqlTable(tasksTable, dialect, executor, 'Task'), outbox, images),
    usage: new SqlUsageRepository(new SqlTable(usageTable, dialect, executor, 'Usage interval'), outbox),
    settings: new SqlSettingsRepository(
      new SqlTable(locationSettingsTable, dialect, executor, 'Location settings'),
      new SqlTable(accountLimitsTable, dialect, executor, 'Account limit'),
      new SqlTable(accountStatesTable, dialect, executor, 'Account state'),
      outbox,
    ),
    imageShares: new SqlImageShareRepository(new SqlTable(imageSharesTable, dialect, executor, 'Image share'), outbox),
    imageTransfers: new SqlImageTransferRepository(new SqlTable(imageTransfersTable, dialect, executor, 'Image transfer'), images, outbox),
    outbox: new SqlOutboxRepository(outbox),
  };
}
