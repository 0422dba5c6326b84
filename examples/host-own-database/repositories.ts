/**
 * A host's own implementation of the SDK's `Repositories` port over its existing SQLite schema
 * (see schema.ts). Everything the SDK stores goes through the seven small repositories below;
 * the SDK never sees a table or column name.
 *
 * How the port's guarantees are met with better-sqlite3 (synchronous, one connection):
 * - Records are mapped field by field to the panel's columns (`toRow`/`fromRow`), so every read
 *   builds fresh objects: returned records are copies by construction.
 * - Read-modify-write (update, transition, the capped insert) runs in `BEGIN IMMEDIATE`
 *   (`db.transaction(fn).immediate()`): the write lock is taken before the read, so another
 *   process sharing the file cannot slip a write in between.
 * - Closing a billing interval is a single `UPDATE ... WHERE ends_on IS NULL RETURNING *`: a
 *   compare-and-set needs no transaction when it fits in one statement.
 * - Lists are keyset-paged: ORDER BY (sort column, id) with the SDK's opaque cursor helpers.
 *
 * A host imports these names from `instance-images`; inside this repository they come from `../../src`.
 * @module
 */
import type Database from 'better-sqlite3';
import {
  InstanceImagesError,
  decodeCursor,
  encodeCursor,
  imageCapBytes,
  type AccountLimit,
  type AccountState,
  type Image,
  type ImageFilter,
  type ImageStorage,
  type Iso,
  type ListPage,
  type LocationSettings,
  type MediaGroup,
  type OutboxEvents,
  type Page,
  type Repositories,
  type StorageBinding,
  type Task,
  type UsageFilter,
  type UsageInterval,
} from '../../src';
import { createImageMoveRepositories } from './image-moves';
import { createHostOutbox } from './outbox';

type Row = Record<string, unknown>;
/** One WHERE condition and its `?` parameters. */
type Clause = [sql: string, ...params: unknown[]];

// ---------- column codecs: the panel stores times as integer ms and booleans as 0/1 ----------

const ms = (date: Date | null) => (date === null ? null : date.getTime());
const time = (value: unknown) => new Date(Number(value));
const timeOrNull = (value: unknown) => (value === null ? null : time(value));
const text = (value: unknown) => String(value);
const textOrNull = (value: unknown) => (value === null ? null : String(value));
const intOrNull = (value: unknown) => (value === null ? null : Number(value));
const flag = (value: boolean) => (value ? 1 : 0);
const reasonOf = (code: unknown, message: unknown) => (code === null ? null : { code: text(code), message: text(message ?? '') });
const conflict = (noun: string, id: string, cause?: unknown) =>
  new InstanceImagesError('CONFLICT', `${noun} ${JSON.stringify(id)} already exists`, { cause, details: { kind: noun, id } });
const inList = (column: string, values: readonly string[]): Clause => [
  `${column} IN (SELECT value FROM json_each(?))`,
  JSON.stringify(values),
];

/** How one record type maps to one panel table. */
interface Table<T> {
  /** The panel's table. */
  name: string;
  /** The noun used in CONFLICT messages. */
  noun: string;
  toRow(record: T): Row;
  fromRow(row: Row): T;
}

const imageTable: Table<Image> = {
  name: 'panel_vm_images',
  noun: 'Image',
  toRow: (i) => ({
    id: i.id,
    kind: i.kind,
    title: i.name,
    notes: i.description,
    os_family: i.osType,
    has_cloud_init: flag(i.cloudInit),
    os_group_id: i.mediaGroupId,
    customer_id: i.accountId,
    server_id: i.sourceInstanceId,
    server_name: i.sourceInstanceName,
    region_id: i.locationId,
    store_id: i.storageId,
    node_id: i.hypervisorId,
    file_key: i.fileKey,
    disk_format: i.format,
    file_bytes: i.sizeBytes,
    disk_bytes: i.virtualSizeBytes,
    checksum_sha256: i.sha256,
    consistency: i.consistency,
    is_compressed: i.compressed === undefined || i.compressed === null ? null : flag(i.compressed),
    server_gone_on: ms(i.sourceInstanceDeletedAt ?? null),
    is_protected: i.protected === undefined || i.protected === null ? null : flag(i.protected),
    min_disk_bytes: i.minDiskBytes ?? null,
    boot_firmware: i.firmware ?? null,
    cpu_arch: i.architecture ?? null,
    held_bytes: i.reservedBytes ?? null,
    state: i.status,
    state_code: i.statusReason?.code ?? null,
    state_message: i.statusReason?.message ?? null,
    created_on: ms(i.createdAt),
    changed_on: ms(i.updatedAt),
    ready_on: ms(i.availableAt),
    removed_on: ms(i.deletedAt),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    kind: text(r.kind) as Image['kind'],
    name: text(r.title),
    description: text(r.notes),
    osType: textOrNull(r.os_family) as Image['osType'],
    cloudInit: r.has_cloud_init === 1,
    mediaGroupId: textOrNull(r.os_group_id),
    accountId: textOrNull(r.customer_id),
    sourceInstanceId: textOrNull(r.server_id),
    sourceInstanceName: textOrNull(r.server_name),
    locationId: textOrNull(r.region_id),
    storageId: text(r.store_id),
    hypervisorId: textOrNull(r.node_id),
    fileKey: text(r.file_key),
    format: text(r.disk_format) as Image['format'],
    sizeBytes: intOrNull(r.file_bytes),
    virtualSizeBytes: intOrNull(r.disk_bytes),
    sha256: textOrNull(r.checksum_sha256),
    consistency: textOrNull(r.consistency) as Image['consistency'],
    status: text(r.state) as Image['status'],
    statusReason: reasonOf(r.state_code, r.state_message),
    createdAt: time(r.created_on),
    updatedAt: time(r.changed_on),
    availableAt: timeOrNull(r.ready_on),
    deletedAt: timeOrNull(r.removed_on),
    // Optional field (added in a later release): NULL means "not recorded", so the key is left out.
    ...(r.is_compressed === null || r.is_compressed === undefined ? {} : { compressed: r.is_compressed === 1 }),
    ...(r.server_gone_on === null || r.server_gone_on === undefined ? {} : { sourceInstanceDeletedAt: time(r.server_gone_on) }),
    ...(r.is_protected === null || r.is_protected === undefined ? {} : { protected: r.is_protected === 1 }),
    ...(r.min_disk_bytes === null || r.min_disk_bytes === undefined ? {} : { minDiskBytes: Number(r.min_disk_bytes) }),
    ...(r.boot_firmware === null || r.boot_firmware === undefined ? {} : { firmware: text(r.boot_firmware) as Image['firmware'] }),
    ...(r.cpu_arch === null || r.cpu_arch === undefined ? {} : { architecture: text(r.cpu_arch) }),
    ...(r.held_bytes === null || r.held_bytes === undefined ? {} : { reservedBytes: Number(r.held_bytes) }),
  }),
};

const storageTable: Table<ImageStorage> = {
  name: 'panel_image_stores',
  noun: 'Image storage',
  toRow: (s) => ({
    id: s.id,
    title: s.name,
    driver: s.driver,
    config_json: JSON.stringify(s.config),
    purpose: s.purpose,
    is_enabled: flag(s.enabled),
    layout: s.layout ?? null,
    chunks_json: s.chunks === undefined ? null : JSON.stringify(s.chunks),
    created_on: ms(s.createdAt),
    changed_on: ms(s.updatedAt),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    name: text(r.title),
    driver: text(r.driver),
    config: JSON.parse(text(r.config_json)) as ImageStorage['config'],
    purpose: text(r.purpose) as ImageStorage['purpose'],
    enabled: r.is_enabled === 1,
    // Optional fields (added in a later release): NULL means "not recorded", so the key is left out.
    ...(r.layout === null || r.layout === undefined ? {} : { layout: text(r.layout) as NonNullable<ImageStorage['layout']> }),
    ...(r.chunks_json === null || r.chunks_json === undefined
      ? {}
      : { chunks: JSON.parse(text(r.chunks_json)) as NonNullable<ImageStorage['chunks']> }),
    createdAt: time(r.created_on),
    updatedAt: time(r.changed_on),
  }),
};

const groupTable: Table<MediaGroup> = {
  name: 'panel_os_groups',
  noun: 'Media group',
  toRow: (g) => ({
    id: g.id,
    title: g.name,
    is_visible: flag(g.customerVisible),
    sort_order: g.order,
    created_on: ms(g.createdAt),
    changed_on: ms(g.updatedAt),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    name: text(r.title),
    customerVisible: r.is_visible === 1,
    order: Number(r.sort_order),
    createdAt: time(r.created_on),
    updatedAt: time(r.changed_on),
  }),
};

const isoTable: Table<Iso> = {
  name: 'panel_isos',
  noun: 'ISO',
  toRow: (i) => ({
    id: i.id,
    title: i.name,
    notes: i.description,
    store_id: i.storageId,
    file_key: i.fileKey,
    file_bytes: i.sizeBytes,
    checksum_sha256: i.sha256,
    is_visible: flag(i.customerVisible),
    state: i.status,
    state_code: i.statusReason?.code ?? null,
    state_message: i.statusReason?.message ?? null,
    created_on: ms(i.createdAt),
    changed_on: ms(i.updatedAt),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    name: text(r.title),
    description: text(r.notes),
    storageId: text(r.store_id),
    fileKey: text(r.file_key),
    sizeBytes: intOrNull(r.file_bytes),
    sha256: textOrNull(r.checksum_sha256),
    customerVisible: r.is_visible === 1,
    status: text(r.state) as Iso['status'],
    statusReason: reasonOf(r.state_code, r.state_message),
    createdAt: time(r.created_on),
    updatedAt: time(r.changed_on),
  }),
};

const taskTable: Table<Task> = {
  name: 'panel_image_tasks',
  noun: 'Task',
  toRow: (t) => ({
    id: t.id,
    task_type: t.type,
    subject_kind: t.subjectKind,
    subject_id: t.subjectId,
    customer_id: t.accountId,
    node_id: t.hypervisorId,
    state: t.status,
    progress_step: t.progress.step,
    progress_percent: t.progress.percent,
    progress_bytes_done: t.progress.bytesDone,
    progress_bytes_total: t.progress.bytesTotal,
    error_code: t.errorCode,
    error_message: t.errorMessage,
    attempts: t.attempts,
    worker_id: t.workerId,
    store_id: t.storageId ?? null,
    incarnation_id: t.incarnationId,
    heartbeat_on: ms(t.heartbeatAt),
    created_on: ms(t.createdAt),
    changed_on: ms(t.updatedAt),
    started_on: ms(t.startedAt),
    finished_on: ms(t.finishedAt),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    type: text(r.task_type) as Task['type'],
    subjectKind: text(r.subject_kind) as Task['subjectKind'],
    subjectId: text(r.subject_id),
    accountId: textOrNull(r.customer_id),
    hypervisorId: textOrNull(r.node_id),
    status: text(r.state) as Task['status'],
    progress: {
      step: text(r.progress_step),
      percent: Number(r.progress_percent),
      bytesDone: Number(r.progress_bytes_done),
      bytesTotal: intOrNull(r.progress_bytes_total),
    },
    errorCode: textOrNull(r.error_code),
    errorMessage: textOrNull(r.error_message),
    attempts: Number(r.attempts),
    workerId: textOrNull(r.worker_id),
    ...(r.store_id === null || r.store_id === undefined ? {} : { storageId: text(r.store_id) }),
    incarnationId: textOrNull(r.incarnation_id),
    heartbeatAt: timeOrNull(r.heartbeat_on),
    createdAt: time(r.created_on),
    updatedAt: time(r.changed_on),
    startedAt: timeOrNull(r.started_on),
    finishedAt: timeOrNull(r.finished_on),
  }),
};

const usageTable: Table<UsageInterval> = {
  name: 'panel_image_billing',
  noun: 'Usage interval',
  toRow: (u) => ({
    id: u.id,
    image_id: u.imageId,
    customer_id: u.accountId,
    region_id: u.locationId,
    file_bytes: u.sizeBytes,
    rate: u.rate,
    starts_on: ms(u.from),
    ends_on: ms(u.to),
  }),
  fromRow: (r) => ({
    id: text(r.id),
    imageId: text(r.image_id),
    accountId: text(r.customer_id),
    locationId: text(r.region_id),
    sizeBytes: Number(r.file_bytes),
    rate: text(r.rate),
    from: time(r.starts_on),
    to: timeOrNull(r.ends_on),
  }),
};

/** What the panel keeps per region and per customer in `panel_settings` (as JSON values). */
interface RegionSettingsValue {
  enabled: boolean;
  /** Absent in values written before URL imports existed. */
  urlImportEnabled?: boolean;
  pricePerGbMonth: string;
  currency: string;
  defaultImageLimit: number | null;
  /** Absent in values written before byte caps existed. */
  defaultImageBytesLimit?: number | null;
}
const REGION_PREFIX = 'images.region.';
const CUSTOMER_LIMIT_PREFIX = 'images.customer-limit.';
const CUSTOMER_STATE_PREFIX = 'images.customer-state.';

/**
 * Creates the SDK's repositories over the panel's own database. The panel owns the connection
 * (it also uses it for everything else), so the result has no `close`: close `db` yourself.
 */
export function createHostRepositories(db: Database.Database): Repositories {
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    return statement;
  };
  const all = (sql: string, ...params: unknown[]) => prepare(sql).all(...params) as Row[];
  const one = (sql: string, ...params: unknown[]) => (prepare(sql).get(...params) as Row | undefined) ?? null;
  const run = (sql: string, ...params: unknown[]) => prepare(sql).run(...params);
  /** Runs `fn` in BEGIN IMMEDIATE: no other connection writes between its reads and its writes. */
  const atomically = <T>(fn: () => T): T => db.transaction(fn).immediate();
  const where = (clauses: Clause[]) => ({
    sql: clauses.length === 0 ? '' : ` WHERE ${clauses.map(([sql]) => sql).join(' AND ')}`,
    params: clauses.flatMap(([, ...params]) => params),
  });

  // ---------- generic row operations, shared by every table ----------

  const get = <T>(table: Table<T>, id: string): T | null => {
    const row = one(`SELECT * FROM ${table.name} WHERE id = ?`, id);
    return row ? table.fromRow(row) : null;
  };

  const insert = <T extends { id: string }>(table: Table<T>, record: T): void => {
    const row = table.toRow(record);
    const columns = Object.keys(row);
    try {
      run(`INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`, row);
    } catch (error) {
      // better-sqlite3 names the violated constraint in `code`.
      if ((error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw conflict(table.noun, record.id, error);
      throw error;
    }
  };

  /**
   * Reads the record, lets `change` compute the next version (or refuse with `null`) and writes
   * it back, all under the write lock. Returns what is now stored (re-decoded: a fresh copy).
   */
  const modify = <T>(table: Table<T>, id: string, change: (current: T) => T | null, events?: OutboxEvents<T>, now?: Date): T | null =>
    atomically(() => {
      const current = get(table, id);
      const next = current === null ? null : change(current);
      if (next === null) return null;
      const row = table.toRow(next);
      const columns = Object.keys(row).filter((c) => c !== 'id');
      run(`UPDATE ${table.name} SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`, row);
      const written = table.fromRow(row);
      // The write's events go into the outbox in the same transaction (both or neither).
      if (events && now) outbox.record(events(written), now);
      return written;
    });
  const outbox = createHostOutbox(db);

  const remove = <T>(table: Table<T>, id: string): boolean => run(`DELETE FROM ${table.name} WHERE id = ?`, id).changes > 0;

  /** One keyset page: rows after the cursor's (sort value, id), in (sort value, id) order. */
  const page = <T>(table: Table<T>, clauses: Clause[], sortColumn: string, direction: 'asc' | 'desc', request: ListPage = {}): Page<T> => {
    const limit = pageLimit(request.limit);
    const conditions = [...clauses];
    if (request.cursor) {
      const [value, id] = decodeCursor(request.cursor);
      const after = direction === 'asc' ? '>' : '<';
      conditions.push([`(${sortColumn} ${after} ? OR (${sortColumn} = ? AND id ${after} ?))`, value, value, id]);
    }
    const w = where(conditions);
    const order = `${sortColumn} ${direction.toUpperCase()}, id ${direction.toUpperCase()}`;
    const rows = all(`SELECT * FROM ${table.name}${w.sql} ORDER BY ${order} LIMIT ?`, ...w.params, limit + 1);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    const nextCursor = rows.length > limit && last ? encodeCursor([last[sortColumn] as string | number, text(last.id)]) : null;
    return { items: items.map((row) => table.fromRow(row)), nextCursor };
  };

  const countActive = (accountId: string) =>
    Number(
      one(`SELECT count(*) AS n FROM panel_vm_images WHERE kind = 'custom' AND customer_id = ? AND state <> 'deleted'`, accountId)?.n ?? 0,
    );

  // Each image counts its file size once known, else its virtual size, else what an import holds (`imageCapBytes`).
  const activeBytes = (accountId: string, exceptId = '') =>
    Number(
      one(
        `SELECT coalesce(sum(coalesce(file_bytes, disk_bytes, held_bytes, 0)), 0) AS n FROM panel_vm_images WHERE kind = 'custom' AND customer_id = ? AND state <> 'deleted' AND id <> ?`,
        accountId,
        exceptId,
      )?.n ?? 0,
    );

  const imageClauses = (f: ImageFilter): Clause[] => {
    const clauses: Clause[] = [];
    if (f.kind !== undefined) clauses.push(['kind = ?', f.kind]);
    if (f.accountId !== undefined) clauses.push(['customer_id = ?', f.accountId]);
    if (f.storageId !== undefined) clauses.push(['store_id = ?', f.storageId]);
    if (f.sourceInstanceId !== undefined) clauses.push(['server_id = ?', f.sourceInstanceId]);
    if (f.mediaGroupId !== undefined) clauses.push(['os_group_id = ?', f.mediaGroupId]);
    if (f.statuses !== undefined) clauses.push(inList('state', f.statuses));
    else if (f.includeDeleted !== true) clauses.push(["state <> 'deleted'"]);
    return clauses;
  };

  const usageClauses = (f: UsageFilter): Clause[] => {
    const clauses: Clause[] = [];
    if (f.accountId !== undefined) clauses.push(['customer_id = ?', f.accountId]);
    if (f.imageId !== undefined) clauses.push(['image_id = ?', f.imageId]);
    if (f.locationId !== undefined) clauses.push(['region_id = ?', f.locationId]);
    if (f.openOnly) clauses.push(['ends_on IS NULL']);
    if (f.overlapping) clauses.push(['starts_on < ? AND (ends_on IS NULL OR ends_on > ?)', ms(f.overlapping.to), ms(f.overlapping.from)]);
    return clauses;
  };

  // panel_settings rows: `images.region.<regionId>` and `images.customer-limit.<customerId>`.
  const putSetting = (name: string, value: unknown, changedOn: Date) =>
    run(
      'INSERT INTO panel_settings (name, value, changed_on) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, changed_on = excluded.changed_on',
      name,
      JSON.stringify(value),
      ms(changedOn),
    );
  const regionFromRow = (row: Row): LocationSettings => {
    const value = JSON.parse(text(row.value)) as RegionSettingsValue;
    return {
      locationId: text(row.name).slice(REGION_PREFIX.length),
      imagesEnabled: value.enabled,
      urlImportEnabled: value.urlImportEnabled === true,
      pricePerGbMonth: value.pricePerGbMonth,
      currency: value.currency,
      defaultImageLimit: value.defaultImageLimit,
      ...(value.defaultImageBytesLimit === undefined ? {} : { defaultImageBytesLimit: value.defaultImageBytesLimit }),
      updatedAt: time(row.changed_on),
    };
  };

  return {
    ...createImageMoveRepositories(db),
    outbox,
    images: {
      get: async (id) => get(imageTable, id),
      list: async (filter = {}, request = {}, sort = {}) => {
        const by = sort.by ?? 'createdAt';
        const direction = sort.direction ?? (by === 'name' ? 'asc' : 'desc');
        return page(imageTable, imageClauses(filter), by === 'name' ? 'title' : 'created_on', direction, request);
      },
      countActive: async (accountId) => countActive(accountId),
      insert: async (image) => insert(imageTable, image),
      insertIfUnderLimit: async (image, limit) =>
        atomically(() => {
          // The count and the insert share one write lock: N racing callers leave exactly `max`.
          if (get(imageTable, image.id)) throw conflict(imageTable.noun, image.id);
          if (countActive(limit.accountId) >= limit.max) return false;
          if (limit.maxBytes != null && activeBytes(limit.accountId) + imageCapBytes(image) > limit.maxBytes) return false;
          insert(imageTable, image);
          return true;
        }),
      transition: async (id, from, to, patch, now, events, options = {}) =>
        modify(
          imageTable,
          id,
          (current) =>
            from.includes(current.status) && !(options.unlessProtected === true && current.protected === true)
              ? { ...current, ...patch, id, status: to, updatedAt: now }
              : null,
          events,
          now,
        ),
      update: async (id, patch, now) => modify(imageTable, id, (current) => ({ ...current, ...patch, id, updatedAt: now })),
      // The sum and the write under one write lock, like the capped insert.
      reserveBytes: async (id, bytes, maxBytes, now) =>
        modify(imageTable, id, (current) =>
          current.kind !== 'custom' || current.status !== 'creating' || current.accountId === null
            ? null
            : maxBytes !== null && activeBytes(current.accountId, id) + bytes > maxBytes
              ? null
              : { ...current, reservedBytes: bytes, updatedAt: now },
        ),
    },

    storages: {
      get: async (id) => get(storageTable, id),
      list: async (filter = {}) => {
        const w = where(filter.purpose === undefined ? [] : [['purpose = ?', filter.purpose]]);
        return all(`SELECT * FROM panel_image_stores${w.sql} ORDER BY title, id`, ...w.params).map(storageTable.fromRow);
      },
      insert: async (storage) => insert(storageTable, storage),
      update: async (id, patch, now) => modify(storageTable, id, (current) => ({ ...current, ...patch, id, updatedAt: now })),
      delete: async (id) =>
        atomically(() => {
          run('DELETE FROM panel_image_store_nodes WHERE store_id = ?', id);
          return remove(storageTable, id);
        }),
      bind: async (storageId, hypervisorId, now) => {
        // OR IGNORE keeps the first binding, which makes re-binding idempotent.
        run(
          'INSERT OR IGNORE INTO panel_image_store_nodes (store_id, node_id, created_on) VALUES (?, ?, ?)',
          storageId,
          hypervisorId,
          ms(now),
        );
        const row = one('SELECT * FROM panel_image_store_nodes WHERE store_id = ? AND node_id = ?', storageId, hypervisorId);
        return { storageId, hypervisorId, createdAt: time(row?.created_on) };
      },
      unbind: async (storageId, hypervisorId) =>
        run('DELETE FROM panel_image_store_nodes WHERE store_id = ? AND node_id = ?', storageId, hypervisorId).changes > 0,
      listBindings: async (filter = {}) => {
        const clauses: Clause[] = [];
        if (filter.storageId !== undefined) clauses.push(['store_id = ?', filter.storageId]);
        if (filter.hypervisorId !== undefined) clauses.push(['node_id = ?', filter.hypervisorId]);
        const w = where(clauses);
        return all(`SELECT * FROM panel_image_store_nodes${w.sql} ORDER BY store_id, node_id`, ...w.params).map((r): StorageBinding => ({
          storageId: text(r.store_id),
          hypervisorId: text(r.node_id),
          createdAt: time(r.created_on),
        }));
      },
    },

    mediaGroups: {
      get: async (id) => get(groupTable, id),
      list: async (filter = {}) => {
        const w = where(filter.customerVisible === undefined ? [] : [['is_visible = ?', flag(filter.customerVisible)]]);
        return all(`SELECT * FROM panel_os_groups${w.sql} ORDER BY sort_order, title, id`, ...w.params).map(groupTable.fromRow);
      },
      insert: async (group) => insert(groupTable, group),
      update: async (id, patch, now) => modify(groupTable, id, (current) => ({ ...current, ...patch, id, updatedAt: now })),
      delete: async (id) => remove(groupTable, id),
    },

    isos: {
      get: async (id) => get(isoTable, id),
      list: async (filter = {}, request = {}) => {
        const clauses: Clause[] = [];
        if (filter.customerVisible !== undefined) clauses.push(['is_visible = ?', flag(filter.customerVisible)]);
        if (filter.storageId !== undefined) clauses.push(['store_id = ?', filter.storageId]);
        if (filter.status !== undefined) clauses.push(['state = ?', filter.status]);
        return page(isoTable, clauses, 'title', 'asc', request);
      },
      insert: async (iso) => insert(isoTable, iso),
      update: async (id, patch, now) => modify(isoTable, id, (current) => ({ ...current, ...patch, id, updatedAt: now })),
      delete: async (id) => remove(isoTable, id),
    },

    tasks: {
      get: async (id) => get(taskTable, id),
      list: async (filter = {}, request = {}) => {
        const clauses: Clause[] = [];
        if (filter.accountId !== undefined) clauses.push(['customer_id = ?', filter.accountId]);
        if (filter.statuses !== undefined) clauses.push(inList('state', filter.statuses));
        if (filter.type !== undefined) clauses.push(['task_type = ?', filter.type]);
        if (filter.subjectId !== undefined) clauses.push(['subject_id = ?', filter.subjectId]);
        return page(taskTable, clauses, 'created_on', 'desc', request);
      },
      insert: async (task) => insert(taskTable, task),
      update: async (id, patch, now) => modify(taskTable, id, (current) => ({ ...current, ...patch, id, updatedAt: now })),
      transition: async (id, from, to, patch, now, events) =>
        modify(
          taskTable,
          id,
          (current) => (from.includes(current.status) ? { ...current, ...patch, id, status: to, updatedAt: now } : null),
          events,
          now,
        ),
      listStale: async (before) =>
        all(
          "SELECT * FROM panel_image_tasks WHERE state = 'running' AND (heartbeat_on IS NULL OR heartbeat_on < ?) ORDER BY created_on, id",
          ms(before),
        ).map(taskTable.fromRow),
    },

    usage: {
      get: async (id) => get(usageTable, id),
      list: async (filter = {}, request = {}) => page(usageTable, usageClauses(filter), 'starts_on', 'asc', request),
      insert: async (interval, events) =>
        atomically(() => {
          insert(usageTable, interval);
          if (events) outbox.record(events(interval), interval.from);
        }),
      close: async (id, to, events) =>
        atomically(() => {
          // A compare-and-set: only an interval that is still open gets closed.
          const row = one('UPDATE panel_image_billing SET ends_on = ? WHERE id = ? AND ends_on IS NULL RETURNING *', ms(to), id);
          const closed = row ? usageTable.fromRow(row) : null;
          if (closed && events) outbox.record(events(closed), to);
          return closed;
        }),
    },

    settings: {
      getLocation: async (locationId) => {
        const row = one('SELECT * FROM panel_settings WHERE name = ?', REGION_PREFIX + locationId);
        return row ? regionFromRow(row) : null;
      },
      putLocation: async (settings) => {
        const value: RegionSettingsValue = {
          enabled: settings.imagesEnabled,
          urlImportEnabled: settings.urlImportEnabled,
          pricePerGbMonth: settings.pricePerGbMonth,
          currency: settings.currency,
          defaultImageLimit: settings.defaultImageLimit,
          ...(settings.defaultImageBytesLimit === undefined ? {} : { defaultImageBytesLimit: settings.defaultImageBytesLimit }),
        };
        putSetting(REGION_PREFIX + settings.locationId, value, settings.updatedAt);
      },
      listLocations: async () =>
        all('SELECT * FROM panel_settings WHERE substr(name, 1, ?) = ? ORDER BY name', REGION_PREFIX.length, REGION_PREFIX).map(
          regionFromRow,
        ),
      getAccountLimit: async (accountId): Promise<AccountLimit | null> => {
        const row = one('SELECT * FROM panel_settings WHERE name = ?', CUSTOMER_LIMIT_PREFIX + accountId);
        if (!row) return null;
        const value = JSON.parse(text(row.value)) as { imageLimit: number; imageBytesLimit?: number | null };
        return {
          accountId,
          imageLimit: value.imageLimit,
          ...(value.imageBytesLimit === undefined ? {} : { imageBytesLimit: value.imageBytesLimit }),
          updatedAt: time(row.changed_on),
        };
      },
      putAccountLimit: async (accountId, limit) => {
        if (limit === null) run('DELETE FROM panel_settings WHERE name = ?', CUSTOMER_LIMIT_PREFIX + accountId);
        else
          putSetting(
            CUSTOMER_LIMIT_PREFIX + accountId,
            { imageLimit: limit.imageLimit, imageBytesLimit: limit.imageBytesLimit },
            limit.updatedAt,
          );
      },
      getAccountState: async (accountId): Promise<AccountState | null> => {
        const row = one('SELECT * FROM panel_settings WHERE name = ?', CUSTOMER_STATE_PREFIX + accountId);
        if (!row) return null;
        const value = JSON.parse(text(row.value)) as { status: AccountState['status']; since: number };
        return { accountId, status: value.status, since: new Date(value.since), updatedAt: time(row.changed_on) };
      },
      putAccountState: async (accountId, state) => {
        if (state === null) run('DELETE FROM panel_settings WHERE name = ?', CUSTOMER_STATE_PREFIX + accountId);
        else putSetting(CUSTOMER_STATE_PREFIX + accountId, { status: state.status, since: state.since.getTime() }, state.updatedAt);
      },
    },
  };
}

/** The port's page size rule: default 50, an integer from 1 to 1000. */
function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The page size must be an integer from 1 to 1000', {
      fields: [{ path: 'limit', message: 'out of range' }],
    });
  }
  return limit;
}
